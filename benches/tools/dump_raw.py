"""Write a synthetic corpus and its queries as raw little-endian arrays for the Rust probes
(`rust/core/examples/seg_probe.rs`, `probe.rs`): `d_indptr` (u64), `d_indices` (u32),
`d_values` (f32) and the same `q_*` for 1,000 queries, seed 42.

    python benches/tools/dump_raw.py 1000000 /tmp/seg/d1m
    cargo build --release -p sparsedex-core --examples
    ./target/release/examples/seg_probe /tmp/seg/d1m 10 bmp
"""

import os
import sys

import numpy as np

from sparsedex import _core


def main() -> None:
    n, out = int(sys.argv[1]), sys.argv[2]
    os.makedirs(out, exist_ok=True)
    di, dx, dv, qi, qx, qv = _core.synthetic_corpus(n, 1000, 42)
    for name, a, t in [("d_indptr", di, np.uint64), ("d_indices", dx, np.uint32), ("d_values", dv, np.float32),
                       ("q_indptr", qi, np.uint64), ("q_indices", qx, np.uint32), ("q_values", qv, np.float32)]:
        np.asarray(a, dtype=t).tofile(os.path.join(out, name))
    print(f"{len(di) - 1} documents, {len(qi) - 1} queries in {out}")


if __name__ == "__main__":
    main()
