"""Hostile input files are refused cheaply: located, exit 2, no traceback, bounded time and memory.

A playbook, a `--config` file and a `--var @FILE` file are read with the same limits
(docs/playbook.md, "Limits on input"): a regular file of at most 4 MiB, checked before reading;
aliases standing for at most 100,000 values, none recursive; nesting at most 100 levels deep; only
the tags of plain values; no `<<` merge keys.

Each case runs a real `orchestrate` process and measures it with `os.wait4` (the CPU time and peak
RSS of that process alone). The bounds are relative to the same process refusing a two-line
invalid playbook, so they measure the refusal's own work, not the interpreter's start: at most
0.5 s more CPU and 32 MiB more peak RSS (the start costs some 0.45 s and 47 MiB here).

The files of `corpus/` say on their first line where and what `orchestrate` must report (as in
`tests/corpus/`); their name says how they are given: `playbook_*` as the playbook, `config_*` with
`--config`, `vars_*` with `--var @FILE`, `check_*` to `orchestrate check`. The other cases are
built in a temporary folder: devices, FIFOs, folders, files too large, deep nesting.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import orchestrator
from orchestrator.model.source import MAX_ALIAS_NODES, MAX_DEPTH, MAX_FILE_BYTES, YamlError, load_yaml
from tests.corpus import expectation

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
DIAGNOSTIC = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")
OK_PLAYBOOK = "name: harmless\nsteps:\n  - {id: a, log: hi}\n"

#: How much more than refusing a trivial playbook a hostile input may cost.
EXTRA_CPU_S = 0.5
EXTRA_RSS_MIB = 32.0
#: A process still running after this long is hung (reading a FIFO, a device): the case fails.
HANG_S = 60.0


@dataclass(frozen=True)
class Outcome:
    """What one `orchestrate` process did, and what it cost."""

    code: int
    stdout: str
    stderr: str
    cpu_s: float
    peak_rss_mib: float
    wall_s: float


def orchestrate(args: Sequence[str], folder: Path) -> Outcome:
    """Run `python -m orchestrator.cli.main ARGS` in its own process; measure it with `os.wait4`.

    Runs record their history under `folder`, so a refusal can be shown to have recorded nothing."""
    env = {**os.environ, "ORCHESTRATOR_HISTORY": str(folder / "history.sqlite"), "PYTHONDONTWRITEBYTECODE": "1"}
    out_path, err_path = folder / "stdout.txt", folder / "stderr.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli.main", *args],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=ROOT, env=env,
        )
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > HANG_S:
                proc.kill()
                proc.wait()
                pytest.fail(f"orchestrate {' '.join(args)} still running after {HANG_S:.0f} s")
            time.sleep(0.005)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return Outcome(
        code=proc.returncode,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
        wall_s=wall,
    )


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """The cheapest refusal: a playbook without steps. Best of three, for CPU time and for RSS."""
    folder = tmp_path_factory.mktemp("baseline")
    trivial = folder / "trivial.yml"
    trivial.write_text("name: no steps\n")
    runs = [orchestrate([str(trivial)], folder) for _ in range(3)]
    assert all(r.code == 2 for r in runs), runs[0].stderr
    return Outcome(2, "", "", min(r.cpu_s for r in runs), min(r.peak_rss_mib for r in runs), min(r.wall_s for r in runs))


# ---- the cases -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    """One hostile input given to `orchestrate` one way, and what it must print."""

    args: tuple[str, ...]
    file: str
    line: int
    col: int
    fragment: str


def _how(role: str, path: Path, harmless: Path) -> tuple[str, ...]:
    """The arguments that hand `path` to orchestrate in `role`, beside a harmless playbook."""
    return {
        "playbook": (str(path),),
        "config": ("--config", str(path), str(harmless)),
        "vars": ("--var", f"@{path}", str(harmless)),
        "check": ("check", str(path)),
        "check-config": ("check", "--config", str(path), str(harmless)),
    }[role]


def _corpus_case(path: Path) -> Callable[[Path], Hostile]:
    def make(folder: Path) -> Hostile:
        expected = expectation(path)
        harmless = folder / "harmless.yml"
        harmless.write_text(OK_PLAYBOOK)
        return Hostile(_how(path.name.split("_")[0], path, harmless), str(path), expected.line, expected.col, expected.fragment)

    return make


def _built(role: str, build: Callable[[Path], Path | str], line: int, col: int, fragment: str) -> Callable[[Path], Hostile]:
    """A case whose input `build` makes in the case's folder (or names, for a device)."""

    def make(folder: Path) -> Hostile:
        harmless = folder / "harmless.yml"
        harmless.write_text(OK_PLAYBOOK)
        made = build(folder)
        return Hostile(_how(role, Path(made), harmless), str(made), line, col, fragment)

    return make


def _fifo(folder: Path) -> Path:
    """A FIFO nobody writes to: opening it to read would wait for ever."""
    path = folder / "fifo.yml"
    os.mkfifo(path)
    return path


def _folder(folder: Path) -> Path:
    path = folder / "playbooks.yml"
    path.mkdir()
    return path


def _sparse(folder: Path) -> Path:
    """A regular file one byte over the limit, all holes: reading it would cost 4 MiB of memory."""
    path = folder / "huge.yml"
    with path.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    return path


def _latin1(folder: Path) -> Path:
    path = folder / "latin1.yml"
    path.write_bytes("name: café\nsteps:\n  - {id: a, log: \"déjà\"}\n".encode("latin-1"))
    return path


def _nested(depth: int) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / f"nested{depth}.yml"
        path.write_text(f"name: deep\nsteps:\n  - id: a\n    set: {'[' * depth}1{']' * depth}\n")
        return path

    return build


def _alias_chain(folder: Path) -> Path:
    """Each anchored list holds the previous one: 2 lines add one level, past any nesting limit."""
    lines = ["name: chain", "x-0: &a0 [1]"] + [f"x-{i}: &a{i} [*a{i - 1}]" for i in range(1, 150)]
    path = folder / "chain.yml"
    path.write_text("\n".join([*lines, "steps:", "  - {id: a, log: hi}", ""]))
    return path


def _dev_zero(_: Path) -> str:
    return "/dev/zero"


NOT_REGULAR = "not a regular file"
TOO_LARGE = f"over the {MAX_FILE_BYTES // 1024 // 1024} MiB ({MAX_FILE_BYTES:,} bytes) limit on input files"
# The list at depth MAX_DEPTH (its path: steps, 0, set, then MAX_DEPTH - 3 lists) opens at column
# 10 + MAX_DEPTH - 3 of line 4.
DEEP_COL = 10 + MAX_DEPTH - 3

CASES: dict[str, Callable[[Path], Hostile]] = {
    **{path.stem: _corpus_case(path) for path in sorted(CORPUS.glob("*.yml"))},
    "playbook_dev_zero": _built("playbook", _dev_zero, 1, 1, f"cannot read playbook: {NOT_REGULAR} (a character device)"),
    "playbook_fifo": _built("playbook", _fifo, 1, 1, f"cannot read playbook: {NOT_REGULAR} (a FIFO)"),
    "playbook_directory": _built("playbook", _folder, 1, 1, f"cannot read playbook: {NOT_REGULAR} (a directory)"),
    "playbook_over_4_mib": _built("playbook", _sparse, 1, 1, f"cannot read playbook: ... {TOO_LARGE}"),
    "playbook_not_utf8": _built("playbook", _latin1, 1, 10, "cannot read playbook: not UTF-8 text (byte 0xe9)"),
    "playbook_nested_150": _built("playbook", _nested(150), 4, DEEP_COL, f"nested more than {MAX_DEPTH} levels deep"),
    "playbook_nested_5000": _built("playbook", _nested(5000), 4, 1007, "exceeded maximum nesting depth"),
    "playbook_alias_chain": _built("playbook", _alias_chain, 101, 13, f"alias *a98 nests values more than {MAX_DEPTH} levels"),
    "config_dev_zero": _built("config", _dev_zero, 1, 1, f"cannot read configuration: {NOT_REGULAR} (a character device)"),
    "config_fifo": _built("config", _fifo, 1, 1, f"cannot read configuration: {NOT_REGULAR} (a FIFO)"),
    "config_over_4_mib": _built("config", _sparse, 1, 1, f"cannot read configuration: ... {TOO_LARGE}"),
    "vars_dev_zero": _built("vars", _dev_zero, 1, 1, f"--var @/dev/zero: {NOT_REGULAR} (a character device)"),
    "vars_fifo": _built("vars", _fifo, 1, 1, f"cannot read the variables file ... {NOT_REGULAR} (a FIFO)"),
    "vars_directory": _built("vars", _folder, 1, 1, f"cannot read the variables file ... {NOT_REGULAR} (a directory)"),
    "check_fifo": _built("check", _fifo, 1, 1, f"cannot read playbook: {NOT_REGULAR} (a FIFO)"),
    "check_config_dev_zero": _built("check-config", _dev_zero, 1, 1, f"cannot read configuration: {NOT_REGULAR}"),
}


def test_there_are_enough_hostile_cases() -> None:
    """At least 20 hostile inputs, among them every way a file reaches orchestrate."""
    assert len(CASES) >= 20
    assert {name.split("_")[0] for name in CASES} == {"playbook", "config", "vars", "check"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input_is_refused_cheaply_with_its_place(name: str, tmp_path: Path, baseline: Outcome) -> None:
    """`orchestrate` exits 2 and prints `FILE:LINE:COL: message` at the expected place, with no
    traceback and no run recorded, for at most 0.5 s of CPU and 32 MiB of memory more than refusing
    a trivial playbook costs."""
    case = CASES[name](tmp_path)
    done = orchestrate(case.args, tmp_path)

    assert done.code == 2, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert lines and all(DIAGNOSTIC.match(line) for line in lines), done.stderr
    prefix = f"{case.file}:{case.line}:{case.col}: "
    assert [line for line in lines if line.startswith(prefix) and _holds(line[len(prefix):], case.fragment)], (
        f"expected {case.line}:{case.col} with {case.fragment!r}; got:\n{done.stderr}"
    )
    assert not (tmp_path / "history.sqlite").exists()
    assert done.cpu_s <= baseline.cpu_s + EXTRA_CPU_S, f"{done.cpu_s:.2f} s of CPU; a trivial refusal takes {baseline.cpu_s:.2f} s"
    assert done.peak_rss_mib <= baseline.peak_rss_mib + EXTRA_RSS_MIB, (
        f"{done.peak_rss_mib:.0f} MiB peak RSS; a trivial refusal takes {baseline.peak_rss_mib:.0f} MiB"
    )


def _holds(message: str, fragment: str) -> bool:
    """Whether `message` holds every piece of `fragment` (split on ` ... `), in order."""
    at = 0
    for piece in fragment.split(" ... "):
        found = message.find(piece, at)
        if found < 0:
            return False
        at = found + len(piece)
    return True


def test_the_billion_laughs_costs_next_to_nothing(tmp_path: Path, baseline: Outcome) -> None:
    """The classic 9-level "billion laughs" (10**9 values once expanded, 342 bytes) is refused in
    under 0.5 s of work and under 80 MiB peak RSS, naming the alias that crosses the limit."""
    path = CORPUS / "playbook_billion_laughs.yml"
    assert len(path.read_bytes().split(b"\n", 1)[1]) < 400  # after the `# expect:` line
    done = orchestrate([str(path)], tmp_path)
    assert done.code == 2
    assert done.stderr.startswith(f"{path}:7:8: alias *e stands for 66,430 values"), done.stderr
    assert done.cpu_s - baseline.cpu_s < 0.5
    assert done.peak_rss_mib < max(80.0, baseline.peak_rss_mib + 16)
    assert done.wall_s < baseline.wall_s + 2.0


def test_a_recursive_alias_in_a_var_value_is_a_usage_error(tmp_path: Path) -> None:
    """`--var NAME=VALUE` passes the same checks as a file: a recursive alias or a tag exits 2
    naming the variable; text that is not YAML (`*.txt`) stays text."""
    harmless = tmp_path / "harmless.yml"
    harmless.write_text(OK_PLAYBOOK)
    done = orchestrate(["--var", "net=&n {peers: [*n]}", str(harmless)], tmp_path)
    assert done.code == 2
    assert done.stderr.strip() == (
        "orchestrate: error: --var net: recursive alias *n: it is used inside the value it names, which would "
        "contain itself without end; use the alias outside that value"
    )
    done = orchestrate(["--var", "cmd=!!python/object/apply:os.system [id]", str(harmless)], tmp_path)
    assert done.code == 2 and "--var cmd: bad value: " in done.stderr and "tag not allowed" in done.stderr
    from orchestrator.cli.arguments import parse_vars

    assert parse_vars(["glob=*.txt", "n=3", "names=[a, b]"]) == {"glob": "*.txt", "n": 3, "names": ["a", "b"]}


# ---- the limits, exactly -----------------------------------------------------------------------------


def _aliases_standing_for(total: int) -> str:
    """A document whose aliases stand for exactly `total` values: a 9-value list used whole."""
    uses, rest = divmod(total, 10)
    lines = ["base: &base [1, 2, 3, 4, 5, 6, 7, 8, 9]", "one: &one x", "uses:"]
    lines += ["  - *base"] * uses + ["  - *one"] * rest
    return "\n".join(lines) + "\n"


def test_aliases_may_stand_for_up_to_the_limit() -> None:
    """Aliases standing for exactly MAX_ALIAS_NODES values load; one more value is refused at the
    alias that crosses the limit."""
    data, _ = load_yaml(_aliases_standing_for(MAX_ALIAS_NODES), "ok.yml")
    assert len(data["uses"]) == MAX_ALIAS_NODES // 10
    with pytest.raises(YamlError) as caught:
        load_yaml(_aliases_standing_for(MAX_ALIAS_NODES + 1), "over.yml")
    (diag,) = caught.value.diagnostics
    assert (diag.line, diag.col) == (4 + MAX_ALIAS_NODES // 10, 5)
    assert diag.message.startswith("alias *one stands for 1 values, taking this document's aliases over the limit")


def test_nesting_up_to_the_limit_loads() -> None:
    """Lists nested MAX_DEPTH - 1 levels below the top-level mapping load; one more is refused."""
    deep = "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1)
    data, _ = load_yaml(f"x: {deep}\n", "ok.yml")
    for _ in range(MAX_DEPTH):
        data = data["x"] if isinstance(data, dict) else data[0]
    assert data == 1
    with pytest.raises(YamlError, match=f"nested more than {MAX_DEPTH} levels deep"):
        load_yaml(f"x: [{deep}]\n", "over.yml")


def test_anchors_and_aliases_that_stay_small_still_work(tmp_path: Path) -> None:
    """A playbook sharing values through anchors and aliases loads and plans as if written out."""
    path = tmp_path / "shared.yml"
    path.write_text(
        "name: shared\n"
        "vars: {api: 'http://h.example?a=1&b=2', tags: &tags [web, prod], retry: &retry {attempts: 4, delay: 10ms}}\n"
        "steps:\n"
        "  - {id: a, retry: *retry, set: *tags}\n"
        "  - {id: b, retry: *retry, set: {all: *tags}}\n"
    )
    playbook = orchestrator.load(path)
    first, second = playbook.section("steps")
    assert first.retry is not None and first.retry.attempts == 4 and second.retry == first.retry
    assert orchestrator.plan(path) is not None


def test_standard_tags_are_still_read() -> None:
    """The tags of plain values keep their meaning: `!!str 5` is text, `!!int "7"` a number."""
    data, _ = load_yaml('a: !!str 5\nb: !!int "7"\nc: !!map {d: !!seq [!!null ""]}\ne: !!float 1\n', "tags.yml")
    assert data == {"a": "5", "b": 7, "c": {"d": [None]}, "e": 1.0}


def test_windows_line_ends_and_line_numbers_are_kept(tmp_path: Path) -> None:
    """A file written with CRLF line ends loads, and its errors keep their line numbers."""
    path = tmp_path / "crlf.yml"
    path.write_bytes(b"name: crlf\r\nsteps:\r\n  - id: a\r\n    lgo: hi\r\n")
    with pytest.raises(orchestrator.PlaybookError) as caught:
        orchestrator.load(path)
    assert any(d.line == 4 and d.col == 5 for d in caught.value.diagnostics), caught.value.diagnostics
