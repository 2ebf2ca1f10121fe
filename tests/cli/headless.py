"""A page loaded as a person sees it: Debian's `chromium`, headless, driven over the DevTools
protocol (a websocket on 127.0.0.1) to collect console errors and uncaught exceptions and to take a
screenshot."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Loaded:
    errors: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    values: dict[str, Any] = field(default_factory=dict)


async def load(page: Path, evaluate: dict[str, str], width: int = 1400, height: int = 900) -> Loaded:
    """Open `page` (an absolute path) in headless Chromium; the errors it logged, a PNG screenshot,
    and the value of each JavaScript expression in `evaluate` once it has loaded."""
    assert CHROMIUM is not None, "Debian's chromium is not installed: apt-get install chromium"
    assert page.is_absolute()
    uri = page.as_uri()
    # Chromium's helper processes may still write to the profile as it is removed: they are killed
    # with their group below, and what they leave does not fail the test.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0",
             "--remote-debugging-address=127.0.0.1", f"--user-data-dir={profile}", f"--window-size={width},{height}",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "about:blank",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            port = await _port(Path(profile) / "DevToolsActivePort", proc)
            async with aiohttp.ClientSession() as http:
                async with http.put(f"http://127.0.0.1:{port}/json/new?about:blank") as resp:
                    target = await resp.json()
                async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    return await _drive(ws, uri, evaluate)
        finally:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # its renderer and GPU helpers


async def _port(file: Path, proc: asyncio.subprocess.Process) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = await asyncio.to_thread(file.read_text)
            return int(text.splitlines()[0])
        await asyncio.sleep(0.05)
    raise TimeoutError("chromium did not open its DevTools port")


_CATCH_ERRORS = """
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message || e)));
window.addEventListener("unhandledrejection", (e) => window.__errors.push(String(e.reason)));
"""


async def _drive(ws: aiohttp.ClientWebSocketResponse, uri: str, evaluate: dict[str, str]) -> Loaded:
    out = Loaded()
    counter = 0
    pending: dict[int, asyncio.Future[Any]] = {}
    loaded = asyncio.Event()

    async def reader() -> None:
        async for msg in ws:
            data = msg.json()
            if "id" in data and data["id"] in pending:
                pending.pop(data["id"]).set_result(data.get("result", data.get("error")))
                continue
            method, params = data.get("method"), data.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                out.errors.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                out.errors.append(params["entry"].get("text", ""))
            elif method == "Page.loadEventFired":
                loaded.set()

    async def call(method: str, **params: Any) -> Any:
        nonlocal counter
        counter += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        pending[counter] = future
        await ws.send_json({"id": counter, "method": method, "params": params})
        return await asyncio.wait_for(future, 60)

    task = asyncio.create_task(reader())
    try:
        for domain in ("Runtime", "Log", "Page"):
            await call(f"{domain}.enable")
        # Errors are also collected by the page itself, from its first script on: the DevTools
        # events of a page that fails while it loads can be missed on a busy machine.
        await call("Page.addScriptToEvaluateOnNewDocument", source=_CATCH_ERRORS)
        await call("Page.navigate", url=uri)
        await asyncio.wait_for(loaded.wait(), 60)
        await asyncio.sleep(0.5)  # a frame drawn after load
        caught = await call("Runtime.evaluate", expression="JSON.stringify(window.__errors || [])", returnByValue=True)
        for error in json.loads(caught["result"].get("value") or "[]"):
            if not any(error in seen for seen in out.errors):
                out.errors.append(error)
        for name, expression in evaluate.items():
            result = await call("Runtime.evaluate", expression=expression, returnByValue=True)
            out.values[name] = result["result"].get("value")
        shot = await call("Page.captureScreenshot", format="png")
        out.screenshot = base64.b64decode(shot["data"])
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return out
