"""Build the 'wordnet' real-text retrieval collection from the WordNet 3.0 database (Debian's wordnet-base).

Documents: one per synset (data.noun/verb/adj/adv), id = {pos}{offset} with pos n/v/a/r by file (adjective
satellites are 'a' too); text = lemma names (underscores as spaces, joined ", ") + ": " + the definition part
of the gloss (its quoted usage examples removed); exact duplicate texts dropped (first kept).
Queries: 2,000 usage examples (the double-quoted sentences inside glosses). Candidates: examples of at least 4 words
whose text is unique (case-insensitive, over the examples of kept synsets); 2,000 synsets holding a candidate are sampled (seed 7) and
one candidate drawn from each, so at most one query per synset.
Qrels: grade 2 = the synset the example came from. Vectors: splade-tiny (bundled model of the product).
Usage: python build_wordnet.py DEB OUT_DIR   (DEB = wordnet-base_1%3a3.0-37_all.deb)
"""
import collections, hashlib, json, os, random, re, shutil, subprocess, sys, tempfile, time
import numpy as np, scipy.sparse as sp

DEB, OUT = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp()
subprocess.run(["dpkg-deb", "-x", DEB, tmp], check=True)
WN = f"{tmp}/usr/share/wordnet"
os.makedirs(OUT, exist_ok=True)
shutil.copyfile(f"{tmp}/usr/share/doc/wordnet-base/copyright", f"{OUT}/LICENSE-wordnet")

QUOTE = re.compile(r'"[^"]*"')
def parse_gloss(g):
    """Split a gloss into (definition, examples). A quoted string is a usage example unless it sits inside the
    definition's running text (e.g. 'in the phrase "make strides")'): not preceded by ; : , or the gloss start
    and not followed by ; , - or the gloss end. Examples are removed with any attribution after them
    ('- Shakespeare') up to the next ';'."""
    examples, spans = [], []
    for m in QUOTE.finditer(g):
        before, after = g[:m.start()].rstrip(), g[m.end():].lstrip()
        if before and before[-1] not in ";:,\"" and after and after[0] not in ";,-\"" and not after.startswith("or "):
            continue  # inline quotation that is part of the definition
        examples.append(m.group()[1:-1].strip())
        end = m.end()
        while end < len(g) and g[end] not in ';"': end += 1  # attribution / separator text up to next ';'
        spans.append((m.start(), end))
    d, last = [], 0
    for s, e in spans: d.append(g[last:s]); last = e
    d.append(g[last:])
    segs = [s.strip() for s in "".join(d).split(";")]
    definition = "; ".join(s for s in segs if s and not s.startswith('"') and s.count('"') % 2 == 0)
    if not definition:  # e.g. a gloss that is only a definition with a stray quote
        definition = g.replace('"', "").strip(" ;")
    return definition, examples

docs, examples, seen = {}, {}, set()
order = []
for pos, name in [("n", "noun"), ("v", "verb"), ("a", "adj"), ("r", "adv")]:
    with open(f"{WN}/data.{name}", encoding="utf-8") as f:
        for line in f:
            if line.startswith("  "): continue  # licence header
            fields, gloss = line.rstrip("\n").split(" | ", 1)
            fields = fields.split()
            offset, n = fields[0], int(fields[3], 16)
            lemmas = [re.sub(r"\(.*\)$", "", w).replace("_", " ") for w in fields[4:4 + 2 * n:2]]  # drop adj markers (a)/(p)/(ip)
            definition, exs = parse_gloss(gloss.strip())
            text = ", ".join(lemmas) + ": " + definition
            sid = f"{pos}{offset}"
            if text in seen: continue
            seen.add(text); docs[sid] = text; examples[sid] = exs; order.append(sid)
ids = order
print("docs", len(ids), flush=True)
ex_count = collections.Counter(e.lower() for s in ids for e in examples[s])
cands = {s: [e for e in examples[s] if len(e.split()) >= 4 and ex_count[e.lower()] == 1] for s in ids}
cand_ids = [s for s in ids if cands[s]]
print("synsets with a candidate example", len(cand_ids), "candidate examples", sum(len(v) for v in cands.values()), flush=True)
rng = random.Random(7)
pos_of = {s: i for i, s in enumerate(ids)}
qs = sorted(rng.sample(cand_ids, 2000), key=pos_of.get)
qtext = [rng.choice(cands[s]) for s in qs]
with open(f"{OUT}/corpus.jsonl", "w") as f:
    for s in ids: f.write(json.dumps({"id": s, "text": docs[s]}) + "\n")
with open(f"{OUT}/queries.jsonl", "w") as f:
    for i, t in enumerate(qtext): f.write(json.dumps({"id": f"q{i:04d}", "text": t}) + "\n")
with open(f"{OUT}/qrels.tsv", "w") as f:
    for i, s in enumerate(qs): f.write(f"q{i:04d}\t{s}\t2\n")
shutil.rmtree(tmp)

from sparsedex import SpladeEncoder
enc = SpladeEncoder()
def csr(texts, what, chunk=5000):
    vs, t0 = [], time.time()
    for i in range(0, len(texts), chunk):
        vs.extend(enc.embed(texts[i:i + chunk]))
        print(f"{what}: {len(vs)}/{len(texts)} encoded, {time.time() - t0:.0f} s", flush=True)
    indptr = np.cumsum([0] + [len(v.indices) for v in vs])
    return sp.csr_matrix((np.concatenate([v.values for v in vs]).astype(np.float32),
                          np.concatenate([v.indices for v in vs]).astype(np.int32), indptr), shape=(len(vs), 30522))
Q = csr(qtext, "queries"); sp.save_npz(f"{OUT}/queries.npz", Q)
D = csr([docs[s] for s in ids], "docs"); sp.save_npz(f"{OUT}/docs.npz", D)
st = dict(docs=len(ids), queries=len(qs), doc_nnz_mean=float(np.diff(D.indptr).mean()), query_nnz_mean=float(np.diff(Q.indptr).mean()),
          postings=int(D.nnz))
json.dump(st, open(f"{OUT}/stats.json", "w"), indent=1); print(st)
with open(f"{OUT}/SHA256SUMS", "w") as f:
    for n in ["corpus.jsonl", "queries.jsonl", "qrels.tsv", "docs.npz", "queries.npz"]:
        f.write(f"{hashlib.sha256(open(f'{OUT}/{n}', 'rb').read()).hexdigest()}  {n}\n")
