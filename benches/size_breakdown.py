"""Bytes of an index, section by section, and per posting.

Builds one segment (u8 impacts, stored vectors kept, as the harness does) over a corpus, saves
it as one engine file, reads its section table (the container of
rust/core/FORMAT.md §1) and groups the sections:

- doc ids: `docs` (bit-packed gaps) and `block_off`, `block_last` (per 128-posting block);
- impacts: `impacts_<k>`;
- block-max metadata: `block_max_<k>`, `dbm_*`, `fbm_*`, `sbm_*`;
- term dictionary: `term_ids`, `term_lut`, `term_post_start`, `term_block_start`, `term_max_<k>`;
- stored vectors: `fwd_*`;
- ids: `ids_*`; other: `meta`, `doc_len`, and the container's header, table and padding.

"postings-only" is doc ids + impacts + block-max metadata + term dictionary (what PISA's index
directory holds: its compressed postings, block maxima and term data); "with stored vectors"
adds the forward vectors (explain, get, rebuilds and forward scoring read them). From format
version 4 the dense doc-block, fine-block and superblock maxima are not in the file: they are
derived from the postings when the segment is opened, and the report gives their size in memory
(`stats()['derived_bytes']`) and the time to open the saved file (median of `--opens` opens,
every section checked and every doc-id block decoded, as for any file a process did not write).

    python benches/size_breakdown.py --data /work/shared/data/debian --name debian
    python benches/size_breakdown.py --docs 100000 --name synthetic-100k
"""

import argparse
import json
import shutil
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

GROUPS = [
    ("doc ids", lambda n: n in ("docs", "block_off", "block_last")),
    ("impacts", lambda n: n.startswith("impacts_")),
    ("block-max metadata", lambda n: n.startswith(("block_max_", "dbm_", "fbm_", "sbm_"))),
    ("term dictionary", lambda n: n.startswith(("term_",))),
    ("stored vectors", lambda n: n.startswith("fwd_")),
    ("ids", lambda n: n.startswith("ids_")),
    ("other", lambda n: True),
]
POSTINGS_ONLY = ("doc ids", "impacts", "block-max metadata", "term dictionary")


def sections(path):
    """(name, length) of each section of a container file, and the file length."""
    b = Path(path).read_bytes()
    (count,) = struct.unpack_from("<I", b, 24)
    (table,) = struct.unpack_from("<Q", b, 32)
    out = []
    for i in range(count):
        e = b[table + 64 * i: table + 64 * (i + 1)]
        name = e[:32].rstrip(b"\0").decode()
        (length,) = struct.unpack_from("<Q", e, 40)
        out.append((name, length))
    return out, len(b)


def load(args):
    if args.data:
        import scipy.sparse as sps
        m = sps.load_npz(Path(args.data) / "docs.npz")
        return m.indptr.astype(np.uint64), m.indices.astype(np.uint32), m.data.astype(np.float32), str(args.data)
    from sparsedex import _core
    a = _core.synthetic_corpus(args.docs, 1, args.seed)
    return a[0], a[1], a[2], f"synthetic_corpus({args.docs}, seed {args.seed})"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="directory with docs.npz (scipy CSR)")
    p.add_argument("--docs", type=int, default=100_000, help="synthetic corpus size (without --data)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", required=True)
    p.add_argument("--opens", type=int, default=5, help="times the saved file is opened (median reported)")
    p.add_argument("--out", default=None, help="write <out>/size-<name>.json and .md")
    args = p.parse_args()
    from sparsedex._segment import SegmentView

    indptr, indices, values, source = load(args)
    n_post = len(indices)
    t = time.perf_counter()
    ix = SegmentView.build((indptr, indices, values), quantization="u8", store_vectors=True)
    build_s = time.perf_counter() - t
    st = dict(ix.stats())
    tmp = Path(tempfile.mkdtemp(prefix="sdx-size-"))
    try:
        ix.save(str(tmp / "ix.sdx"))  # one engine file (SegmentView.save)
        files = [tmp / "ix.sdx"]
        opens = []
        for _ in range(args.opens):
            t = time.perf_counter()
            back = SegmentView.open(str(tmp / "ix.sdx"))
            opens.append(time.perf_counter() - t)
            del back
        open_s = float(np.median(opens)) if opens else float("nan")
        per = {}
        file_len = 0
        for f in files:
            secs, flen = sections(f)
            file_len += flen
            for name, length in secs:
                per[name] = per.get(name, 0) + length
    finally:
        shutil.rmtree(tmp)
    per["(container header, table, padding)"] = file_len - sum(per.values())
    groups = {g: 0 for g, _ in GROUPS}
    where = {}
    for name, length in per.items():
        g = next(g for g, f in GROUPS if f(name))
        groups[g] += length
        where[name] = g
    postings_only = sum(groups[g] for g in POSTINGS_ONLY)
    res = dict(name=args.name, source=source, n_docs=len(indptr) - 1, n_postings=n_post, build_s=build_s,
               sections=per, groups=groups, postings_only_bytes=postings_only, engine_bytes=file_len,
               derived_bytes=int(st.get("derived_bytes", 0)), open_s=open_s, opens=opens,
               stats={k: (v if isinstance(v, (int, float)) else str(v)) for k, v in st.items()})
    lines = [f"# Index size by section: {args.name}", "",
             f"Corpus: {source}; {res['n_docs']:,} documents, {n_post:,} postings. u8 impacts, stored vectors kept, "
             "one segment.", f"Command: `python benches/size_breakdown.py "
             + (f"--data {args.data}" if args.data else f"--docs {args.docs} --seed {args.seed}")
             + f" --name {args.name}" + (f" --out {args.out}" if args.out else "") + "`", "",
             "| section | group | bytes | MB | bytes/posting |", "|---|---|---:|---:|---:|"]
    for name, length in sorted(per.items(), key=lambda kv: -kv[1]):
        lines.append(f"| `{name}` | {where[name]} | {length:,} | {length / 1e6:.2f} | {length / n_post:.3f} |")
    lines += ["", "| group | MB | bytes/posting |", "|---|---:|---:|"]
    for g, length in groups.items():
        lines.append(f"| {g} | {length / 1e6:.2f} | {length / n_post:.3f} |")
    lines += [f"| **postings-only** ({' + '.join(POSTINGS_ONLY)}) | {postings_only / 1e6:.2f} | "
              f"{postings_only / n_post:.3f} |",
              f"| **engine file, with stored vectors** | {file_len / 1e6:.2f} | {file_len / n_post:.3f} |",
              f"| dense block maxima derived at open (memory only) | {res['derived_bytes'] / 1e6:.2f} | "
              f"{res['derived_bytes'] / n_post:.3f} |", "",
              f"Open of the saved file (median of {len(opens)}): {open_s * 1e3:.0f} ms.", "",
              f"`stats()`: bytes {st.get('bytes', 0):,}, postings_bytes {st.get('postings_bytes', 0):,}, "
              f"vectors_bytes {st.get('vectors_bytes', 0):,}. Build {build_s:.1f} s.", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        out = Path(args.out)
        (out / f"size-{args.name}.json").write_text(json.dumps(res, indent=1))
        (out / f"size-{args.name}.md").write_text(text)


if __name__ == "__main__":
    main()
