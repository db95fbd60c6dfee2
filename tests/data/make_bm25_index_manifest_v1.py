# Run with sparsedex at commit 525ae16 (the BM25 term dictionary kept in the manifest settings):
#   PYTHONPATH=<that checkout>/python python make_bm25_index_manifest_v1.py tests/data/bm25-index-manifest-v1
"""Writes tests/data/bm25-index-manifest-v1: a BM25 index of two commits whose term dictionary
is in its manifest settings (as sparsedex wrote it before the vocabulary file), with its own
hits for a few queries, its documents and its terms."""
import json, sys
from pathlib import Path
from sparsedex import SparseIndex
out = Path(sys.argv[1])
docs = [
    "Résumé writing tips for engineers",
    "Zürich is a city in Switzerland",
    "The quick brown fox jumps over the lazy dog",
    "A lazy afternoon in the city",
    "Engineers write code and tips",
    "Brown bears and quick foxes",
]
ids = [f"d{i}" for i in range(len(docs))]
ix = SparseIndex("bm25", "float", path=out)
ix.add(docs[:3], ids=ids[:3])
ix.commit()
ix.add(docs[3:], ids=ids[3:])
ix.commit()
settings = json.loads(ix._store.snapshot.core.settings()["settings_json"])
assert "vocabulary" in settings["encoder"], "run with sparsedex before the vocabulary file"
queries = ["résumé", "city", "lazy fox", "quick brown", "tips engineers", "zebra"]
hits = {q: [[h.id, h.score] for h in ix.search(q, k=10)] for q in queries}
terms = ix.encoder.vocabulary.terms
ix.close()
(out / "LOCK").unlink(missing_ok=True)
(out.parent / (out.name + ".expected.json")).write_text(
    json.dumps({"docs": docs, "ids": ids, "terms": terms, "hits": hits}, ensure_ascii=True, indent=1))
print(json.dumps(hits, ensure_ascii=True)[:600])
