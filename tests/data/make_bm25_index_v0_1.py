# Run from a checkout of commit 7413167 (sparsedex 0.1): PYTHONPATH=<that checkout>/python python make_bm25_index_v0_1.py tests/data/bm25-index-v0.1
"""Writes tests/data/bm25-index-v0.1: a BM25 index saved by sparsedex 0.1 (commit 7413167),
before Unicode normalisation, with the hits its own code gave for a few queries."""
import json, sys, unicodedata
from pathlib import Path
import sparsedex
assert not hasattr(sparsedex.encoders.analysis.Analyzer(), "normalization"), "run with sparsedex 0.1"
from sparsedex import SparseIndex
out = Path(sys.argv[1])
docs = [
    "Résumé writing tips for engineers",                                 # NFC
    unicodedata.normalize("NFD", "A résumé from Zürich"),                # NFD: analysed as re, sume, zu, rich
    "Zürich is a city in Switzerland",
    "Die Straße in der Stadt",
    "The quick brown fox jumps over the lazy dog",
    "STRASSE and strasse in capitals",
]
ix = SparseIndex("bm25", "float", path=out)
ix.add(docs, ids=[f"d{i}" for i in range(len(docs))], payloads=[{"n": i} for i in range(len(docs))])
ix.commit()
queries = ["résumé", unicodedata.normalize("NFD", "résumé"), "Zürich", unicodedata.normalize("NFD", "Zürich"),
           "straße", "STRASSE", "sume", "rich", "fox"]
expected = {q: [[h.id, h.score] for h in ix.search(q, k=10)] for q in queries}
ix.close()
(out.parent / (out.name + ".expected.json")).write_text(json.dumps({"queries": queries, "hits": expected}, ensure_ascii=True, indent=1))
print(json.dumps(expected, ensure_ascii=True)[:600])
