"""Playbooks used as test data: `valid/` ones that plan, `invalid/` ones that must not.

Each invalid playbook says on its first line what `orchestrate` must report, e.g.
``# expect: 6:5 unknown key 'retyr'`` (line and column from 1, counting that comment line, then
fragments of the message, in order, separated by `` ... ``: ``steps[0].id: ... got 'Fetch'``). Helper modules beside them are prefixed ``corpus_`` so they never clash
with other folders' modules in one interpreter (a playbook's folder is put on ``sys.path``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
VALID = HERE / "valid"
INVALID = HERE / "invalid"
PLAYBOOKS = HERE.parent.parent / "playbooks"

_EXPECT = re.compile(r"^# expect: (?P<line>\d+):(?P<col>\d+) (?P<fragment>.+)$")


@dataclass(frozen=True)
class Expected:
    """What an invalid playbook must produce: a diagnostic at line:col whose message holds `fragment`."""

    path: Path
    line: int
    col: int
    fragment: str

    @property
    def name(self) -> str:
        return self.path.stem

    def matches(self, message: str) -> bool:
        """Whether `message` holds every fragment, in order."""
        at = 0
        for piece in self.fragment.split(" ... "):
            found = message.find(piece, at)
            if found < 0:
                return False
            at = found + len(piece)
        return True


def expectation(path: Path) -> Expected:
    """Read the `# expect:` header of an invalid playbook."""
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    m = _EXPECT.match(first)
    if m is None:
        raise ValueError(f"{path}: first line must be '# expect: LINE:COL fragment', got {first!r}")
    return Expected(path, int(m["line"]), int(m["col"]), m["fragment"])


def invalid_cases() -> list[Expected]:
    """Every invalid playbook with what it must produce, in name order."""
    return [expectation(p) for p in sorted(INVALID.glob("*.yml"))]


def valid_playbooks() -> list[Path]:
    """The valid corpus, in name order."""
    return sorted(VALID.glob("*.yml"))


def shipped_playbooks() -> list[Path]:
    """The playbooks the project ships in `playbooks/`."""
    return sorted(PLAYBOOKS.glob("*.yml"))
