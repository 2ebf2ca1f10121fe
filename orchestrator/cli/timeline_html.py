"""A recorded run as one self-contained HTML page: `orchestrate runs RUN_ID --html FILE.html`.

A Gantt chart on a canvas: a row per track (`cli/tracks.py`: each step with its waits, the event
loop, each thread, each worker process), a bar per step and per traced item coloured by step,
waits (retry backoff, Retry-After, limits) in orange, retried attempts outlined, loop stalls in red.
Rows shrink to fit a large run on one screen (10,000 items read as bands of colour); the wheel zooms
on time, dragging pans, a double click resets; hovering a bar says what it is. The page loads
nothing: its style, script and data are inline.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

from orchestrator.cli.tracks import layout

if TYPE_CHECKING:
    from orchestrator.history.timeline import RunTimeline

_KINDS = {"step": 0, "item": 1, "wait": 2, "attempt": 3, "stall": 4}


def timeline_page(timeline: RunTimeline) -> str:
    laid = layout(timeline)
    origin = timeline.started
    steps = list(laid.steps)
    columns: dict[str, list[Any]] = {"t": [], "s": [], "d": [], "k": [], "g": [], "i": [], "st": []}
    for p in laid.placed:
        span = p.span
        columns["t"].append(p.track)
        columns["s"].append(round((span.start - origin) * 1e3, 3))
        columns["d"].append(round(max(span.end - span.start, 0.0) * 1e3, 3))
        columns["k"].append(_KINDS.get(span.what, 1))
        columns["g"].append(steps.index(span.step) if span.step in steps else -1)
        columns["i"].append(span.item)
        columns["st"].append(span.status or "")
    data = {
        "tracks": [[t.name, t.place] for t in laid.tracks], "steps": steps, "spans": columns,
        "duration": round(((timeline.ended or max((s.end for s in timeline.spans), default=origin)) - origin) * 1e3, 3),
    }
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    title = f"{timeline.playbook}: {timeline.status} (run {timeline.run_id})"
    advice = "".join(
        f"<li><b>{html.escape(a['step'])}</b> is tagged {html.escape(a['tagged'])}, suggested "
        f"{html.escape(a['suggested'])}: {html.escape(a['evidence'])}</li>" for a in timeline.advice
    )
    return (
        _PAGE.replace("__TITLE__", html.escape(title))
        .replace("__ADVICE__", f"<ul class=advice>{advice}</ul>" if advice else "<p class=ok>No advice: every step ran where its work belongs.</p>")
        .replace("__DATA__", payload)
    )


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{font:13px system-ui,sans-serif;margin:12px;color:#222;background:#fff}
h1{font-size:16px;margin:0 0 6px}
.advice{color:#8a4b00;margin:4px 0}.ok{color:#2d6a2d;margin:4px 0}
#legend span{display:inline-block;margin-right:12px}
#legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
#wrap{position:relative;border:1px solid #ccc}
#tip{position:absolute;pointer-events:none;background:#222;color:#fff;padding:4px 6px;border-radius:3px;display:none;white-space:pre;font-size:12px}
</style></head><body>
<h1>__TITLE__</h1>
__ADVICE__
<div id="legend"></div>
<div id="wrap"><canvas id="gantt"></canvas><div id="tip"></div></div>
<p id="help">Wheel: zoom. Drag: pan. Double click: reset.</p>
<script id="data" type="application/json">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const S = D.spans, N = S.t.length, T = D.tracks.length;
const KIND = ["step", "item", "wait", "attempt", "stall"];
const canvas = document.getElementById("gantt"), ctx = canvas.getContext("2d"), tip = document.getElementById("tip");
const LABEL = 230, AXIS = 22;
const ROW = Math.max(3, Math.min(18, Math.floor(640 / Math.max(T, 1))));
const byTrack = Array.from({length: T}, () => []);
for (let n = 0; n < N; n++) byTrack[S.t[n]].push(n);
for (const row of byTrack) row.sort((a, b) => S.s[a] - S.s[b]);
// Red is kept for failures and stalls, orange for waits: steps take the other colours.
const PALETTE = [[31,119,180],[44,160,44],[148,103,189],[23,190,207],[140,86,75],[188,189,34],[227,119,194],[127,127,127]];
function colour(g, alpha) { const c = g < 0 ? [120,120,120] : PALETTE[g % PALETTE.length]; return "rgba(" + c.join(",") + "," + alpha + ")"; }
let view = {from: 0, to: Math.max(D.duration, 0.001)};
function size() {
  const width = Math.max(600, document.getElementById("wrap").clientWidth - 2);
  const ratio = window.devicePixelRatio || 1;
  canvas.width = width * ratio; canvas.height = (AXIS + T * ROW + 4) * ratio;
  canvas.style.width = width + "px"; canvas.style.height = (AXIS + T * ROW + 4) + "px";
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
}
function x(ms) { const w = canvas.clientWidth - LABEL; return LABEL + (ms - view.from) / (view.to - view.from) * w; }
function draw() {
  const w = canvas.clientWidth;
  ctx.clearRect(0, 0, w, canvas.clientHeight);
  ctx.font = Math.min(12, Math.max(8, ROW - 2)) + "px system-ui,sans-serif";
  ctx.textBaseline = "middle";
  for (let r = 0; r < T; r++) {
    const y = AXIS + r * ROW;
    if (r % 2) { ctx.fillStyle = "#f6f6f6"; ctx.fillRect(0, y, w, ROW); }
    if (r && D.tracks[r][1] !== D.tracks[r - 1][1]) { ctx.fillStyle = "#bbb"; ctx.fillRect(0, y, w, 1); }
  }
  let labelled = -1e9;
  for (let r = 0; r < T; r++) {
    const y = AXIS + r * ROW, name = D.tracks[r][0];
    if (y - labelled >= 11 && AXIS + T * ROW - y >= 6) {  // rows thinner than a line of text are labelled one in a few
      labelled = y;
      ctx.fillStyle = "#333"; ctx.fillText(name.length > 34 ? name.slice(0, 33) + "\\u2026" : name, 4, y + Math.max(ROW, 11) / 2);
    }
  }
  ctx.save(); ctx.beginPath(); ctx.rect(LABEL, 0, w - LABEL, canvas.clientHeight); ctx.clip();
  let drawn = 0;
  for (let n = 0; n < N; n++) {
    const a = x(S.s[n]), b = x(S.s[n] + S.d[n]);
    if (b < LABEL || a > w) continue;
    const y = AXIS + S.t[n] * ROW, k = S.k[n], width = Math.max(1, b - a);
    if (k === 0) { ctx.fillStyle = colour(S.g[n], 0.35); ctx.fillRect(a, y + 1, width, ROW - 2); }
    else if (k === 1) { ctx.fillStyle = S.st[n] === "failed" ? "#c0392b" : colour(S.g[n], 0.9); ctx.fillRect(a, y + 1, width, Math.max(1, ROW - 2)); }
    else if (k === 2) { ctx.fillStyle = "rgba(230,140,20,0.85)"; ctx.fillRect(a, y + 2, width, Math.max(1, ROW - 4)); }
    else if (k === 3) { ctx.strokeStyle = "#6c3483"; ctx.strokeRect(a + 0.5, y + 1.5, width, Math.max(1, ROW - 3)); }
    else { ctx.fillStyle = "rgba(200,20,20,0.8)"; ctx.fillRect(a, y, width, ROW); }
    drawn++;
  }
  ctx.restore();
  ctx.fillStyle = "#fff"; ctx.fillRect(LABEL, 0, w - LABEL, AXIS - 2);
  ctx.strokeStyle = "#999"; ctx.fillStyle = "#333"; ctx.textBaseline = "top";
  const span = view.to - view.from, step = Math.pow(10, Math.floor(Math.log10(span / 8)));
  const tick = span / step > 40 ? step * 5 : span / step > 16 ? step * 2 : step;
  for (let t = Math.ceil(view.from / tick) * tick; t <= view.to; t += tick) {
    const px = x(t); ctx.beginPath(); ctx.moveTo(px, AXIS - 6); ctx.lineTo(px, AXIS - 2); ctx.stroke();
    ctx.fillText(t >= 1000 ? (t / 1000).toFixed(tick >= 1000 ? 0 : 2) + " s" : +t.toFixed(3) + " ms", px + 2, 2);
  }
  document.body.dataset.drawn = String(drawn);
}
function legend() {
  const parts = D.steps.map((s, g) => '<span><i style="background:' + colour(g, 0.9) + '"></i>' + s.replace(/[<&]/g, "") + "</span>");
  parts.push('<span><i style="background:rgba(230,140,20,0.85)"></i>wait (backoff, Retry-After, limit)</span>');
  parts.push('<span><i style="border:1px solid #6c3483"></i>retried attempt</span>');
  parts.push('<span><i style="background:rgba(200,20,20,0.8)"></i>event loop held</span>');
  document.getElementById("legend").innerHTML = parts.join("");
}
function at(px, py) {
  const r = Math.floor((py - AXIS) / ROW);
  if (r < 0 || r >= T || px < LABEL) return -1;
  const w = canvas.clientWidth - LABEL, ms = view.from + (px - LABEL) / w * (view.to - view.from), slack = (view.to - view.from) / w * 2;
  let best = -1;
  for (const n of byTrack[r]) { if (S.s[n] - slack <= ms && ms <= S.s[n] + S.d[n] + slack) best = n; if (S.s[n] > ms + slack) break; }
  return best;
}
let drag = null;
canvas.addEventListener("mousemove", (e) => {
  const box = canvas.getBoundingClientRect(), px = e.clientX - box.left, py = e.clientY - box.top;
  if (drag) { const dx = (px - drag.px) / (canvas.clientWidth - LABEL) * (drag.to - drag.from); view = {from: drag.from - dx, to: drag.to - dx}; draw(); return; }
  const n = at(px, py);
  if (n < 0) { tip.style.display = "none"; return; }
  const step = S.g[n] >= 0 ? D.steps[S.g[n]] : "";
  tip.textContent = KIND[S.k[n]] + (step ? " of " + step : "") + (S.i[n] !== null ? " [" + S.i[n] + "]" : "") + (S.st[n] ? ": " + S.st[n] : "")
    + "\\n" + D.tracks[S.t[n]][0] + "\\nfrom " + S.s[n].toFixed(2) + " ms for " + S.d[n].toFixed(2) + " ms";
  tip.style.left = (px + 12) + "px"; tip.style.top = (py + 12) + "px"; tip.style.display = "block";
});
canvas.addEventListener("mousedown", (e) => { const box = canvas.getBoundingClientRect(); drag = {px: e.clientX - box.left, from: view.from, to: view.to}; });
window.addEventListener("mouseup", () => { drag = null; });
canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
canvas.addEventListener("dblclick", () => { view = {from: 0, to: Math.max(D.duration, 0.001)}; draw(); });
canvas.addEventListener("wheel", (e) => {
  e.preventDefault();
  const box = canvas.getBoundingClientRect(), w = canvas.clientWidth - LABEL, px = Math.max(0, e.clientX - box.left - LABEL);
  const at = view.from + px / w * (view.to - view.from), f = e.deltaY > 0 ? 1.25 : 0.8;
  view = {from: at - (at - view.from) * f, to: at + (view.to - at) * f}; draw();
}, {passive: false});
window.addEventListener("resize", () => { size(); draw(); });
legend(); size(); draw();
</script></body></html>
"""
