"""Child process of the save-crash test: saves version after version of a small index into
the same directory (each save over the previous one) until it is killed.

Version ``v`` holds documents ``v .. v + 19`` (vectors from ``doc_vec``), each with payload
``{"v": v}`` and text ``"doc <id> of <v>"``; odd versions come from an in-memory index, even
ones from a durable index in a scratch directory (both ``save()`` paths). Prints ``v`` after
each save returns.
"""

from __future__ import annotations

import sys
from pathlib import Path

N = 20


def version_ids(v: int) -> list[int]:
    return list(range(v, v + N))


def main(dest: str, scratch: str, start: int) -> None:
    from sparsedex import SparseIndex
    from sparsedex.index import MergePolicy

    sys.path.insert(0, str(Path(__file__).parent))
    from crash_child import doc_vec

    v = start
    print("ready", flush=True)  # imports done: kills from here on count
    while True:
        ids = version_ids(v)
        docs = [doc_vec(i) for i in ids]
        pls = [{"v": v} for _ in ids]
        if v % 2:
            ix = SparseIndex(None, "float", merge_policy=MergePolicy(factor=0))
            ix.add(docs, ids=ids, payloads=pls)
        else:
            p = Path(scratch) / f"v{v}"
            ix = SparseIndex(None, "float", path=p, merge_policy=MergePolicy(factor=0))
            ix.add(docs[:7], ids=ids[:7], payloads=pls[:7])
            ix.commit()
            ix.add(docs[7:], ids=ids[7:], payloads=pls[7:])
            ix.commit()
        ix.save(dest)
        ix.close()
        print(v, flush=True)
        v += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
