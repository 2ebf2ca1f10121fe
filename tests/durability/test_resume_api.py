"""`orchestrator.resume` / `arun(resume=...)`: a run continued from its journal runs only what had not
succeeded, under the same run id and Idempotency-Keys, with the recorded outputs feeding templates.

The server is a real aiohttp server on 127.0.0.1 that records every request it gets."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

import orchestrator
from orchestrator.engine.journal import IndexRanges, as_ranges
from orchestrator.history import ResumeRefused, RunJournal, list_runs

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path


class Recorder:
    """An API that creates things: POST /things answers after `delay` seconds; GET /gate answers 503
    until `open` is set. Every request is recorded with its body's index and Idempotency-Key."""

    def __init__(self) -> None:
        self.posts: list[tuple[int, str]] = []
        self.open = False
        self.delay = 0.02
        self.url = ""
        #: After this many creates, set this event.
        self.interrupt_at: tuple[int, asyncio.Event] | None = None

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.posts.append((body["index"], request.headers["Idempotency-Key"]))
        if self.interrupt_at is not None and len(self.posts) >= self.interrupt_at[0]:
            self.interrupt_at[1].set()
        await asyncio.sleep(self.delay)
        return web.json_response({"id": f"thing-{body['index']}"}, status=201)

    async def gate(self, request: web.Request) -> web.Response:
        return web.json_response({"open": True}) if self.open else web.json_response({"open": False}, status=503)


@pytest.fixture
async def api() -> AsyncIterator[Recorder]:
    recorder = Recorder()
    app = web.Application()
    app.router.add_post("/things", recorder.create)
    app.router.add_get("/gate", recorder.gate)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    recorder.url = f"http://127.0.0.1:{port}"
    yield recorder
    await runner.cleanup()


CREATE = """
    name: create-many
    vars: {n: 300}
    steps:
      - id: seed
        set: {base: 7}
      - id: things
        needs: [seed]
        for_each: "{{ range(n) }}"
        concurrency: 10
        http: {method: POST, url: "{{ api }}/things", json: {index: "{{ item }}"}, expect: [201]}
      - id: gate
        needs: [things]
        retry: 1
        http: {method: GET, url: "{{ api }}/gate"}
      - id: report
        needs: [gate]
        set: {seed: "{{ steps.seed.output.base }}", made: "{{ steps.things.output | length }}",
              last: "{{ steps.things.output[-1].json.id }}"}
    """


async def _interrupted(path: Path, api: Recorder, history: Path, posts: int) -> orchestrator.RunResult:
    """A run of `path` interrupted (as by Ctrl-C) when the server has had `posts` creates."""
    api.interrupt_at = (posts, asyncio.Event())
    return await orchestrator.arun(path, vars={"api": api.url}, reporter=RunJournal(history), interrupt=api.interrupt_at[1])


async def test_an_interrupted_fan_out_resumes_with_only_the_items_not_done(
    write_playbook: Callable[..., Path], api: Recorder, tmp_path: Path
) -> None:
    """Interrupted a third of the way, the resumed run sends only the items not recorded as done
    (and those in flight again, with the key they had), and later templates see every output."""
    history = tmp_path / "runs.sqlite"
    path = write_playbook(CREATE)
    first = await _interrupted(path, api, history, 100)
    assert first.status == "interrupted"
    sent_before = Counter(i for i, _ in api.posts)
    keys_before = dict(api.posts)
    api.open = True
    resumed = await orchestrator.arun(resume=first.run_id, vars={"api": api.url}, reporter=RunJournal(history))
    assert resumed.status == "succeeded" and resumed.run_id == first.run_id
    things = resumed.step("things")
    assert things.items == 300 and 0 < things.items_resumed < 300
    sent_after = Counter(i for i, _ in api.posts) - sent_before
    assert sum(sent_after.values()) == 300 - things.items_resumed  # each item not recorded, once
    assert set(sent_before) | set(sent_after) == set(range(300))
    again = set(sent_before) & set(sent_after)  # in flight (or not yet committed) when interrupted
    assert len(again) <= 10 + 20
    assert all(key == keys_before[i] for i, key in api.posts if i in again)  # the same Idempotency-Key
    assert resumed.step("seed").resumed and not things.resumed
    assert resumed.step("report").output == {"seed": 7, "made": 300, "last": "thing-299"}


async def test_a_failed_run_resumes_from_the_failed_step_with_recorded_outputs(
    write_playbook: Callable[..., Path], api: Recorder, tmp_path: Path
) -> None:
    history = tmp_path / "runs.sqlite"
    path = write_playbook(CREATE.replace("{n: 300}", "{n: 20}"))
    first = await orchestrator.arun(path, vars={"api": api.url}, reporter=RunJournal(history))
    assert first.status == "failed" and first.step("gate").status == "failed"
    api.open, posted = True, len(api.posts)
    resumed = await asyncio.to_thread(orchestrator.resume, first.run_id, history=history, vars={"api": api.url})
    assert resumed.status == "succeeded"
    assert len(api.posts) == posted  # nothing created twice
    assert [s.id for s in resumed.steps if s.resumed] == ["seed", "things"]
    assert resumed.step("report").output == {"seed": 7, "made": 20, "last": "thing-19"}


async def test_after_rollback_every_step_runs_again_with_new_idempotency_keys(
    write_playbook: Callable[..., Path], api: Recorder, tmp_path: Path
) -> None:
    """Rollback undid the run's work, so a resume does it again from the top, and its creates carry
    keys of their own: a server must not answer them with the replies to the creates it undid."""
    history = tmp_path / "runs.sqlite"
    path = write_playbook(CREATE.replace("{n: 300}", "{n: 5}") + """
    rollback:
      - {id: undo, log: "deleting {{ steps.things.output | length }} things"}
    """)
    first = await orchestrator.arun(path, vars={"api": api.url}, reporter=RunJournal(history))
    assert first.status == "failed" and first.step("undo").status == "succeeded"
    keys_before = {key for _, key in api.posts}
    api.open = True
    resumed = await orchestrator.arun(resume=first.run_id, vars={"api": api.url}, reporter=RunJournal(history))
    assert resumed.status == "succeeded" and not any(s.resumed for s in resumed.steps)
    keys_after = {key for _, key in api.posts} - keys_before
    assert len(api.posts) == 10 and len(keys_after) == 5


async def test_resume_refusals_are_errors_with_exit_code_2(write_playbook: Callable[..., Path], api: Recorder, tmp_path: Path) -> None:
    history = tmp_path / "runs.sqlite"
    path = write_playbook(CREATE.replace("{n: 300}", "{n: 2}"))
    api.open = True
    done = await orchestrator.arun(path, vars={"api": api.url}, reporter=RunJournal(history))
    assert done.status == "succeeded"
    with pytest.raises(ResumeRefused, match="succeeded: there is nothing to resume") as refused:
        await orchestrator.arun(resume=done.run_id, reporter=RunJournal(history))
    assert refused.value.exit_code == 2
    with pytest.raises(ResumeRefused, match="no single run matches 'nope'"):
        await orchestrator.arun(resume="nope", reporter=RunJournal(history))
    with pytest.raises(TypeError, match="pass no target"):
        await orchestrator.arun(path, resume=done.run_id)


async def test_ten_thousand_items_in_order_take_a_handful_of_rows(write_playbook: Callable[..., Path], tmp_path: Path) -> None:
    """The journal keeps item indices as ranges, and outputs only of steps a template reads."""
    history = tmp_path / "runs.sqlite"
    path = write_playbook("""
        name: wide
        steps:
          - {id: unread, for_each: "{{ range(10000) }}", set: {i: "{{ item }}"}}
          - {id: read, for_each: "{{ range(10000) }}", set: {i: "{{ item }}"}}
          - {id: sum, needs: [unread, read], set: {n: "{{ steps.read.output | length }}"}}
        """)
    result = await orchestrator.arun(path, reporter=RunJournal(history))
    assert result.status == "succeeded"
    with sqlite3.connect(history) as db:
        rows = dict(db.execute("SELECT step_id, COUNT(*) FROM items GROUP BY step_id").fetchall())
        outputs = db.execute("SELECT step_id, outputs FROM item_outputs").fetchall()
    assert rows["unread"] <= 10 and rows["read"] <= 10, rows
    assert {step for step, _ in outputs} == {"read"}
    assert sorted(i for _, text in outputs for i, _ in json.loads(text)) == list(range(10000))


async def test_an_output_that_is_not_json_data_is_not_recorded_and_its_item_runs_again(
    write_playbook: Callable[..., Path], tmp_path: Path
) -> None:
    history = tmp_path / "runs.sqlite"
    path = write_playbook("""
        name: odd-outputs
        steps:
          - {id: made, for_each: "{{ range(4) }}", call: "odd:make", with: {i: "{{ item }}"}}
          - {id: gate, needs: [made], call: "odd:gate"}
          - {id: use, needs: [gate], set: {n: "{{ steps.made.output | length }}"}}
        """, odd="""
        import pathlib
        CALLS = pathlib.Path(__file__).with_name("calls.txt")
        def make(i):
            with CALLS.open("a") as f:
                f.write(f"{i}\\n")
            return {"i": i} if i != 2 else {"i": {1, 2}}   # a set is not JSON data
        def gate():
            if not pathlib.Path(__file__).with_name("open").exists():
                raise RuntimeError("closed")
        """)
    first = await orchestrator.arun(path, reporter=RunJournal(history))
    assert first.status == "failed"
    (tmp_path / "open").touch()
    resumed = await orchestrator.arun(resume=first.run_id, reporter=RunJournal(history))
    assert resumed.status == "succeeded"
    assert resumed.step("made").items_resumed == 3
    assert sorted(int(x) for x in (tmp_path / "calls.txt").read_text().split()) == [0, 1, 2, 2, 3]


def test_index_ranges_hold_the_indices_they_were_made_from() -> None:
    indices = [5, 0, 1, 2, 9, 3, 7, 8]
    ranges = as_ranges(list(indices))
    assert ranges == [(0, 4), (5, 6), (7, 10)]
    held = IndexRanges([*ranges, (2, 3), (10, 12)])
    assert [i for i in range(-1, 14) if i in held] == [0, 1, 2, 3, 5, 7, 8, 9, 10, 11]
    assert len(held) == 10 and "3" not in held
    assert as_ranges(list(range(1000, 0, -1))) == [(1, 1001)]


def test_an_older_history_file_gains_the_journal_and_its_runs_stay_listed(tmp_path: Path) -> None:
    """A history written before runs were resumable is upgraded in place when a run records in it."""
    history = tmp_path / "runs.sqlite"
    with sqlite3.connect(history) as db:
        db.executescript("""
            CREATE TABLE runs (run_id TEXT PRIMARY KEY, playbook TEXT NOT NULL, path TEXT, status TEXT NOT NULL,
                started_at REAL NOT NULL, finished_at REAL, duration_s REAL, steps INTEGER NOT NULL,
                pid INTEGER NOT NULL, host TEXT NOT NULL);
            CREATE TABLE steps (run_id TEXT NOT NULL, step_id TEXT NOT NULL, section TEXT NOT NULL,
                kind TEXT NOT NULL, executor TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
                retries INTEGER NOT NULL, items INTEGER, items_failed INTEGER NOT NULL, duration_s REAL NOT NULL,
                error TEXT, finished_at REAL NOT NULL, PRIMARY KEY (run_id, step_id));
            INSERT INTO runs VALUES ('old-run', 'old', NULL, 'failed', 1.0, 2.0, 1.0, 1, 1, 'h');
        """)
    (tmp_path / "p.yml").write_text("name: new\nsteps:\n  - {id: a, set: {x: 1}}\n")
    result = orchestrator.run(tmp_path / "p.yml", reporter=RunJournal(history))
    assert result.status == "succeeded"
    runs = {r.run_id: r for r in list_runs(history)}
    assert runs["old-run"].status == "failed" and not runs["old-run"].resumable
    with pytest.raises(ResumeRefused, match="its inputs were not recorded"):
        orchestrator.resume("old-run", history=history)


