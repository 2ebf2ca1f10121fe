"""Secrets are masked by value in everything a run emits: stdout in every format, log lines (of
worker processes too), step errors, dry-run plans and the run history, which is private to the user.

A real aiohttp server on 127.0.0.1 echoes each request's headers and URL into its error body, so a
credential sent in a header or a URL's userinfo comes back in the error; real `orchestrate`
processes run the playbook. Secrets are planted in a URL's userinfo, in headers, in a `shell`
step's environment, in a `--var` named in `secrets:`, and in a program's stderr.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

import orchestrator
from orchestrator.errors import InvalidInput
from orchestrator.history import RunJournal
from orchestrator.logs import MIN_SECRET_LENGTH, Secrets

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]

URL_PASSWORD = "URLPASS-s3cr3t-1"
HEADER_PASSWORD = "HDRPASS-s3cr3t-2"
API_KEY = "APIKEY-s3cr3t-3"
ENV_TOKEN = "ENVTOKEN-s3cr3t-4"
VAR_PASSWORD = "VARPASS-s3cr3t-5"
DYNAMIC_TOKEN = "DYNTOKEN-s3cr3t-6"
PROGRAM_TOKEN = "PROGTOKEN-s3cr3t-7"
URL_BASIC = base64.b64encode(f"admin:{URL_PASSWORD}".encode()).decode()
HEADER_BASIC = base64.b64encode(f"ops:{HEADER_PASSWORD}".encode()).decode()
# What must show nowhere. The first ten characters of the base64 credential too: the server puts
# it across the point where an error body is cut short, so masking after the cut would leak them.
PLANTED = (
    URL_PASSWORD, URL_BASIC, URL_BASIC[:10], HEADER_PASSWORD, HEADER_BASIC, API_KEY, ENV_TOKEN, VAR_PASSWORD,
    DYNAMIC_TOKEN, PROGRAM_TOKEN,
)
FORMATS = ("text", "json", "junit", "github")

PLAYBOOK = """
name: secrets
vars:
  api: "http://127.0.0.1:{port}"
  db_password: null
  token: {dynamic}
  program_token: {program}
secrets: [db_password]
steps:
  - id: userinfo               # aiohttp turns the userinfo into `Authorization: Basic ...`
    on_error: continue
    http: {{url: "http://admin:{url_password}@127.0.0.1:{port}/userinfo?pad=179"}}
  - id: header
    on_error: continue
    http:
      method: POST
      url: "{{{{ api }}}}/header"
      headers: {{Authorization: "Basic {header_basic}", X-Api-Key: {api_key}}}
      json: {{hello: world}}
  - id: var_header             # an ordinary header name: masked because `secrets:` names the variable
    on_error: continue
    retry: {{attempts: 2, delay: 10ms, jitter: false}}
    http: {{url: "{{{{ api }}}}/var?status=503", headers: {{X-Custom: "{{{{ db_password }}}}"}}}}
  - id: dynamic                # rendered at run time: known once the request is sent
    on_error: continue
    http: {{method: DELETE, url: "{{{{ api }}}}/dynamic", headers: {{Authorization: "Bearer {{{{ token }}}}"}}}}
  - id: env                    # the program prints its environment's token on stderr
    on_error: continue
    shell:
      argv: [sh, -c, 'echo "token is $API_TOKEN" >&2; exit 3']
      env: {{API_TOKEN: {env_token}}}
  - id: argv                   # a secret variable in argv, printed on stderr
    on_error: continue
    shell:
      argv: [sh, -c, 'echo "password: $1" >&2; exit 4', sh, "{{{{ db_password }}}}"]
  - id: program                # a rendered env value, secret by its name, also in argv
    on_error: continue
    shell:
      argv: [sh, -c, 'echo "deploying with $1" >&2; exit 5', sh, "{{{{ program_token }}}}"]
      env: {{DEPLOY_TOKEN: "{{{{ program_token }}}}"}}
  - id: say
    log: "connecting with {{{{ db_password }}}}"
  - id: worker                 # a log line written in a worker process
    kind: cpu
    call: "helpers:log_secret"
    with: {{token: "{{{{ db_password }}}}"}}
"""

HELPERS = """
from orchestrator.logs import get_logger


def log_secret(token):
    get_logger().info("worker.sees", token=token, note=f"the token is {token}")
    return len(token)
"""


class EchoServer:
    """An aiohttp server on a thread of its own: every answer is an error (403 unless `?status=`)
    whose body is the request's Authorization header (after `?pad=` filler), URL and headers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def _answer(self, request: web.Request) -> web.Response:
        status = int(request.query.get("status", "403"))
        pad = "x" * int(request.query.get("pad", "0"))
        body = f"{pad}auth={request.headers.get('Authorization', '')} url={request.url} headers={json.dumps(dict(request.headers))}"
        return web.Response(status=status, text=body)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app)
        self.loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        self._ready.set()
        self.loop.run_forever()

    def __enter__(self) -> EchoServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


@pytest.fixture
def playbook(tmp_path: Path, echo: EchoServer) -> Path:
    (tmp_path / "helpers.py").write_text(textwrap.dedent(HELPERS))
    path = tmp_path / "secrets.yml"
    path.write_text(textwrap.dedent(PLAYBOOK).format(
        port=echo.port, url_password=URL_PASSWORD, header_basic=HEADER_BASIC, api_key=API_KEY, env_token=ENV_TOKEN,
        dynamic=DYNAMIC_TOKEN, program=PROGRAM_TOKEN,
    ))
    return path


def orchestrate(*args: str, history: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ORCHESTRATOR_HISTORY": str(history) if history else "off"}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", *args], capture_output=True, text=True, timeout=120, cwd=ROOT,
        env=env,
    )


def assert_masked(text: str, where: str) -> None:
    found = [secret for secret in PLANTED if secret in text]
    assert not found, f"{where} shows {found}:\n{text}"


def test_no_secret_reaches_stdout_logs_or_history_and_the_history_is_private(playbook: Path, tmp_path: Path) -> None:
    """Four real runs (one per format) at debug level with JSON logs: every planted secret is masked
    in stdout, stderr and the SQLite file, and in what `orchestrate runs` prints."""
    history = tmp_path / "state" / "orchestrator" / "runs.sqlite"
    for fmt in FORMATS:
        proc = orchestrate(
            str(playbook), "--format", fmt, "--var", f"db_password={VAR_PASSWORD}", "--log-level", "debug",
            "--log-format", "json", history=history,
        )
        assert proc.returncode == 0, proc.stderr  # the failing steps say `on_error: continue`
        assert_masked(proc.stdout, f"stdout ({fmt})")
        assert_masked(proc.stderr, f"stderr ({fmt})")
        assert "***" in proc.stdout and "***" in proc.stderr
        if fmt == "json":
            steps = {s["id"]: s for s in json.loads(proc.stdout)["steps"]}
            # The errors are there, masked: the server's body and the programs' stderr.
            assert "auth=*** url=" in steps["header"]["error"] and "answered 403" in steps["userinfo"]["error"]
            assert "token is ***" in steps["env"]["error"] and "password: ***" in steps["argv"]["error"]
            assert steps["program"]["error"] == "sh exited with status 5: deploying with ***"
            assert '"X-Custom": "***"' in steps["var_header"]["error"] and steps["var_header"]["attempts"] == 2
            assert '"Authorization": "***"' in steps["dynamic"]["error"]
            assert steps["worker"]["status"] == "succeeded" and steps["say"]["status"] == "succeeded"
        lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
        events = {line["event"]: line for line in lines}
        # Log lines of this process and of the worker process, masked, with no trace of the set itself.
        assert events["worker.sees"]["token"] == "***" and events["worker.sees"]["note"] == "the token is ***"
        assert events["playbook.log"]["message"] == "connecting with ***"
        assert "step.retry" in events and "step.failed" in events
        assert not any("orchestrator_secrets" in line for line in lines)

    files = sorted(history.parent.glob("runs.sqlite*"))
    assert files
    for file in files:
        assert_masked(file.read_bytes().decode("latin-1"), file.name)
    assert stat.S_IMODE(history.stat().st_mode) == 0o600
    assert stat.S_IMODE(history.parent.stat().st_mode) == 0o700

    listings: list[tuple[str, ...]] = [("runs",), ("runs", "--format", "json")]
    for listing in listings:
        listed = orchestrate(*listing, history=history)
        assert listed.returncode == 0, listed.stderr
        assert_masked(listed.stdout + listed.stderr, " ".join(listing))
    run_ids = [r["run_id"] for r in json.loads(orchestrate("runs", "--format", "json", history=history).stdout)["runs"]]
    assert len(run_ids) == len(FORMATS)
    shows: list[tuple[str, ...]] = [("runs", run_ids[0]), ("runs", run_ids[-1], "--format", "json")]
    for show in shows:
        shown = orchestrate(*show, history=history)
        assert shown.returncode == 0, shown.stderr
        assert_masked(shown.stdout + shown.stderr, " ".join(show))
        assert "***" in shown.stdout


@pytest.mark.parametrize("dry_run", ["--dry-run", "--dry-run=reads"])
def test_dry_run_plans_mask_secrets_in_every_format(playbook: Path, dry_run: str) -> None:
    """A plan, and the requests `--dry-run=reads` shows for the steps it does not run (a program's
    argv and env included), show no secret in any format."""
    for fmt in FORMATS:
        proc = orchestrate(
            str(playbook), dry_run, "--format", fmt, "--var", f"db_password={VAR_PASSWORD}", "--log-level", "debug",
            "--log-format", "json",
        )
        assert proc.returncode in (0, 1), proc.stderr
        assert_masked(proc.stdout, f"{dry_run} stdout ({fmt})")
        assert_masked(proc.stderr, f"{dry_run} stderr ({fmt})")
        if dry_run == "--dry-run=reads" and fmt == "json":
            steps = {s["id"]: s for s in json.loads(proc.stdout)["steps"]}
            assert steps["argv"]["request"]["argv"][-1] == "***"
            assert steps["env"]["request"]["env"] == {"API_TOKEN": "***"}
            # Shown, not run: its env's token is known by its name, and masked in argv too.
            assert steps["program"]["request"]["argv"][-1] == "***"
            assert steps["userinfo"]["status"] == "failed" and "auth=*** url=" in steps["userinfo"]["error"]


def test_secrets_must_name_variables(tmp_path: Path) -> None:
    """`secrets:` lists variables, of `vars:` or given with --var; another name is located."""
    path = tmp_path / "bad.yml"
    path.write_text("name: bad\nvars: {password: x}\nsecrets: [pasword]\nsteps:\n  - {id: one, log: hi}\n")
    with pytest.raises(InvalidInput) as caught:
        orchestrator.plan(path)
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.line, diagnostic.col) == (3, 11) and "did you mean 'password'" in diagnostic.message
    assert orchestrator.plan(path, vars={"pasword": "given-with-var"}).secret_vars == ("pasword",)
    path.write_text("name: bad\nsecrets: [not-a-name]\nsteps:\n  - {id: one, log: hi}\n")
    with pytest.raises(InvalidInput):
        orchestrator.plan(path)


def test_a_secret_variable_is_masked_in_the_python_result(tmp_path: Path) -> None:
    """The library masks too: a `--var`-style override named in `secrets:` is masked in the result."""
    path = tmp_path / "play.yml"
    path.write_text(textwrap.dedent("""
        name: api
        vars: {word: null}
        secrets: [word]
        steps:
          - {id: check, assert: {that: "{{ word == 'x' }}", message: "the word was {{ word }}"}}
        """))
    result = orchestrator.run(path, vars={"word": "abracadabra"})
    assert result.step("check").error == "the word was ***"


def test_short_values_are_not_masked_and_an_empty_set_costs_nothing() -> None:
    short = "x" * (MIN_SECRET_LENGTH - 1)
    secrets = Secrets([short, "s3cret-value", 12345678, {"nested": ["in-a-list"]}])
    assert secrets.mask(f"{short} s3cret-value 12345678 in-a-list") == f"{short} *** *** ***"
    assert secrets.mask_value({"n": 12345678, "s": ["s3cret-value"], "ok": True}) == {"n": "***", "s": ["***"], "ok": True}
    assert repr(secrets) == "<secrets: 3 values>"
    empty = Secrets()
    text = "nothing to hide"
    value: dict[str, Any] = {"a": [text]}
    assert not empty and empty.mask(text) is text and empty.mask_value(value) is value


def test_the_history_is_created_private_and_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    plan = orchestrator.plan(orchestrator.loads("name: h\nsteps:\n  - {id: one, log: hi}\n", file="h.yml"))
    fresh = tmp_path / "new" / "runs.sqlite"
    orchestrator.run(plan, reporter=RunJournal(fresh))
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600 and stat.S_IMODE(fresh.parent.stat().st_mode) == 0o700
    shared = tmp_path / "shared.sqlite"
    shared.touch()
    shared.chmod(0o640)
    orchestrator.run(plan, reporter=RunJournal(shared))
    assert stat.S_IMODE(shared.stat().st_mode) == 0o640
