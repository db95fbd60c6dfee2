#!/usr/bin/env python
"""Plot a harness result: median latency (log scale) against recall@k, one point per system.

    python benches/plot.py benches/results/100000.json [out.png]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FAMILY_COLORS = {"scipy": "#7f7f7f", "bmp": "#1f77b4", "pisa": "#2ca02c",
                 "seismic": "#ff7f0e", "kannolo": "#9467bd", "sparsedex": "#d62728"}


def _family(name):
    return name.split("-")[0]


def _x(v):
    """Speedup as text: two significant digits below 10, whole numbers above."""
    return f"{v:.2g}×" if v < 10 else f"{v:,.0f}×"


def _place_labels(ax, rows, step):
    """Annotate points, nudging labels down where they would overlap (axes coordinates; `step`
    is one label's height as a fraction of the axes)."""
    import numpy as np
    x0, x1 = ax.get_xlim()
    y0, y1 = (np.log10(v) for v in ax.get_ylim())
    placed = []
    for r in sorted(rows, key=lambda r: -r["median_ms"]):
        fx = (r["recall"] - x0) / (x1 - x0)
        fy = (np.log10(r["median_ms"]) - y0) / (y1 - y0)
        ly = fy
        while any(abs(ly - py) < step and abs(fx - px) < 0.3 for px, py in placed):
            ly -= step
        placed.append((fx, ly))
        ax.annotate(r["system"], (fx, fy), xycoords="axes fraction", xytext=(fx + 0.02, ly),
                    textcoords="axes fraction", fontsize=7, va="center", annotation_clip=False,
                    arrowprops=dict(arrowstyle="-", color="gray", lw=0.5) if abs(ly - fy) > 1e-9 else None)


def plot(json_path, png_path=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    json_path = Path(json_path)
    data = json.loads(json_path.read_text())
    rows = [r for r in data["rows"] if not r.get("batch") and r.get("median_ms")]
    c = data["corpus"]
    k = data["k"]
    # tall enough for one bar (and one label) per row: with 30+ rows a fixed height squashed both
    height = max(5.5, 0.26 * len(rows) + 2.0)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(14, height), gridspec_kw={"width_ratios": [1.15, 1]})

    # left: latency vs recall
    for r in rows:
        fam = _family(r["system"])
        marker = "o" if r["kind"] == "exact" else "^"
        ax.scatter(r["recall"], r["median_ms"], s=60, marker=marker, color=FAMILY_COLORS.get(fam, "k"),
                   edgecolor="black", linewidth=0.5, zorder=3)
        ax.errorbar(r["recall"], r["median_ms"], yerr=[[0], [r["p90_ms"] - r["median_ms"]]],
                    color=FAMILY_COLORS.get(fam, "k"), alpha=0.4, capsize=2, zorder=2)
    ax.set_yscale("log")
    ax.set_xlabel(f"recall@{k} vs exact float scoring")
    ax.set_ylabel("median ms / query (1 thread, log); bar to p90")
    lo = min(r["recall"] for r in rows)
    ax.set_xlim(max(0.0, lo - 0.05), 1.0 + max(0.01, (1.0 - lo) * 0.6))
    ymin = min(r["median_ms"] for r in rows)
    ymax = max(r["p90_ms"] for r in rows)
    ax.set_ylim(ymin / 2.5, ymax * 1.5)
    ax.grid(True, which="both", alpha=0.3)
    ax_h_pt = ax.get_position().height * height * 72  # the axes' height in points
    _place_labels(ax, rows, step=10.0 / ax_h_pt)
    ax.set_title("latency vs recall  (o exact, ^ approximate)", fontsize=10)

    # right: speedup vs scipy, bars sorted
    srt = sorted(rows, key=lambda r: r["median_ms"])
    names = [r["system"] for r in srt]
    sp = [r.get("speedup_vs_scipy", 0) for r in srt]
    bars = bx.barh(range(len(srt)), sp, color=[FAMILY_COLORS.get(_family(n), "k") for n in names],
                   edgecolor="black", linewidth=0.5)
    for b_, r in zip(bars, srt):
        hatch = "" if r["kind"] == "exact" else "//"
        b_.set_hatch(hatch)
        bx.text(b_.get_width() * 1.05, b_.get_y() + b_.get_height() / 2,
                f"{_x(r.get('speedup_vs_scipy', 0))}  ({r['median_ms']:.2f} ms, R={r['recall']:.3f})",
                va="center", fontsize=8)
    bx.set_yticks(range(len(srt)))
    bx.set_yticklabels(names, fontsize=8)
    bx.invert_yaxis()
    bx.set_xscale("log")
    bx.axvline(1.0, color="gray", linestyle="--", linewidth=0.8)
    bx.set_xlabel("speedup vs scipy exhaustive (median, same run, log)")
    bx.set_xlim(min(sp) * 0.5, max(sp) * 12)
    bx.set_title("speedup (hatched = approximate)", fontsize=10)
    import textwrap

    source = str(c["source"]).split(";")[0]  # the corpus; the rest is in the result file
    source += ")" * (source.count("(") - source.count(")"))
    title = f"{c['docs']:,} docs × {c['queries']:,} queries, top-{k}: {source}"
    fig.suptitle("\n".join(textwrap.wrap(title, 150)), fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    png_path = Path(png_path) if png_path else json_path.with_suffix(".png")
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    print(plot(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
