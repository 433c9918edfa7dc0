"""`blindsum bench plot DIR`: figures from what `blindsum bench sweep --out DIR` wrote.

Writes PNGs into DIR (matplotlib, Agg backend):

- cost_vs_clients.png, cost_vs_dim.png, cost_vs_dropout.png: seconds for each
  role (participant, aggregator, whole round), median over repeats with min–max
  bars, the physical limit measured in the same run as a dashed line of the same
  colour, and the plaintext sum (no protection) as a dotted line;
- bytes_vs_dim.png: bytes uploaded per participant, with the masked vector's own
  size (d x lane bytes) as the limit;
- memory_vs_clients.png: the process's peak RSS during the round.

A figure is drawn only when some series in DIR varies along its x axis.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.sweep import RESULTS_JSONL, read_results, summarise

# Series are the rows that agree on every parameter except the x axis.
PARAMS = ("clients", "dim", "bits", "dropout", "drop_stage", "graph", "path", "dp")
LABELS = {
    "clients": "participants n",
    "dim": "dimension d (lanes)",
    "dropout": "dropout fraction (dropped before sending the masked input)",
}
ROLES = (
    ("participant", "participant_seconds_mean", "participant_limit_seconds", None),
    ("aggregator", "aggregator_seconds", "aggregator_limit_seconds", "plaintext_sum_seconds"),
    ("whole round (participants serial)", "round_seconds", "round_limit_seconds", "plaintext_sum_seconds"),
)  # fmt: skip


def _series(summary: list[dict], x: str) -> list[tuple[str, list[dict]]]:
    groups: dict[tuple, list[dict]] = {}
    for e in summary:
        groups.setdefault(tuple(e.get(p) for p in PARAMS if p != x), []).append(e)
    multi = {
        k: sorted(v, key=lambda e: e[x]) for k, v in groups.items() if len({e[x] for e in v}) > 1
    }
    if not multi:
        return []
    # Label each series by the parameters that differ between series.
    others = [p for p in PARAMS if p != x]
    differing = [i for i, _ in enumerate(others) if len({k[i] for k in multi}) > 1]
    out = []
    for key, entries in multi.items():
        parts = [_fmt(others[i], key[i]) for i in differing] or [_fmt_fixed(entries[0], x)]
        out.append((", ".join(parts), entries))
    return sorted(out)


def _fmt(name: str, value: object) -> str:
    if name == "graph":
        return "SecAgg+ (Harary)" if value == "harary" else "SecAgg (full graph)"
    if name == "dim":
        return f"d={value:.0e}".replace("e+0", "e")
    if name == "dp":
        return f"DDG {value}"
    return f"{name}={value}"


def _fmt_fixed(e: dict, x: str) -> str:
    return ", ".join(_fmt(p, e[p]) for p in ("graph", "dim", "clients", "dropout") if p != x)


def _title_fixed(series: list[tuple[str, list[dict]]], x: str) -> str:
    entries = [e for _, es in series for e in es]
    fixed = []
    for p in PARAMS:
        if p == x:
            continue
        values = {e[p] for e in entries}
        if len(values) == 1:
            v = values.pop()
            if p == "dim":
                fixed.append(f"d={v:,}")
            elif p == "clients":
                fixed.append(f"n={v}")
            elif p in ("bits", "dropout"):
                fixed.append(f"{p}={v:g}")
    return ", ".join(fixed)


def _errbar(ax, xs, entries, metric, **kw):
    ys = [e[metric] for e in entries]
    lo = [e[metric] - e[metric + "_min"] for e in entries]
    hi = [e[metric + "_max"] - e[metric] for e in entries]
    return ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", ms=4, capsize=3, **kw)


def _cost_figure(summary: list[dict], x: str, out: Path) -> Path | None:
    import matplotlib.pyplot as plt

    series = _series(summary, x)
    if not series:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for ax, (role, metric, limit, baseline) in zip(axes, ROLES, strict=True):
        for i, (label, entries) in enumerate(series):
            entries = [e for e in entries if metric in e]
            if not entries:
                continue
            colour = f"C{i % 10}"
            xs = [e[x] for e in entries]
            _errbar(ax, xs, entries, metric, color=colour, label=label)
            lim = [e.get(limit) for e in entries]
            if all(v is not None for v in lim):
                ax.plot(xs, lim, ls="--", color=colour, alpha=0.8, label=f"{label}: physical limit")
            if baseline and all(baseline in e for e in entries):
                ax.plot(
                    xs,
                    [e[baseline] for e in entries],
                    ls=":",
                    color=colour,
                    alpha=0.8,
                    label=f"{label}: plaintext sum",
                )
        ax.set_title(role)
        ax.set_xlabel(LABELS.get(x, x))
        ax.set_ylabel("seconds (median, min–max bars)")
        if x != "dropout":
            ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[-1].get_legend_handles_labels()
    h0, l0 = axes[0].get_legend_handles_labels()
    for h, lab in zip(h0, l0, strict=True):
        if lab not in labels:
            handles.append(h)
            labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8)
    fig.suptitle(f"cost vs {LABELS.get(x, x).split(' (')[0]} ({_title_fixed(series, x)})")
    rows = (len(labels) + 2) // 3
    fig.tight_layout(rect=(0, 0.05 + 0.035 * rows, 1, 1))
    path = out / f"cost_vs_{'clients' if x == 'clients' else x}.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _bytes_figure(summary: list[dict], out: Path) -> Path | None:
    import matplotlib.pyplot as plt

    series = _series(summary, "dim")
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.6))
    for i, (label, entries) in enumerate(series):
        entries = [e for e in entries if "bytes_up_per_participant" in e]
        if not entries:
            continue
        colour = f"C{i % 10}"
        xs = [e["dim"] for e in entries]
        _errbar(ax, xs, entries, "bytes_up_per_participant", color=colour, label=label)
        lane = 4 if entries[0]["bits"] <= 32 else 8
        ax.plot(
            xs,
            [(e.get("secagg_dim") or e["dim"]) * lane for e in entries],
            ls="--",
            color=colour,
            alpha=0.8,
            label=f"{label}: d' x {lane} B (the vector itself)",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(LABELS["dim"])
    ax.set_ylabel("bytes uploaded per participant")
    ax.set_title(f"upload per participant vs d ({_title_fixed(series, 'dim')})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "bytes_vs_dim.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _memory_figure(summary: list[dict], out: Path) -> Path | None:
    import matplotlib.pyplot as plt

    series = _series(summary, "clients")
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.6))
    traced_any = False
    for i, (label, entries) in enumerate(series):
        entries = [e for e in entries if "peak_rss_bytes" in e]
        if not entries:
            continue
        colour = f"C{i % 10}"
        xs = [e["clients"] for e in entries]
        traced = [e.get("traced_peak_bytes") for e in entries]
        if all(v is not None for v in traced):
            ys = [v / 2**20 for v in traced]
            ax.plot(xs, ys, marker="o", color=colour, label=f"{label}: heap peak (tracemalloc)")
            traced_any = True
        ys = [e["peak_rss_bytes"] / 2**20 for e in entries]
        ax.plot(xs, ys, marker="s", ls="-.", color=colour, alpha=0.6, label=f"{label}: peak RSS")
        lane = 4 if entries[0]["bits"] <= 32 else 8
        ax.plot(
            xs,
            [(e.get("secagg_dim") or e["dim"]) * lane / 2**20 for e in entries],
            ls="--",
            color=colour,
            alpha=0.8,
            label=f"{label}: one d-lane vector",
        )
    ax.set_xscale("log")
    ax.set_xlabel(LABELS["clients"])
    ax.set_ylabel("MiB")
    ax.set_title(
        "memory during one round, whole simulation process (aggregator + participants)"
        + ("\nheap peak from an extra untimed round under tracemalloc" if traced_any else ""),
        fontsize=10,
    )
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "memory_vs_clients.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_results(directory: Path) -> list[Path]:
    """Write every figure the results in `directory` support; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    directory = Path(directory)
    summary = summarise(read_results(directory))
    made = [
        _cost_figure(summary, "clients", directory),
        _cost_figure(summary, "dim", directory),
        _cost_figure(summary, "dropout", directory),
        _bytes_figure(summary, directory),
        _memory_figure(summary, directory),
    ]
    return [p for p in made if p is not None]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plot", help="PNG figures from a `bench sweep --out DIR` directory")
    p.add_argument(
        "dir", metavar="DIR", nargs="?", default="bench/out/sweep", help="(default %(default)s)"
    )
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if not (directory / RESULTS_JSONL).is_file():
        print(
            f"blindsum bench plot: error: {directory / RESULTS_JSONL} does not exist "
            "(run `blindsum bench sweep --out DIR` first)",
            file=sys.stderr,
        )
        return 2
    if not read_results(directory):
        print(
            f"blindsum bench plot: error: {directory / RESULTS_JSONL} has no results",
            file=sys.stderr,
        )
        return 2
    made = plot_results(directory)
    if not made:
        print(
            "blindsum bench plot: nothing to plot: no series varies n, d or the dropout "
            "(sweep at least two values of one of them)",
            file=sys.stderr,
        )
        return 1
    for path in made:
        print(path)
    return 0
