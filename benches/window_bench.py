"""SPLADE encoding of very long texts: the text window against tokenising whole texts.

What it measures
    Wall time and peak memory (the process's RSS high-water mark) of
    ``SpladeEncoder("splade-tiny").encode_documents(texts)`` on 16 texts of 60,000 words
    each (~360,000 characters: words drawn with a fixed seed from Cranfield's abstracts), in
    three settings, each in a fresh subprocess:

    - ``window``: as shipped; only a window of each text is tokenised (``TextWindow``);
    - ``whole``: the window switched off (``encoder._window.chars`` set beyond any text), so
      the tokenizer reads every text to its end and truncates afterwards, as before;
    - ``cut``: the same texts cut to 20,000 characters first, with the window: the floor
      (the model sees the same first 512 tokens in all three settings).

    Each worker also reports a checksum of the vectors: equal sums show the settings give the
    same vectors. Settings alternate within each repeat (drift on a shared machine hits all),
    and the table gives medians and the ratio to ``whole`` measured in the same run.

Run
    python benches/window_bench.py [--repeats 3] [--texts 16] [--words 60000] [--threads T]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT.parent / "shared" / "data" / "cranfield" / "corpus.jsonl"
if not DATA.exists():
    DATA = Path("/work/shared/data/cranfield/corpus.jsonl")


def make_texts(n: int, words: int, seed: int = 0) -> list[str]:
    vocab = [w for line in DATA.open(encoding="utf-8") for w in json.loads(line)["text"].split()]
    rng = random.Random(seed)
    return [" ".join(rng.choice(vocab) for _ in range(words)) for _ in range(n)]


def worker(setting: str, n: int, words: int, threads: int) -> None:
    sys.path.insert(0, str(ROOT / "python"))
    import numpy as np

    from sparsedex.encoders import SpladeEncoder

    texts = make_texts(n, words)
    if setting == "cut":
        texts = [t[:20_000] for t in texts]
    enc = SpladeEncoder("splade-tiny", threads=threads, progress=False)
    if setting == "whole":
        enc._window.chars = 1 << 62
    enc.encode_documents(["warm up the session"])
    t0 = time.perf_counter()
    vecs = enc.encode_documents(texts)
    dt = time.perf_counter() - t0
    checksum = float(sum(np.float64(v.values).sum() + v.indices.sum() for v in vecs))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"setting": setting, "seconds": dt, "rss_mb": rss, "checksum": checksum}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--texts", type=int, default=16)
    ap.add_argument("--words", type=int, default=60_000)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.texts, a.words, a.threads)
        return
    rows: dict[str, list[dict]] = {"window": [], "whole": [], "cut": []}
    for r in range(a.repeats):
        for setting in rows:
            out = subprocess.run(
                [sys.executable, __file__, "--worker", setting, "--texts", str(a.texts), "--words", str(a.words),
                 "--threads", str(a.threads)],
                capture_output=True, text=True, check=True,
            ).stdout
            rows[setting].append(json.loads(out.strip().splitlines()[-1]))
            print(f"repeat {r + 1}: {rows[setting][-1]}", file=sys.stderr)
    base = statistics.median(x["seconds"] for x in rows["whole"])
    print(f"{a.texts} texts of {a.words:,} words, splade-tiny, {a.threads} threads, median of {a.repeats}:\n")
    print("| setting | seconds | speed-up vs whole | peak RSS MB | vector checksum |")
    print("|---|---:|---:|---:|---:|")
    for setting, xs in rows.items():
        s = statistics.median(x["seconds"] for x in xs)
        m = statistics.median(x["rss_mb"] for x in xs)
        sums = {round(x["checksum"], 3) for x in xs}
        print(f"| {setting} | {s:.2f} | {base / s:.2f}x | {m:.0f} | {', '.join(map(str, sums))} |")


if __name__ == "__main__":
    main()
