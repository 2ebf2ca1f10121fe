"""`--format junit` and `--format github`: what CI systems read from `orchestrate`'s stdout."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from orchestrator.cli import ci_formats
from orchestrator.cli.main import main
from orchestrator.errors import Diagnostic
from tests.corpus import INVALID, VALID

ROOT = Path(__file__).resolve().parent.parent
GITHUB_LINE = re.compile(r"^::(error|warning|notice)( [a-z]+=[^:,]*(,[a-z]+=[^:,]*)*)?::.*$")
PASSING = VALID / "minimal.yml"
FAILING = VALID / "fails.yml"
INVALID_PLAYBOOK = INVALID / "shell_unknown_key.yml"  # two diagnostics


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def _suite(xml_text: str) -> ET.Element:
    root = ET.fromstring(xml_text)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    for attr in ("tests", "failures", "errors"):
        assert root.get(attr) == suite.get(attr)
    return suite


def _cases(suite: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in suite.findall("testcase")}


# --- JUnit ---------------------------------------------------------------------------------------


def test_junit_for_a_passing_run(capsys: pytest.CaptureFixture[str]) -> None:
    """A succeeded run is one suite named after the playbook, one passing testcase per step, with times."""
    code, out, _ = _run(capsys, str(PASSING), "--format", "junit")
    assert code == 0
    suite = _suite(out)
    assert (suite.get("name"), suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("minimal", "1", "0", "0")
    case = _cases(suite)["hello"]
    assert case.get("classname") == "minimal"
    assert float(case.get("time", "-1")) >= 0
    assert list(case) == []


def test_junit_for_a_failing_run(capsys: pytest.CaptureFixture[str]) -> None:
    """A failed step is a <failure> with its error; skipped and never-started steps are <skipped/>; counts add up."""
    code, out, _ = _run(capsys, str(FAILING), "--format", "junit")
    assert code == 1
    suite = _suite(out)
    cases = _cases(suite)
    assert list(cases) == ["first", "skipped", "check", "after", "undo", "cleanup"]
    assert all(c.get("classname") == "fails at run time" for c in cases.values())
    failure = cases["check"].find("failure")
    assert failure is not None
    assert failure.get("message") == "first is not 2"
    assert "step check failed" in (failure.text or "")
    assert cases["skipped"].find("skipped") is not None
    assert cases["after"].find("skipped") is not None
    assert cases["first"].find("failure") is None and cases["first"].find("skipped") is None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("6", "1", "2")
    assert len(suite.findall("testcase/failure")) == int(suite.get("failures", "-1"))


def test_junit_for_an_invalid_playbook(capsys: pytest.CaptureFixture[str]) -> None:
    """Invalid input is one failed testcase per diagnostic, each failure carrying FILE:LINE:COL: message."""
    code, out, err = _run(capsys, str(INVALID_PLAYBOOK), "--format", "junit")
    assert code == 2
    diagnostics = err.splitlines()
    suite = _suite(out)
    failures = suite.findall("testcase/failure")
    assert len(diagnostics) == len(failures) == int(suite.get("failures", "-1")) == 2
    assert [f.text for f in failures] == diagnostics
    assert all(f.text and re.match(rf"^{re.escape(str(INVALID_PLAYBOOK))}:\d+:\d+: ", f.text) for f in failures)


def test_junit_for_a_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    """A dry run lists every planned step as a passing testcase that says where it would run."""
    code, out, _ = _run(capsys, str(VALID / "kinds.yml"), "--dry-run", "--format", "junit")
    assert code == 0
    suite = _suite(out)
    cases = _cases(suite)
    assert list(cases) == ["fetch", "query", "crunch", "summary"]
    assert suite.get("failures") == "0"
    assert "cpu (declared) on processes" in (cases["crunch"].findtext("system-out") or "")


def test_junit_escapes_markup_and_drops_characters_xml_cannot_carry() -> None:
    """Messages with markup, quotes and control characters still make well-formed XML that reads back."""
    nasty = 'expected <a> & "b" \x00\x1b[31m'
    xml_text = ci_formats.diagnostics([Diagnostic("a&b.yml", 3, 4, nasty)], "junit", "a&b.yml")
    failure = ET.fromstring(xml_text).find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == 'expected <a> & "b" \\x00\\x1b[31m'


def test_junit_from_a_real_process_is_pure_xml_on_stdout() -> None:
    """Run as a program, stdout is only the report (logs go to stderr), so `> report.xml` works."""
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", str(FAILING), "--format", "junit", "--log-format", "json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert _suite(done.stdout).get("failures") == "1"


# --- GitHub workflow commands ----------------------------------------------------------------------


def _github_lines(out: str) -> list[str]:
    lines = out.splitlines()
    assert lines
    assert all(GITHUB_LINE.match(line) for line in lines), out
    return lines


def test_github_annotations_for_an_invalid_playbook(capsys: pytest.CaptureFixture[str]) -> None:
    """Each diagnostic becomes `::error file=F,line=L,col=C::message`, in the diagnostics' order."""
    code, out, err = _run(capsys, str(INVALID_PLAYBOOK), "--format", "github")
    assert code == 2
    lines = _github_lines(out)
    expected = []
    for d in err.splitlines():
        m = re.match(r"^(.+):(\d+):(\d+): (.+)$", d)
        assert m is not None
        expected.append(f"::error file={m[1]},line={m[2]},col={m[3]}::{m[4]}")
    assert lines == expected


def test_github_annotations_for_a_failing_run(capsys: pytest.CaptureFixture[str]) -> None:
    """A failed step is an `::error` titled after the step; a `::notice` sums the run up."""
    code, out, _ = _run(capsys, str(FAILING), "--format", "github")
    assert code == 1
    lines = _github_lines(out)
    assert lines[0].startswith(f"::error file={FAILING},line=11,col=5,title=step check failed::")
    assert "first is not 2" in lines[0]
    assert len([line for line in lines if line.startswith("::error")]) == 1
    assert lines[-1].startswith("::notice::fails at run time: failed in ")
    assert "1 failed" in lines[-1] and "1 skipped" in lines[-1]


def test_github_annotations_for_a_passing_run(capsys: pytest.CaptureFixture[str]) -> None:
    """A succeeded run prints only the summary notice."""
    code, out, _ = _run(capsys, str(PASSING), "--format", "github")
    assert code == 0
    lines = _github_lines(out)
    assert len(lines) == 1
    assert lines[0].startswith("::notice::minimal: succeeded in ")


def test_github_notices_for_a_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    """A dry run prints one `::notice` per step, on the step's line and titled with its id."""
    code, out, _ = _run(capsys, str(VALID / "kinds.yml"), "--dry-run", "--format", "github")
    assert code == 0
    lines = _github_lines(out)
    titles = [re.sub(r"file=[^,]*,line=\d+,col=\d+,", "", line.split("::")[1]) for line in lines]
    assert titles == [f"notice title=step {s}" for s in ("fetch", "query", "crunch", "summary")]
    assert all(f"file={VALID / 'kinds.yml'}," in line for line in lines)
    assert "after fetch" in lines[2]


def test_github_escapes_data_and_properties() -> None:
    """`%`, CR and LF are escaped everywhere; `:` and `,` also in properties, as GitHub's toolkit does."""
    line = ci_formats.diagnostics([Diagnostic("C:/a,b.yml", 1, 2, "50% done\r\nnext: line, here")], "github", "x")
    assert line == "::error file=C%3A/a%2Cb.yml,line=1,col=2::50%25 done%0D%0Anext: line, here"
    assert GITHUB_LINE.match(line)


def test_unknown_format_is_refused() -> None:
    """Only junit and github are CI formats; anything else is a programming error, said plainly."""
    with pytest.raises(ValueError, match="unknown CI format 'xml'"):
        ci_formats.result({"steps": []}, "xml", "x")


# --- `orchestrate check` over several files ---------------------------------------------------------


def test_check_report_in_junit_has_one_suite_per_file() -> None:
    """A valid file is a suite with one passing `check` testcase; an invalid one a failure per problem; totals add up."""
    problems = [Diagnostic("bad.yml", 3, 5, "unknown key 'retyr'"), Diagnostic("bad.yml", 7, 1, "missing required key 'id'")]
    root = ET.fromstring(ci_formats.checked([("good.yml", []), ("bad.yml", problems)], "junit"))
    assert root.tag == "testsuites"
    assert [s.get("name") for s in root.findall("testsuite")] == ["good.yml", "bad.yml"]
    assert (root.get("tests"), root.get("failures")) == ("3", "2")
    assert [c.get("name") for c in root.findall("testsuite/testcase")] == ["check", "bad.yml:3:5", "bad.yml:7:1"]


def test_check_report_in_github_annotates_each_problem_and_sums_up() -> None:
    """Each problem of each file is an `::error` on its place; a `::notice` counts the files."""
    lines = ci_formats.checked([("good.yml", []), ("bad.yml", [Diagnostic("bad.yml", 3, 5, "unknown key 'retyr'")])], "github")
    assert lines.splitlines() == [
        "::error file=bad.yml,line=3,col=5::unknown key 'retyr'",
        "::notice::2 playbooks checked, 1 invalid",
    ]
