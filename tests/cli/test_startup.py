"""What `orchestrate` pays before and around a run: the modules it imports, and when the garbage
collector runs (only while steps run)."""

from __future__ import annotations

import gc
import io
import json
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orchestrator
from orchestrator.cli.main import main

if TYPE_CHECKING:
    import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Installed, and needed by no part of a one-step `set` run with JSON logs.
UNUSED = ("rich", "pygments", "attr", "tornado", "aiohttp", "httpx", "boto3", "jinja2")
ONE_STEP = "name: one\nsteps:\n  - id: one\n    set: 1\n"


def imported_by_a_run(tmp_path: Path, *args: str, text: str = ONE_STEP, watched: tuple[str, ...] = UNUSED) -> dict[str, Any]:
    """Run `orchestrate one.yml ARGS` in a fresh interpreter (stderr a pipe); which of `watched` it
    imported, its exit status and its log lines."""
    playbook = tmp_path / "one.yml"
    playbook.write_text(text, encoding="utf-8")
    code = (
        "import json, sys\nfrom orchestrator.cli.main import main\n"
        f"code = main([{str(playbook)!r}, *{list(args)!r}])\n"
        f"print(json.dumps({{'code': code, 'imported': [m for m in {watched!r} if m in sys.modules]}}), file=sys.stdout)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    report["logs"] = done.stderr.splitlines()
    return report


def test_a_run_with_json_logs_imports_no_console_renderer_and_no_http_client(tmp_path: Path) -> None:
    """A one-step run without http steps, logging JSON: none of rich, pygments, attrs (structlog's
    console tracebacks), tornado (tenacity's), aiohttp, httpx or boto3 is imported, and the logs are
    JSON lines."""
    report = imported_by_a_run(tmp_path, "--format", "json")
    assert report["code"] == 0
    assert report["imported"] == []
    events = [json.loads(line)["event"] for line in report["logs"]]
    assert events[0] == "run.started" and events[-1] == "run.finished"


def test_a_second_run_of_the_same_text_imports_neither_the_validator_nor_yaml(tmp_path: Path) -> None:
    """The first run validates the playbook and the configuration (pydantic, YAML) and keeps the
    records in the validated cache; the next run of the same texts reads them back, and plugin
    discovery's package metadata is not read either."""
    watched = ("pydantic", "pydantic_core", "yaml", "importlib.metadata", "orchestrator.actions.http")
    text = ONE_STEP.replace("name: one", "name: one, run twice")
    first = imported_by_a_run(tmp_path, "--format", "json", text=text, watched=watched)
    assert first["code"] == 0 and {"pydantic", "yaml"} <= set(first["imported"])
    second = imported_by_a_run(tmp_path, "--format", "json", text=text, watched=watched)
    assert second["code"] == 0, second["logs"]
    assert second["imported"] == []


def test_templates_of_plain_lookups_render_without_importing_jinja(tmp_path: Path) -> None:
    """`{{ item }}`, `{{ vars.x }}`, `{{ steps.a.output[0] }}` and text around them are read and
    rendered by plain lookups: Jinja (about 45 ms of start-up) is not imported."""
    text = (
        "name: lookups\nvars: {x: 1}\nsteps:\n"
        "  - id: a\n    for_each: [1, 2]\n    set: {v: '{{ item }}', w: 'n-{{ index }}-{{ vars.x }}'}\n"
        "  - id: b\n    set: {first: '{{ steps.a.output[0].v }}'}\n"
    )
    report = imported_by_a_run(tmp_path, "--format", "json", text=text)
    assert report["code"] == 0, report["logs"]
    assert report["imported"] == []


def test_a_template_that_needs_jinja_imports_it_and_renders(tmp_path: Path) -> None:
    """A filter, a call or a `{% %}` block is Jinja's: it is imported for the template that needs it."""
    text = "name: jinja\nsteps:\n  - id: a\n    set: {v: '{{ range(3) | list | length }}'}\n"
    report = imported_by_a_run(tmp_path, "--format", "json", text=text)
    assert report["code"] == 0, report["logs"]
    assert report["imported"] == ["jinja2"]


def test_console_logs_keep_what_structlog_formats_them_with(tmp_path: Path) -> None:
    """With console logs, structlog is imported as usual, rich included."""
    report = imported_by_a_run(tmp_path, "--format", "json", "--log-format", "console")
    assert report["code"] == 0
    assert "rich" in report["imported"]


def steps_playbook(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "steps.yml"
    steps = "".join(f"  - id: s{i}\n    set: {{value: '{{{{ vars.x }}}}-{i}'}}\n" for i in range(count))
    path.write_text(f"name: steps\nvars: {{x: 1}}\nsteps:\n{steps}", encoding="utf-8")
    return path


def collections_during(work: Any) -> int:
    """How many automatic collections ran during `work()`."""
    started: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.callbacks.append(count)
    try:
        work()
    finally:
        gc.callbacks.remove(count)
    return len(started)


def test_a_dry_run_collects_no_garbage_while_planning_the_same_through_the_api_does(tmp_path: Path) -> None:
    """Loading, planning and printing allocate and keep: the CLI runs them with the collector off,
    and turns it back on when it returns (which may start one collection of the youngest
    generation at once); planning the same playbook through the API collects again and again."""
    path = steps_playbook(tmp_path, 400)
    orchestrator.plan(path)  # modules imported, caches filled
    assert gc.isenabled()
    assert collections_during(lambda: orchestrator.plan(path)) >= 5
    with redirect_stdout(io.StringIO()):
        assert collections_during(lambda: main(["--dry-run", str(path)])) <= 1
    assert gc.isenabled()


def test_the_run_itself_collects(tmp_path: Path) -> None:
    """While steps run, the collector is on (a long run frees what its finished items held)."""
    (tmp_path / "probe.py").write_text(
        "import gc, json\n\ndef state(path):\n    open(path, 'w').write(json.dumps(gc.isenabled()))\n", encoding="utf-8"
    )
    seen = tmp_path / "seen.json"
    playbook = tmp_path / "probe.yml"
    playbook.write_text(f"name: probe\nsteps:\n  - id: probe\n    call: probe:state\n    with: {{path: {str(seen)!r}}}\n",
                        encoding="utf-8")
    with redirect_stdout(io.StringIO()):
        assert main([str(playbook), "--format", "json"]) == 0
    assert json.loads(seen.read_text()) is True
    assert gc.isenabled()


def test_as_the_program_it_leaves_what_is_alive_to_the_end_of_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Called as the program (no argv), the command freezes what is alive when it returns, so the
    interpreter's last collection skips it; called with arguments, as a function, it does not."""
    path = steps_playbook(tmp_path, 3)
    try:
        with redirect_stdout(io.StringIO()):
            assert main(["--dry-run", str(path)]) == 0
        assert gc.get_freeze_count() == 0
        monkeypatch.setattr(sys, "argv", ["orchestrate", "--dry-run", str(path)])
        with redirect_stdout(io.StringIO()):
            assert main() == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
