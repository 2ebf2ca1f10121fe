"""The talk's table as a picture: speed-up over sequential, per strategy, grouped by workload."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


def talk_table_png(section: dict[str, Any], path: Path) -> None:
    """Grouped bars (log scale) of each strategy's speed-up over `sequential`, one group per workload."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render straight to a file
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    from bench.talk_table import ENGINE, HAND_WRITTEN, HTTP_ACTION

    found = section["workloads"]
    # Sequential is the 1x line itself; every other strategy is a bar growing up (faster) or down
    # (slower) from it.
    strategies = [*HAND_WRITTEN[1:], *ENGINE]
    if any(HTTP_ACTION in w["cells"] for w in found.values()):
        strategies.append(HTTP_ACTION)
    colours = ["#64b5f6", "#1565c0", "#81c784", "#2e7d32", "#ffb74d", "#d81b60", "#f8bbd0", "#8e24aa"]
    hatches = [""] * (len(HAND_WRITTEN) - 1) + ["", "//", ""]
    fig, ax = plt.subplots(figsize=(12, 5.6), dpi=120)
    group = 1.0
    width = group * 0.85 / len(strategies)
    for s, name in enumerate(strategies):
        xs, ys = [], []
        for g, w in enumerate(found.values()):
            cell = w["cells"].get(name)
            if cell is not None:
                xs.append(g + (s - (len(strategies) - 1) / 2) * width)
                ys.append(cell["speedup"])
        bars = ax.bar(xs, [y - 1 for y in ys], width, bottom=1, label=name, color=colours[s % len(colours)],
                      hatch=hatches[s], edgecolor="black", linewidth=0.5)
        for bar, y in zip(bars, ys, strict=True):
            up = y >= 1
            ax.annotate(f"{y:.1f}", (bar.get_x() + bar.get_width() / 2, y), ha="center", va="bottom" if up else "top",
                        fontsize=7, xytext=(0, 2 if up else -2), textcoords="offset points")
    ax.set_yscale("log")
    ax.axhline(1.0, color="black", linewidth=1.0, label="sequential (1x)")
    ax.set_xlim(-0.5, len(found) - 0.5)
    ax.set_xticks(range(len(found)))
    ax.set_xticklabels([f"{w['title']}\n{w['items']} items" for w in found.values()], fontsize=10)
    ax.set_ylabel("speed-up over sequential (log scale, higher is better)")
    ax.set_title(
        f"Each kind of work, run every way: {section['width']} in flight, {section['process_workers']} worker processes, "
        f"best of {section['repeat']} (CPU: {section['cpu_repeat']})", fontsize=11,
    )
    ax.legend(ncol=3, fontsize=8.5, loc="upper right", framealpha=0.95)
    ax.grid(axis="y", which="both", alpha=0.3)
    speedups = [c["speedup"] for w in found.values() for c in w["cells"].values()]
    low, high = min(*speedups, 1.0) / 1.5, max(speedups) * 3.5  # room for labels, and the legend on top
    ax.set_ylim(low, high)
    ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if low <= t <= high]
    ax.set_yticks(ticks)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}x"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
