"""Write a synthetic corpus and its queries as raw little-endian arrays for the Rust probes
(`rust/core/examples/seg_probe.rs`, `probe.rs`): `d_indptr` (u64), `d_indices` (u32),
`d_values` (f32) and the same `q_*` for 1,000 queries, seed 42.

    python benches/tools/dump_raw.py 1000000 /tmp/seg/d1m
    cargo build --release -p sparsedex-core --examples
    ./target/release/examples/seg_probe /tmp/seg/d1m 10 bmp

A directory holding `docs.npz` and `queries.npz` (scipy sparse, as ../shared/data/debian) in
place of the number of documents dumps that corpus instead:

    python benches/tools/dump_raw.py ../shared/data/debian /tmp/seg/deb
"""

import os
import sys

import numpy as np

from sparsedex import _core


def main() -> None:
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    if os.path.isdir(src):
        import scipy.sparse as sp

        d, q = (sp.load_npz(os.path.join(src, f)).tocsr().astype(np.float32) for f in ("docs.npz", "queries.npz"))
        d.sort_indices()
        q.sort_indices()
        di, dx, dv, qi, qx, qv = d.indptr, d.indices, d.data, q.indptr, q.indices, q.data
    else:
        di, dx, dv, qi, qx, qv = _core.synthetic_corpus(int(src), 1000, 42)
    for name, a, t in [("d_indptr", di, np.uint64), ("d_indices", dx, np.uint32), ("d_values", dv, np.float32),
                       ("q_indptr", qi, np.uint64), ("q_indices", qx, np.uint32), ("q_values", qv, np.float32)]:
        np.asarray(a, dtype=t).tofile(os.path.join(out, name))
    print(f"{len(di) - 1} documents, {len(qi) - 1} queries in {out}")


if __name__ == "__main__":
    main()
