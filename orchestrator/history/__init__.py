"""Run history: every run the CLI makes, recorded in a SQLite file as it goes, and resumable.

`RunJournal` (journal.py) is the reporter that records a run: the run when it starts, its steps
when they end, its `for_each` items as they succeed, its status when it ends. A run that fails or is
interrupted leaves a complete record; one that is killed leaves what had ended and a run still
marked ``running``, which `list_runs` shows as ``abandoned`` once its process is gone. Such a run
can be resumed (resume.py): the steps and items that succeeded are not run again. `orchestrate
runs` reads the file (records.py); store.py says where it is and how it is kept.

The CLI records every run (not dry runs) unless ``ORCHESTRATOR_HISTORY=off`` or
``history.enabled: false``. The library records only when given a journal:
``orchestrator.run(plan, reporter=RunJournal(path))``.
"""

from orchestrator.history.journal import RunJournal
from orchestrator.history.records import RunRecord, find_run, list_runs
from orchestrator.history.resume import ResumeRefused, Resumption, prepare_resume
from orchestrator.history.store import OFF, HistoryUnavailable, history_path

__all__ = [
    "OFF", "HistoryUnavailable", "ResumeRefused", "Resumption", "RunJournal", "RunRecord", "find_run",
    "history_path", "list_runs", "prepare_resume",
]
