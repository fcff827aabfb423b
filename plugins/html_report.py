"""HTML report: `--kata-html=FILE` writes each kata's status, every failure, and each race or
deadlock the probe found drawn as swim lanes.

A race reads badly as text: the drawing gives each thread (or task) a column of its own and
puts the steps of the shortest failing interleaving in order, down the page, each in its
thread's column. A preemption is marked where it happened, and the lines that conflict (the
step a thread was preempted before, and the same line run by another thread before it came
back) are highlighted. A deadlock is also drawn as its wait-for circle: each thread points at
the thread that holds what it waits for.

The data comes from the failure itself (`ProbeFailure.picture`), carried in the test report's
user properties, so it also works when xdist runs the tests elsewhere. One self-contained file:
no script or style from the network. A few lines of script record where the browser laid the
lanes out (`data-lanes` on the body), which is how the plugin's test checks the drawing in a
real browser.
"""

from __future__ import annotations

import html
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from plugins import impl, progress, settings

PICTURE_PROPERTY = "kata_picture"
MESSAGE_LIMIT = 6000  # characters of a failure's text kept in the page


@dataclass
class Entry:
    nodeid: str
    kata: str
    outcome: str
    message: str = ""
    picture: dict[str, Any] | None = None


@dataclass
class Collected:
    path: Path
    entries: dict[str, Entry] = field(default_factory=dict)


collected_key = pytest.StashKey[Collected]()


# -- configure -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    path = settings.of(config).html
    if path is not None and not settings.of(config).verify:
        config.stash[collected_key] = Collected(path)
        config.pluginmanager.register(_Recorder(config), "kata-html-recorder")


# -- run-time hooks --------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.excinfo is not None and collected_key in item.config.stash:
        found = _picture_of(call.excinfo.value)
        if found is not None:
            report.user_properties.append((PICTURE_PROPERTY, json.dumps(found)))
    return report


def _picture_of(error: BaseException) -> dict[str, Any] | None:
    """The drawing of the first probe failure in the exception's chain."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        drawing = getattr(current, "picture", None)
        if isinstance(drawing, dict):
            return drawing
        current = current.__cause__ or current.__context__
    return None


class _Recorder:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        collected = self.config.stash[collected_key]
        entry = collected.entries.get(report.nodeid)
        if entry is None:
            kata = _kata_name(self.config, report.nodeid)
            entry = collected.entries.setdefault(
                report.nodeid, Entry(report.nodeid, kata, report.outcome)
            )
        if report.failed or (report.when == "setup" and report.skipped):
            entry.outcome = report.outcome if report.when == "call" or report.skipped else "error"
            entry.message = report.longreprtext[:MESSAGE_LIMIT]
        elif report.when == "call" and entry.outcome != "error":
            entry.outcome = report.outcome
        for name, value in report.user_properties:
            if name == PICTURE_PROPERTY:
                entry.picture = json.loads(str(value))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        collected = self.config.stash[collected_key]
        # progress.tallies, not the raw stash: it knows each kata's whole suite, so a run of
        # some of its tests reads "partial run", as the terminal says.
        statuses = {name: tally.status for name, tally in progress.tallies(self.config).items()}
        collected.path.write_text(render(collected.entries, statuses), encoding="utf-8")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        path = self.config.stash[collected_key].path
        terminalreporter.write_line(f"kata HTML report: {path}")


def _kata_name(config: pytest.Config, nodeid: str) -> str:
    implementation = impl.implementation(config)
    if implementation is None:
        return ""
    kata = implementation.curriculum.kata_for_path(config.rootpath / nodeid.split("::")[0])
    return kata.name if kata is not None else ""


# -- rendering -------------------------------------------------------------------------------

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; }
table.status td, table.status th { padding: .2em .8em; text-align: left; }
.done { color: #176117; } .failed, .error { color: #a31515; } .skipped { color: #777; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: 12px; }
.lanes { display: grid; gap: 2px 12px; margin: 1em 0; }
.lane-head { font-weight: bold; border-bottom: 2px solid #444; padding: .2em .4em; }
.step { background: #eef3fb; border-left: 4px solid #6b8fd6; padding: .2em .4em;
        font-family: ui-monospace, monospace; font-size: 12px; }
.step .where { color: #555; } .step .note { display: block; color: #8a4b00; }
.step.conflict { background: #fde8e8; border-left-color: #d33; }
.switch { color: #666; font-size: 12px; font-style: italic; text-align: center;
          border-top: 1px dashed #bbb; }
.switch.preemption { color: #a31515; font-weight: bold; border-top: 2px solid #d33; }
svg.cycle text { font: 12px system-ui, sans-serif; }
"""

# Records where the browser laid each lane out, for the plugin's own test in a real browser.
LAYOUT_SCRIPT = """
window.addEventListener('load', function () {
  var lanes = [];
  document.querySelectorAll('.lanes').forEach(function (grid) {
    var heads = Array.from(grid.querySelectorAll('.lane-head')).map(function (h) {
      var r = h.getBoundingClientRect(); return [Math.round(r.left), Math.round(r.width)];
    });
    var steps = Array.from(grid.querySelectorAll('.step')).map(function (s) {
      var r = s.getBoundingClientRect();
      return [Number(s.dataset.lane), Math.round(r.left), Math.round(r.top)];
    });
    lanes.push({heads: heads, steps: steps});
  });
  document.body.dataset.lanes = JSON.stringify(lanes);
});
"""


def render(entries: dict[str, Entry], statuses: dict[str, str]) -> str:
    """The whole page; pure function of its inputs."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>kata report</title>",
        f"<style>{STYLE}</style><script>{LAYOUT_SCRIPT}</script></head><body>",
        f"<h1>kata report</h1><p>written {html.escape(time.strftime('%Y-%m-%d %H:%M:%S'))}</p>",
    ]
    if statuses:
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td class='{_css(v)}'>{html.escape(v)}</td></tr>"
            for k, v in sorted(statuses.items())
        )
        parts.append(f"<table class='status'><tr><th>kata</th><th>status</th></tr>{rows}</table>")
    counts: dict[str, int] = {}
    for entry in entries.values():
        counts[entry.outcome] = counts.get(entry.outcome, 0) + 1
    summary = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
    parts.append(f"<p>{html.escape(summary) or 'no tests ran'}</p>")
    for entry in entries.values():
        if entry.outcome in ("failed", "error"):
            parts.append(_failure(entry))
    parts.append("</body></html>")
    return "\n".join(parts)


def _css(status: str) -> str:
    return "done" if status == "done" else "failed" if "progress" in status else "skipped"


def _failure(entry: Entry) -> str:
    title = f"<h2 class='{entry.outcome}'>{html.escape(entry.nodeid)}: {entry.outcome}</h2>"
    body = [title]
    if entry.picture is not None:
        body.append(f"<p><b>{html.escape(str(entry.picture.get('headline', '')))}</b></p>")
        body.append(lanes(entry.picture))
        graph = entry.picture.get("graph") or []
        if graph:
            body.append(cycle(graph))
    body.append(
        f"<details><summary>the full report</summary><pre>{html.escape(entry.message)}"
        "</pre></details>"
    )
    return "\n".join(body)


def lanes(drawing: dict[str, Any]) -> str:
    """One column per worker; each step in its worker's column, one row per step."""
    workers = [str(w) for w in drawing.get("workers", [])]
    count = max(len(workers), 1)
    preemptions = int(drawing.get("preemptions", 0))
    cells = [
        f"<div class='lane-head' style='grid-row:1;grid-column:{i + 1}'>{html.escape(w)}</div>"
        for i, w in enumerate(workers)
    ]
    row = 2
    for step in drawing.get("steps", []):
        if "switch" in step:
            text = str(step["switch"])
            css = "switch preemption" if " preempted, " in text else "switch"
            cells.append(
                f"<div class='{css}' style='grid-row:{row};grid-column:1 / span {count}'>"
                f"{html.escape(text.strip('- '))}</div>"
            )
        else:
            lane = int(step["worker"])
            css = "step conflict" if step.get("conflict") else "step"
            note = f"<span class='note'>{html.escape(step['note'])}</span>" if step["note"] else ""
            cells.append(
                f"<div class='{css}' data-lane='{lane}' "
                f"style='grid-row:{row};grid-column:{lane + 1}'>"
                f"<span class='where'>{html.escape(step['where'])}</span> "
                f"{html.escape(step['source'])}{note}</div>"
            )
        row += 1
    plural = "s" if preemptions != 1 else ""
    return (
        f"<p>the interleaving that fails, {preemptions} preemption{plural}:</p>"
        f"<div class='lanes' style='grid-template-columns:repeat({count}, minmax(14em, 1fr))'>"
        + "".join(cells)
        + "</div>"
    )


def cycle(graph: list[list[str]]) -> str:
    """The wait-for circle: an arrow from each worker to the one holding what it waits for."""
    names = [edge[0] for edge in graph]
    size, radius = 360, 120
    points = {
        name: (
            size / 2 + radius * math.cos(2 * math.pi * i / len(names) - math.pi / 2),
            size / 2 + radius * math.sin(2 * math.pi * i / len(names) - math.pi / 2),
        )
        for i, name in enumerate(names)
    }
    shapes = [
        "<svg class='cycle' width='360' height='360' viewBox='0 0 360 360'>",
        "<defs><marker id='arrow' markerWidth='10' markerHeight='10' refX='9' refY='3' "
        "orient='auto'><path d='M0,0 L0,6 L9,3 z' fill='#d33'/></marker></defs>",
    ]
    for name, _holds, waits in graph:
        holder = next((n for n in names if n != name and f"held by {n}" in waits), None)
        if holder is None:
            continue
        (x1, y1), (x2, y2) = points[name], points[holder]
        shapes.append(
            f"<line x1='{x1:.0f}' y1='{y1:.0f}' x2='{x1 + 0.8 * (x2 - x1):.0f}' "
            f"y2='{y1 + 0.8 * (y2 - y1):.0f}' stroke='#d33' stroke-width='2' "
            "marker-end='url(#arrow)'/>"
        )
    for name, holds, _waits in graph:
        x, y = points[name]
        shapes.append(
            f"<circle cx='{x:.0f}' cy='{y:.0f}' r='28' fill='#eef3fb' stroke='#6b8fd6'/>"
            f"<text x='{x:.0f}' y='{y:.0f}' text-anchor='middle'>{html.escape(name)}</text>"
            f"<title>{html.escape(name)} holds {html.escape(holds)}</title>"
        )
    shapes.append("</svg>")
    legend = "".join(
        f"<li>{html.escape(n)} holds {html.escape(h)} and waits for {html.escape(w)}</li>"
        for n, h, w in graph
    )
    return "<p>who waits for whom:</p>" + "".join(shapes) + f"<ul>{legend}</ul>"
