"""The CI formats against the standards their readers hold them to.

- JUnit: every shape `orchestrate` writes validates against `tests/junit-10.xsd` (the Jenkins xUnit
  schema pytest's own JUnit output is tested against) with a real XSD validator, `xmlschema`.
- GitHub: every line parses as a workflow command the way the runner reads it
  (``::name key=value,key=value::message``, properties unescaped from ``%25 %0D %0A %3A %2C``,
  the message from ``%25 %0D %0A``) and gives back exactly the path, place and text meant.
- A step that fails under ``on_error: continue`` in a run that succeeds is no failure in either
  format, so the CI job in docs/ci.md passes a run that passed.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import xmlschema

from orchestrator.cli.main import main
from tests.corpus import INVALID, VALID

XSD = Path(__file__).resolve().parent / "junit-10.xsd"
ANNOTATION_KEYS = {"title", "file", "line", "endLine", "col", "endColumn"}

CONTINUED = """\
name: goes on
steps:
  - id: probe
    on_error: continue
    assert: {that: false, message: "probe: not there, 100% sure"}
  - id: next
    needs: [probe]
    log: "probe said {{ steps.probe.status }}"
"""

MIXED = """\
name: one real failure
steps:
  - id: probe
    on_error: continue
    assert: {that: false, message: optional}
  - id: check
    needs: [probe]
    assert: {that: false, message: "50% done\\r\\nnext: a, b"}
"""


@pytest.fixture(scope="module")
def junit_schema() -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(str(XSD))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main([*argv, "--no-progress"]) if argv[0] != "check" else main(list(argv))
    return code, capsys.readouterr().out


def _playbook(folder: Path, text: str, name: str = "playbook.yml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- JUnit against junit-10.xsd ---------------------------------------------------------------


def test_the_xsd_accepts_pytests_junit_and_refuses_a_testcase_attribute_it_does_not_define(
    tmp_path: Path, junit_schema: xmlschema.XMLSchema10
) -> None:
    """The validator is calibrated: pytest's own report passes, `<testcase file=...>` does not.
    The sample's skip and xfail are not tests of ours: they are there so that pytest's report holds
    every outcome the XSD must accept (`<skipped>` in both forms), and run only in the subprocess."""
    tests = tmp_path / "test_sample.py"
    tests.write_text(textwrap.dedent("""\
        import pytest

        def test_passes(): pass
        def test_fails(): assert 1 == 2
        @pytest.mark.skip(reason="not today")
        def test_skipped(): pass
        @pytest.mark.xfail(reason="known")
        def test_expected(): assert False
    """), encoding="utf-8")
    report = tmp_path / "pytest.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:orchestrator", str(tests),
         f"--junitxml={report}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert junit_schema.is_valid(str(report))
    bad = '<testsuites><testsuite name="x" tests="1" failures="0" errors="0"><testcase name="a" file="x.yml"/></testsuite></testsuites>'
    assert not junit_schema.is_valid(bad)


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        ((str(VALID / "minimal.yml"),), 0),
        ((str(VALID / "fails.yml"),), 1),
        ((str(VALID / "kinds.yml"), "--dry-run"), 0),
        ((str(INVALID / "shell_unknown_key.yml"),), 2),
        (("check", str(VALID / "minimal.yml"), str(INVALID / "two_actions.yml")), 2),
    ],
    ids=["passing", "failing", "dry-run", "invalid", "check"],
)
def test_every_junit_shape_validates(
    argv: tuple[str, ...], code: int, capsys: pytest.CaptureFixture[str], junit_schema: xmlschema.XMLSchema10
) -> None:
    """Runs, dry runs, invalid input and `check` reports all validate against junit-10.xsd."""
    got, out = _run(capsys, *argv, "--format", "junit")
    assert got == code
    junit_schema.validate(out)


def test_suites_say_when_and_where_they_ran(capsys: pytest.CaptureFixture[str], junit_schema: xmlschema.XMLSchema10) -> None:
    """Each suite has an ISO 8601 `timestamp` with its offset (the run's start) and the `hostname`."""
    before = datetime.now(UTC)
    code, out = _run(capsys, str(VALID / "fails.yml"), "--format", "junit")
    assert code == 1
    junit_schema.validate(out)
    suite = ET.fromstring(out).find("testsuite")
    assert suite is not None
    started = datetime.fromisoformat(suite.get("timestamp", ""))
    assert started.tzinfo is not None
    assert before - timedelta(seconds=5) <= started <= datetime.now(UTC)
    assert suite.get("hostname") == socket.gethostname()
    assert suite.get("file") == str(VALID / "fails.yml")


# --- on_error: continue ---------------------------------------------------------------------------


def test_a_continued_failure_in_a_run_that_succeeds_fails_no_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], junit_schema: xmlschema.XMLSchema10
) -> None:
    """JUnit: `<skipped type="continued">` with the error, no `<failure>`. GitHub: a `::warning`, no `::error`."""
    path = _playbook(tmp_path, CONTINUED)
    code, out = _run(capsys, str(path), "--format", "junit")
    assert code == 0
    junit_schema.validate(out)
    root = ET.fromstring(out)
    assert root.get("failures") == "0" and root.findall(".//failure") == []
    skipped = root.find(".//testcase[@name='probe']/skipped")
    assert skipped is not None and skipped.get("type") == "continued"
    assert "on_error: continue" in skipped.get("message", "") and "probe: not there, 100% sure" in skipped.get("message", "")

    code, out = _run(capsys, str(path), "--format", "github")
    assert code == 0
    commands = [_parse(line) for line in out.splitlines()]
    assert [name for name, _, _ in commands] == ["warning", "notice"]
    _, props, message = commands[0]
    assert props == {"file": str(path), "line": "3", "col": "5", "title": "step probe failed (on_error: continue)"}
    assert message == "probe: not there, 100% sure"
    assert "goes on: succeeded" in commands[1][2]


def test_a_run_that_fails_keeps_its_continued_steps_as_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], junit_schema: xmlschema.XMLSchema10
) -> None:
    """Only the step that failed the run is a failure; the one under `on_error: continue` stays a warning."""
    path = _playbook(tmp_path, MIXED)
    code, out = _run(capsys, str(path), "--format", "junit")
    assert code == 1
    junit_schema.validate(out)
    root = ET.fromstring(out)
    assert [c.get("name") for c in root.findall(".//failure/..")] == ["check"]
    assert root.get("failures") == "1"
    code, out = _run(capsys, str(path), "--format", "github")
    assert [(name, props.get("line")) for name, props, _ in map(_parse, out.splitlines())] == [
        ("warning", "3"), ("error", "6"), ("notice", None)
    ]


# --- GitHub workflow commands ---------------------------------------------------------------------


def _unescape_data(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def _unescape_property(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",").replace("%25", "%")


def _parse(line: str) -> tuple[str, dict[str, str], str]:
    """A workflow command read as the runner reads it; fails on anything the syntax does not allow."""
    assert line.startswith("::") and "\r" not in line and "\n" not in line, line
    end = line.index("::", 2)
    head, message = line[2:end], line[end + 2 :]
    name, _, raw = head.partition(" ")
    assert name in ("error", "warning", "notice"), line
    props: dict[str, str] = {}
    for pair in raw.split(",") if raw else []:
        key, sep, value = pair.partition("=")
        assert sep and key in ANNOTATION_KEYS and key not in props, line
        assert ":" not in value and all(value[i + 1 : i + 3] in ("25", "0D", "0A", "3A", "2C") for i, c in enumerate(value) if c == "%"), line
        props[key] = _unescape_property(value)
    assert all(message[i + 1 : i + 3] in ("25", "0D", "0A") for i, c in enumerate(message) if c == "%"), line
    return name, props, _unescape_data(message)


def test_failed_steps_are_annotated_on_their_place_with_escaping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A path with `,`, `:` and `%`, and a message with CR, LF and `%`, come back intact after unescaping."""
    path = _playbook(tmp_path / "odd,dir:50%", MIXED)
    code, out = _run(capsys, str(path), "--format", "github")
    assert code == 1
    error = next(c for c in map(_parse, out.splitlines()) if c[0] == "error")
    assert error == ("error", {"file": str(path), "line": "6", "col": "5", "title": "step check failed"}, "50% done\r\nnext: a, b")
    assert "odd%2Cdir%3A50%25/" in out


def test_invalid_input_is_annotated_once_per_problem_with_its_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`check --format github` writes one `::error` per problem, on the file, line and column `check` reports."""
    path = _playbook(tmp_path / "a,b", "name: x\nsteps:\n  - id: a\n    log: hi\n    retyr: 3\n")
    code = main(["check", str(path), "--format", "github"])
    out, err = capsys.readouterr()
    assert code == 2
    commands = [_parse(line) for line in out.splitlines()]
    assert [c[0] for c in commands] == ["error", "notice"]
    assert commands[0][1] == {"file": str(path), "line": "5", "col": "5"}
    assert err.splitlines() == [f"{path}:5:5: {commands[0][2]}"]


def test_dry_run_notices_sit_on_their_steps(capsys: pytest.CaptureFixture[str]) -> None:
    """Each planned step's notice points at the step in the playbook."""
    code, out = _run(capsys, str(VALID / "fails.yml"), "--dry-run", "--format", "github")
    assert code == 0
    lines = {props["title"]: props["line"] for _, props, _ in map(_parse, out.splitlines())}
    assert lines == {"step first": "6", "step skipped": "8", "step check": "11", "step after": "13", "step undo": "17", "step cleanup": "20"}
