"""Stop 17 (issue #10, index size): search latency on main vs the size branch, from harness runs.

Two pairs of `benches/harness.py` runs per corpus (run 1: main then branch; run 2: branch then
main), same command: `--queries 200 --k 10 --systems scipy,sparsedex --rounds 2 --warmup 10
--sparsedex-quantizations u8 --sparsedex-algorithms exhaustive,auto,bmp,bmt,sp --no-plot`, main
through /work/main/.venv (sparsedex built from main), the branch through its own venv. Prints
per algorithm the medians over the two pairs of branch / main (ms, and ms relative to scipy in
the same run, which cancels part of the shared machine's load).

    python benches/compare_runs_stop17.py
"""
import json, statistics, sys
pairs = {"debian": [("benches/results/debian-main-stop17.json", "benches/results/debian-size-branch-stop17.json"),
                    ("benches/results/debian-main-r2-stop17.json", "benches/results/debian-r2-stop17.json")],
         "synthetic 100k": [("benches/results/syn100k-main-stop17.json", "benches/results/syn100k-stop17.json"),
                            ("benches/results/syn100k-main-r2-stop17.json", "benches/results/syn100k-r2-stop17.json")]}
def rows(p):
    j = json.load(open(p))
    rs = j["rows"] if isinstance(j, dict) and "rows" in j else j
    return {r["system"]: r for r in rs if not r.get("batch")}
out = []
for corpus, ps in pairs.items():
    out.append(f"\n### {corpus}\n")
    out.append("| system | main ms (run 1, run 2) | branch ms (run 1, run 2) | branch / main, ms | branch / main, ms / scipy ms same run | recall main = branch |")
    out.append("|---|---|---|---:|---:|---|")
    loaded = [(rows(a), rows(b)) for a, b in ps]
    for s in loaded[0][0]:
        if s == "scipy": continue
        m = [L[0][s]["median_ms"] for L in loaded]; b = [L[1][s]["median_ms"] for L in loaded]
        rel = [L[1][s]["median_ms"] / L[1]["scipy"]["median_ms"] / (L[0][s]["median_ms"] / L[0]["scipy"]["median_ms"]) for L in loaded]
        rec = all(abs(L[0][s]["recall"] - L[1][s]["recall"]) < 1e-9 for L in loaded)
        out.append(f"| {s} | {m[0]:.3f}, {m[1]:.3f} | {b[0]:.3f}, {b[1]:.3f} | {statistics.median([x/y for x,y in zip(b,m)]):.2f} | {statistics.median(rel):.2f} | {'yes' if rec else 'NO'} |")
print("\n".join(out))
