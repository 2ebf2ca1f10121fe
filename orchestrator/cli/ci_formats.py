"""CI output formats: JUnit XML for test reporters, GitHub workflow commands for annotations.

Both read the same dicts ``--format json`` prints (a run's or a plan's summary) or the located
diagnostics of invalid input, so what CI sees is exactly what scripts see; the plan, when given,
adds where each step is written (`places`) and which steps may fail without failing the run.

- ``junit``: one ``<testsuite>`` per playbook (with ``timestamp``, ``hostname`` and ``file``), one
  ``<testcase>`` per step (classname = playbook name, name = step id). Failed steps carry
  ``<failure>``; skipped, cancelled, unrun ones ``<skipped>``; a step that failed under
  ``on_error: continue`` is ``<skipped type="continued">`` (as pytest writes an expected failure), so
  a reporter does not fail a job whose run went on. Invalid input is one failed testcase per
  diagnostic. Only what the common ``junit-10.xsd`` allows (tests/junit-10.xsd checks it); built
  with ElementTree, so escaping is right.
- ``github``: ``::error file=F,line=L,col=C::message`` per diagnostic; per failed step an ``::error``
  on the step's place in the playbook (a ``::warning`` for a continued one) and a ``::notice``
  summary for a run; a ``::notice`` per step for a plan. Escaped as GitHub's toolkit does (``%``,
  CR and LF in data; also ``:`` and ``,`` in properties).
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from orchestrator.errors import Diagnostic
    from orchestrator.planner import Plan

FORMATS = ("junit", "github")
# Step statuses JUnit shows as <skipped>: `planned` is a step `--dry-run=reads` did not run.
_NOT_RUN = ("skipped", "cancelled", "planned")

# XML 1.0 cannot carry these at all, escaped or not; a program's stderr can contain them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Control characters other than tab, CR and LF, which workflow commands would carry raw.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Place:
    """Where a step is written (its mapping's first key) and whether its failure fails the run."""

    line: int
    col: int
    continues: bool = False


def places(plan: Plan) -> dict[str, Place]:
    """Each step's `Place`, by id (ids are unique across steps, rollback and finally)."""
    source = plan.playbook.source
    return {
        s.id: Place(*source.locate((s.section, s.position)), continues=s.on_error == "continue")
        for s in plan.all_steps()
    }


def diagnostics(items: Sequence[Diagnostic], fmt: str, playbook: str) -> str:
    """Invalid input in `fmt`: one failed testcase, or one ``::error`` line, per diagnostic."""
    _check(fmt)
    if fmt == "github":
        return "\n".join(
            _command("error", d.message, file=d.file, line=str(d.line), col=str(d.col)) for d in items
        )
    return _xml(_invalid_suite(items, playbook))


def plan(summary: Mapping[str, Any], fmt: str, playbook: str, where: Mapping[str, Place] | None = None) -> str:
    """A dry run in `fmt`: every planned step as a passing testcase, or one ``::notice`` per step
    (on the step's place when `where` says it)."""
    _check(fmt)
    steps: list[Mapping[str, Any]] = summary.get("steps", [])
    name = str(summary.get("playbook", playbook))
    where = where or {}
    if fmt == "github":
        return "\n".join(
            _command("notice", _plan_line(s), **_at(playbook, where.get(s["id"])), title=f"step {s['id']}") for s in steps
        )
    suite = _suite(name, tests=len(steps), failures=0, skipped=0, time=0.0, file=playbook)
    _properties(suite, {"file": playbook, "run_id": summary.get("run_id"), "status": summary.get("status")})
    for s in steps:
        case = _case(suite, name, str(s["id"]), 0.0)
        ET.SubElement(case, "system-out").text = _clean(_plan_line(s))
    return _xml(suite)


def result(summary: Mapping[str, Any], fmt: str, playbook: str, where: Mapping[str, Place] | None = None) -> str:
    """A finished run in `fmt`: testcases with failures and skips, or errors plus a summary notice.

    `where` (from `places(plan)`) puts each failed step's annotation on its place in the playbook
    and tells which steps run under ``on_error: continue``. Without it, a failed step of a run that
    succeeded is taken as continued (it cannot have failed the run)."""
    _check(fmt)
    steps: list[Mapping[str, Any]] = summary.get("steps", [])
    name = str(summary.get("playbook", playbook))
    where = where or {}
    continued = {
        str(s["id"]) for s in steps
        if s.get("status") == "failed" and (summary.get("status") == "succeeded" or _continues(where.get(s["id"])))
    }
    counts = Counter("continued" if s["id"] in continued else str(s.get("status")) for s in steps)
    if fmt == "github":
        lines = [
            _command(
                "warning" if s["id"] in continued else "error", _step_error(s, short=True),
                **_at(playbook, where.get(s["id"])),
                title=f"step {s['id']} failed" + (" (on_error: continue)" if s["id"] in continued else ""),
            )
            for s in steps
            if s.get("status") == "failed"
        ]
        tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        lines.append(
            _command(
                "notice",
                f"{name}: {summary.get('status')} in {float(summary.get('duration_s', 0.0)):.2f}s"
                f" ({tally or 'no steps'}); run {summary.get('run_id')}",
            )
        )
        return "\n".join(lines)
    duration = float(summary.get("duration_s", 0.0))
    suite = _suite(
        name, tests=len(steps), failures=counts["failed"], skipped=sum(counts[k] for k in (*_NOT_RUN, "continued")),
        time=duration, file=playbook, started=summary.get("started_at"),
    )
    _properties(suite, {"file": playbook, "run_id": summary.get("run_id"), "status": summary.get("status")})
    for s in steps:
        case = _case(suite, name, str(s["id"]), float(s.get("duration_s") or 0.0))
        status = s.get("status")
        if s["id"] in continued:
            reason = f"failed, and the run went on (on_error: continue): {s.get('error') or 'no error message'}"
            ET.SubElement(case, "skipped", type="continued", message=_clean(reason))
        elif status == "failed":
            _failure(case, str(s.get("error") or "failed"), _step_error(s))
        elif status in _NOT_RUN:
            reason = f"{status}: {s['error']}" if s.get("error") else str(status)
            ET.SubElement(case, "skipped", message=_clean(reason))
    return _xml(suite)


def checked(files: Sequence[tuple[str, Sequence[Diagnostic]]], fmt: str) -> str:
    """`orchestrate check` over several files: (file, its diagnostics) each, empty when valid.

    JUnit: one suite per file, a passing ``check`` testcase for a valid file, a failed testcase
    per diagnostic otherwise. GitHub: an ``::error`` per diagnostic and a ``::notice`` summary.
    """
    _check(fmt)
    invalid = sum(1 for _, found in files if found)
    if fmt == "github":
        lines = [diagnostics(found, fmt, file) for file, found in files if found]
        lines.append(_command("notice", f"{len(files)} playbooks checked, {invalid} invalid"))
        return "\n".join(lines)
    suites = []
    for file, found in files:
        if found:
            suites.append(_invalid_suite(found, file))
            continue
        suite = _suite(file, tests=1, failures=0, skipped=0, time=0.0, file=file)
        _properties(suite, {"file": file, "status": "valid"})
        _case(suite, file, "check", 0.0)
        suites.append(suite)
    return _xml(*suites, name="orchestrate check")


# --- JUnit -----------------------------------------------------------------------------------


def _suite(
    name: str, *, tests: int, failures: int, skipped: int, time: float, file: str, started: Any = None
) -> ET.Element:
    # When and where it ran, as pytest writes them: ISO 8601 with the offset (UTC), and the host.
    if not isinstance(started, str):
        started = (datetime.now(UTC) - timedelta(seconds=time)).isoformat(timespec="milliseconds")
    return ET.Element(
        "testsuite", name=_clean(name), tests=str(tests), failures=str(failures), errors="0",
        skipped=str(skipped), time=f"{time:.3f}", timestamp=started, hostname=_clean(socket.gethostname()),
        file=_clean(file),
    )


def _properties(suite: ET.Element, values: Mapping[str, Any]) -> None:
    props = ET.SubElement(suite, "properties")
    for key, value in values.items():
        if value is not None:
            ET.SubElement(props, "property", name=key, value=_clean(str(value)))


def _case(suite: ET.Element, classname: str, name: str, time: float) -> ET.Element:
    # junit-10.xsd allows a testcase only name, classname, time and group: the file is the suite's.
    return ET.SubElement(suite, "testcase", classname=_clean(classname), name=_clean(name), time=f"{time:.3f}")


def _failure(case: ET.Element, message: str, text: str) -> None:
    failure = ET.SubElement(case, "failure", message=_clean(message), type="failure")
    failure.text = _clean(text)


def _invalid_suite(items: Sequence[Diagnostic], playbook: str) -> ET.Element:
    suite = _suite(playbook, tests=max(len(items), 1), failures=max(len(items), 1), skipped=0, time=0.0, file=playbook)
    _properties(suite, {"file": playbook, "status": "invalid"})
    if not items:  # an invalid input always has a diagnostic; never report it as a pass all the same
        _failure(_case(suite, playbook, "load", 0.0), "invalid input", "invalid input")
    for d in items:
        case = _case(suite, playbook, f"{d.file}:{d.line}:{d.col}", 0.0)
        _failure(case, d.message, str(d))
    return suite


def _xml(*suites: ET.Element, name: str | None = None) -> str:
    # <testsuites> around the suites, with their totals: the shape every JUnit reader accepts
    # (junit-10.xsd has no `skipped` here; each suite carries its own).
    root = ET.Element("testsuites", name=_clean(name or suites[0].get("name") or "orchestrate"))
    for key in ("tests", "failures", "errors"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in suites)))
    root.set("time", f"{sum(float(s.get('time', '0')) for s in suites):.3f}")
    root.extend(suites)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def _clean(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# --- GitHub workflow commands -----------------------------------------------------------------


def _command(name: str, message: str, **properties: str) -> str:
    props = ",".join(f"{key}={_escape_property(value)}" for key, value in properties.items())
    return f"::{name}{' ' + props if props else ''}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    # Control bytes (a program's coloured stderr: ESC [31m) would reach the job log raw, where a
    # terminal or a log viewer acts on them: shown as \xNN text instead.
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


# --- shared wording ---------------------------------------------------------------------------


def _step_error(s: Mapping[str, Any], *, short: bool = False) -> str:
    """Why a step failed; `short` leaves out the step id (a GitHub annotation's title carries it)."""
    attempts = s.get("attempts") or 0
    where = f" ({s['section']})" if s.get("section") not in (None, "steps") else ""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    error = s.get("error") or "no error message"
    if short:
        return f"{error}{where}{f' ({tries.strip()})' if tries else ''}"
    return f"step {s['id']}{where} failed{tries}: {error}"


def _plan_line(s: Mapping[str, Any]) -> str:
    parts = [f"{s.get('action', 'step')} as {s.get('kind')} ({s.get('kind_source', 'inferred')}) on {s.get('executor')}"]
    if s.get("section") not in (None, "steps"):
        parts.append(f"in {s['section']}")
    elif s.get("wave") is not None:
        parts.append(f"wave {s['wave']}")
    if s.get("needs"):
        parts.append("after " + ", ".join(s["needs"]))
    return "; ".join(parts)


def _at(playbook: str, place: Place | None) -> dict[str, str]:
    """The `file`, `line` and `col` properties of an annotation on `place`, or none."""
    if place is None:
        return {}
    return {"file": playbook, "line": str(place.line), "col": str(place.col)}


def _continues(place: Place | None) -> bool:
    return place is not None and place.continues


def _check(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown CI format {fmt!r}; expected one of {', '.join(FORMATS)}")
