#!/usr/bin/env python
"""Plot a harness result: median latency (log scale) against recall@k, one point per system.

    python benches/plot.py benches/results/100000.json [out.png]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FAMILY_COLORS = {"scipy": "#7f7f7f", "bmp": "#1f77b4", "pisa": "#2ca02c",
                 "seismic": "#ff7f0e", "sparsedex": "#d62728"}


def _family(name):
    return name.split("-")[0]


def plot(json_path, png_path=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    json_path = Path(json_path)
    data = json.loads(json_path.read_text())
    rows = [r for r in data["rows"] if not r.get("batch") and r.get("median_ms")]
    c = data["corpus"]
    k = data["k"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [1.15, 1]})

    # left: latency vs recall
    for r in rows:
        fam = _family(r["system"])
        marker = "o" if r["kind"] == "exact" else "^"
        ax.scatter(r["recall"], r["median_ms"], s=60, marker=marker, color=FAMILY_COLORS.get(fam, "k"),
                   edgecolor="black", linewidth=0.5, zorder=3)
        ax.errorbar(r["recall"], r["median_ms"], yerr=[[0], [r["p90_ms"] - r["median_ms"]]],
                    color=FAMILY_COLORS.get(fam, "k"), alpha=0.4, capsize=2, zorder=2)
        ax.annotate(r["system"], (r["recall"], r["median_ms"]), textcoords="offset points",
                    xytext=(6, 3), fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel(f"recall@{k} vs exact float scoring")
    ax.set_ylabel("median ms / query (1 thread, log); bar to p90")
    lo = min(r["recall"] for r in rows)
    ax.set_xlim(max(0.0, lo - 0.08), 1.06)
    ax.grid(True, which="both", alpha=0.3)
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
                f"{r.get('speedup_vs_scipy', 0):.1f}×  ({r['median_ms']:.2f} ms, R={r['recall']:.3f})",
                va="center", fontsize=8)
    bx.set_yticks(range(len(srt)))
    bx.set_yticklabels(names, fontsize=8)
    bx.invert_yaxis()
    bx.set_xscale("log")
    bx.axvline(1.0, color="gray", linestyle="--", linewidth=0.8)
    bx.set_xlabel("speedup vs scipy exhaustive (median, same run, log)")
    bx.set_xlim(min(sp) * 0.5, max(sp) * 12)
    bx.set_title("speedup (hatched = approximate)", fontsize=10)
    fig.suptitle(f"{c['docs']:,} docs × {c['queries']:,} queries, top-{k} — {c['source']}", fontsize=11)
    fig.tight_layout()
    png_path = Path(png_path) if png_path else json_path.with_suffix(".png")
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    print(plot(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
