"""Adapters: one class per system, all with the same shape.

    build(corpus)            -> None        (timed by the harness: everything up to "ready to query")
    prepare(q_indices, q_values) -> object  (untimed: convert one query to the peer's native input)
    search(prepared)         -> (doc numbers, scores), best first (timed, one call); doc numbers
                                are internal row numbers, scores in the system's own units
    bytes()                  -> int         (index size on disk, or in memory where there is no file)
    info                     -> dict        (settings and measurements worth recording)

Query conversion is done outside the timed region for every system alike, so the timing is
the engine's call (plus its own binding overhead), not our dict/array building. Every adapter
runs single-threaded. Index files go under a scratch directory the harness provides.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp


# our own handle on the terminal's stderr, so progress shows while fd 2 is redirected
_LOG = os.fdopen(os.dup(2), "w", buffering=1)


def log(msg: str) -> None:
    print(f"[harness] {msg}", file=_LOG, flush=True)


def dir_bytes(path: Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def csr_matrix(indptr, indices, values, n_cols):
    return sp.csr_matrix((values, indices.astype(np.int64), indptr.astype(np.int64)),
                         shape=(len(indptr) - 1, n_cols))


class _redirect_fd:
    """Point a file descriptor (1 or 2) somewhere else for a while: native code's progress
    output goes to a log file, or from stdout (where the table is printed) to stderr."""

    def __init__(self, fd, path=None, to_fd=None):
        self.fd, self.path, self.to_fd = fd, path, to_fd

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = os.dup(self.fd)
        self.f = open(self.path, "w") if self.path else None
        os.dup2(self.f.fileno() if self.f else self.to_fd, self.fd)

    def __exit__(self, *exc):
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.saved, self.fd)
        os.close(self.saved)
        if self.f:
            self.f.close()
        return False


def _stderr_to(path):
    return _redirect_fd(2, path=path)


def _stdout_to_stderr():
    return _redirect_fd(1, to_fd=2)


def _progress(i: int, n: int, what: str, every: int) -> None:
    if i and i % every == 0:
        log(f"  {what}: {i:,}/{n:,}")


class Adapter:
    name = "?"
    kind = "exact"
    version = ""

    def __init__(self):
        self.info: dict = {}

    def prepare(self, q_indices, q_values):
        return (q_indices, q_values)

    def close(self):
        pass


# ----------------------------------------------------------------------------------- scipy
class ScipyExhaustive(Adapter):
    """Exhaustive float32 dot product, term at a time: the query's columns of the CSC doc
    matrix (its posting lists) times the query weights, then an argpartition top-k."""

    name = "scipy"
    kind = "exact"

    def __init__(self, k):
        super().__init__()
        import scipy
        self.version = scipy.__version__
        self.k = k

    def build(self, c):
        self.csc = csr_matrix(c.doc_indptr, c.doc_indices, c.doc_values, c.vocab).tocsc()
        self.csc.sort_indices()

    def search(self, q):
        idx, val = q
        scores = self.csc[:, idx] @ val
        k = min(self.k, scores.shape[0])
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((top, -scores[top]))]
        return top, scores[top]

    def bytes(self):
        m = self.csc
        return m.data.nbytes + m.indices.nbytes + m.indptr.nbytes

    def postings_bytes(self):
        return self.bytes()  # the CSC matrix is its posting lists

    def prepare(self, q_indices, q_values):
        return (q_indices.astype(np.int64), q_values.astype(np.float32))


# ------------------------------------------------------------------------------------- BMP
class Bmp(Adapter):
    """bmp (Block-Max Pruning, Mallia/Suel/Tonellotto SIGIR 2024), exact at alpha=beta=1.

    Traps handled here (see PEERS.md):
    * document impacts are u8 and wrap silently above 255: impact = round(w * scale), with
      scale <= 255 / max w; postings that round to 0 are dropped;
    * query weights become ceil(q * 32 / max q) inside bmp;
    * scores accumulate in 16 bits and wrap at 65,536: the harness picks the largest doc
      scale at which no query's top score (computed exactly on bmp's integer scores) passes
      65,535, and passes it in as ``scale``;
    * no document reordering (the paper's speed assumes BP-reordered doc ids).
    """

    name = "bmp"
    kind = "exact"
    QUERY_MAX = 32

    def __init__(self, k, workdir, scale, bsize=32):
        super().__init__()
        import importlib.metadata as md
        self.version = md.version("bmp")
        self.k = k
        self.path = str(Path(workdir) / "bmp.index")
        self.scale = float(scale)
        self.bsize = bsize
        self.info.update(doc_scale=self.scale, bsize=bsize, alpha=1.0, beta=1.0,
                         query_quantization="ceil(q*32/max q) (inside bmp)")

    @staticmethod
    def quantize_docs(values, scale):
        return np.rint(values.astype(np.float64) * scale).astype(np.int64)

    @classmethod
    def quantize_query(cls, q_values):
        q = q_values.astype(np.float32)
        return np.ceil(q * np.float32(cls.QUERY_MAX) / q.max()).astype(np.int64)

    def build(self, c):
        import bmp
        t0 = time.perf_counter()
        imp = self.quantize_docs(c.doc_values, self.scale)
        if imp.max() > 255:
            raise ValueError(f"bmp doc scale {self.scale} gives impact {imp.max()} > 255")
        terms = np.array([str(t) for t in range(c.vocab)], dtype=object)
        ix = bmp.Indexer(self.path, bsize=self.bsize, compress_range=False)
        ptr = c.doc_indptr.astype(np.int64)
        n = c.n_docs
        for d in range(n):
            s, e = ptr[d], ptr[d + 1]
            im = imp[s:e]
            keep = im > 0
            ix.add_document(str(d), dict(zip(terms[c.doc_indices[s:e][keep]], im[keep].tolist())))
            _progress(d, n, "bmp add_document", 100_000)
        t1 = time.perf_counter()
        ix.finish()
        t2 = time.perf_counter()
        self.searcher = bmp.Searcher(self.path)
        self.info.update(add_documents_s=t1 - t0, finish_s=t2 - t1, load_s=time.perf_counter() - t2)
        self._terms = terms

    def prepare(self, q_indices, q_values):
        return dict(zip(self._terms[q_indices], q_values.astype(np.float64).tolist()))

    def search(self, q):
        docnos, scores = self.searcher.search(q, k=self.k, alpha=1.0, beta=1.0)
        return [int(d) for d in docnos], scores

    def bytes(self):
        return dir_bytes(Path(self.path))


# ------------------------------------------------------------------------------------ PISA
class Pisa(Adapter):
    """PISA through pyterrier-pisa, ``quantized`` scorer (dot product of integer impacts).

    * doc weights become int(w * doc_scale) (truncated), postings that truncate to 0 are
      dropped (doc_scale = ``toks_indexer(scale=)``, default 100);
    * query weights are multiplied by query_scale (100) and the C++ wrapper sends
      floor(weight) *copies* of each term, which PISA folds back into a term frequency:
      query weight = floor(q * 100); a larger scale means more copies and more overhead;
    * we call the native ``_pisathon.retrieve`` with one query at a time and preallocated
      result buffers, skipping the pandas DataFrame round trip of ``PisaRetrieve.transform``;
    * the compressed index (block_simdbp) and block-max data (fixed 64-posting blocks) are
      built on first use by ``prepare_index``; both count as build time.
    """

    name = "pisa"
    kind = "exact"

    def __init__(self, k, workdir, algorithms=("maxscore", "block_max_wand"),
                 doc_scale=100.0, query_scale=100.0):
        super().__init__()
        import importlib.metadata as md
        self.version = md.version("pyterrier-pisa")
        self.k = k
        self.path = Path(workdir) / "pisa.index"
        self.algorithms = list(algorithms)
        self.algorithm = self.algorithms[0]
        self.doc_scale = float(doc_scale)
        self.query_scale = float(query_scale)
        self.info.update(doc_scale=self.doc_scale, query_scale=self.query_scale,
                         encoding="block_simdbp", scorer="quantized")

    @staticmethod
    def quantize_docs(values, scale):
        return np.trunc(values.astype(np.float64) * scale).astype(np.int64)

    def quantize_query(self, q_values):
        return np.floor(q_values.astype(np.float64) * self.query_scale).astype(np.int64)

    def build(self, c):
        from pyterrier_pisa import PisaIndex
        if self.path.exists():
            shutil.rmtree(self.path)
        logf = Path(str(self.path) + ".build.log")
        log(f"  PISA's own build output goes to {logf}")
        with _stderr_to(logf), _redirect_fd(1, to_fd=2):  # PISA's C++ logging and progress bars
            self._build(c, PisaIndex)

    def _build(self, c, PisaIndex):
        t0 = time.perf_counter()
        index = PisaIndex(str(self.path), stemmer="none", stops="none", threads=1)
        terms = np.array([str(t) for t in range(c.vocab)], dtype=object)
        ptr = c.doc_indptr.astype(np.int64)
        vals = c.doc_values.astype(np.float64)  # toks_indexer does int(v * scale) in float64

        def docs():
            for d in range(c.n_docs):
                s, e = ptr[d], ptr[d + 1]
                _progress(d, c.n_docs, "pisa docs", 100_000)
                yield {"docno": str(d), "toks": dict(zip(terms[c.doc_indices[s:e]], vals[s:e].tolist()))}

        index.toks_indexer(scale=self.doc_scale).index(docs())
        t1 = time.perf_counter()
        self.retriever = index.quantized(num_results=self.k, query_algorithm=self.algorithm, threads=1)
        self.ctxt = self.retriever._ctxt  # compressed index + block-max data are built here
        t2 = time.perf_counter()
        self.info.update(invert_s=t1 - t0, compress_s=t2 - t1)
        self._terms = terms
        from pyterrier_pisa import _pisathon
        self._retrieve = _pisathon.retrieve
        self._bufs = (np.empty(self.k, dtype=np.int32), np.empty(self.k, dtype=object),
                      np.empty(self.k, dtype=np.int32), np.empty(self.k, dtype=np.float32))

    def set_algorithm(self, algorithm):
        self.algorithm = algorithm

    def prepare(self, q_indices, q_values):
        # exactly what PisaRetrieve.transform builds: {str term: float(v * toks_scale)}
        return [(0, {t: float(v) * self.query_scale
                     for t, v in zip(self._terms[q_indices], q_values.astype(np.float64).tolist())})]

    def search(self, q):
        qidx, docnos, ranks, scores = self._bufs
        n = self._retrieve(self.ctxt, self.algorithm, q, k=self.k, threads=1, query_weighted=1,
                           pretokenised=True, result_qidxs=qidx, result_docnos=docnos,
                           result_ranks=ranks, result_scores=scores)
        return [int(d) for d in docnos[:n]], scores[:n].copy()

    def bytes(self):
        # what a query needs: compressed postings, block-max (wand) data, lexicons
        files = [p for p in self.path.iterdir()
                 if p.name.startswith("quantized.") or p.name.endswith("lex")]
        self.info["index_files"] = sorted(p.name for p in files)
        self.info["dir_bytes_incl_uncompressed_inverted"] = dir_bytes(self.path)
        return sum(p.stat().st_size for p in files)

    def postings_bytes(self):
        return self.bytes()  # PISA's index holds postings, block maxima and lexicons only


# --------------------------------------------------------------------------------- Seismic
class Seismic(Adapter):
    """Seismic (Bruch et al., SIGIR 2024) via pyseismic-lsr: approximate, values stored f16.

    Build: n_postings=3500, centroid_fraction=0.1, summary_energy=0.4 (PEERS.md), one thread.
    Search knobs: query_cut (query terms kept, largest first), heap_factor. Query term ids
    are passed as numpy *string* arrays of dtype get_seismic_string()."""

    name = "seismic"
    kind = "approx"

    def __init__(self, k, workdir, configs=((10, 0.9),), n_postings=3500,
                 centroid_fraction=0.1, summary_energy=0.4, build_threads=1):
        super().__init__()
        import importlib.metadata as md
        self.version = md.version("pyseismic-lsr")
        self.k = k
        self.path = str(Path(workdir) / "seismic")
        self.configs = list(configs)
        self.query_cut, self.heap_factor = self.configs[0]
        self.build_params = dict(n_postings=n_postings, centroid_fraction=centroid_fraction,
                                 summary_energy=summary_energy)
        self.build_threads = build_threads
        self.info.update(self.build_params, build_threads=build_threads)

    def build(self, c):
        from seismic import SeismicDataset, SeismicIndex, get_seismic_string
        self._dtype = get_seismic_string()
        ds = SeismicDataset()
        ds.add_documents_by_id([str(i) for i in range(c.n_docs)], c.doc_indices.astype(np.int64),
                               c.doc_values.astype(np.float32), c.doc_indptr.astype(np.int64))
        with _stdout_to_stderr():  # Seismic prints its progress on stdout
            self.index = SeismicIndex.build_from_dataset(ds, num_threads=self.build_threads,
                                                          **self.build_params)

    def set_config(self, query_cut, heap_factor):
        self.query_cut, self.heap_factor = query_cut, heap_factor

    def prepare(self, q_indices, q_values):
        return (np.array([str(t) for t in q_indices], dtype=self._dtype),
                np.ascontiguousarray(q_values, dtype=np.float32))

    def search(self, q):
        comps, vals = q
        res = self.index.search("q", comps, vals, k=self.k, query_cut=self.query_cut,
                                heap_factor=self.heap_factor)
        return [int(r[2]) for r in res], [r[1] for r in res]

    def bytes(self):
        with _stdout_to_stderr():
            self.index.save(self.path)
        return dir_bytes(Path(self.path + ".index.seismic"))


class Kannolo(Adapter):
    """kannolo (same authors as Seismic): sparse HNSW under dot product
    (`SparsePlainHNSW`, approximate) — knob ef_search; build m, ef_construction.

    Term ids go in as int32 components, values as float32; ids come back as row numbers and
    the scores as kannolo's distances (dot products)."""

    name = "kannolo"
    kind = "approx"

    def __init__(self, k, workdir, efs=(50, 100, 200), m=32, ef_construction=200):
        super().__init__()
        import importlib.metadata as md
        self.version = md.version("kannolo")
        self.k = k
        self.efs = list(efs)
        self.ef_search = self.efs[0]
        self.m, self.ef_construction = m, ef_construction
        self.path = str(Path(workdir) / "kannolo.hnsw")
        self.info.update(m=m, ef_construction=ef_construction, index="SparsePlainHNSW")

    def build(self, c):
        import kannolo
        self.index = kannolo.SparsePlainHNSW.build_from_arrays(
            np.ascontiguousarray(c.doc_indices, dtype=np.int32),
            np.ascontiguousarray(c.doc_values, dtype=np.float32),
            np.ascontiguousarray(c.doc_indptr, dtype=np.int64), m=self.m,
            ef_construction=self.ef_construction)

    def set_ef(self, ef):
        self.ef_search = ef

    def prepare(self, q_indices, q_values):
        return (np.ascontiguousarray(q_indices, dtype=np.int32),
                np.ascontiguousarray(q_values, dtype=np.float32))

    def search(self, q):
        comps, vals = q
        dist, ids = self.index.search(comps, vals, self.k, ef_search=self.ef_search)
        return [int(i) for i in ids], [float(d) for d in dist]

    def bytes(self):
        try:
            return int(self.index.space_usage_bytes())
        except Exception:
            self.index.save(self.path)
            return dir_bytes(Path(self.path))


# ------------------------------------------------------------------------------- sparsedex
def sparsedex_available():
    try:
        from sparsedex._segment import SegmentView  # noqa: F401
        return True, ""
    except Exception as exc:  # ImportError, or a half-built extension
        return False, f"{type(exc).__name__}: {exc}"


class Sparsedex(Adapter):
    """sparsedex (the engine's one-segment view, `sparsedex._segment.SegmentView`); one system row per algorithm (set_algorithm)."""

    kind = "exact"

    def __init__(self, k, workdir, quantization="u8", calibrate=True, tag=""):
        """calibrate: calibrate the approximate mode on the corpus's calibration queries when
        it has them (otherwise on first use, on pseudo-queries)."""
        super().__init__()
        import sparsedex
        from sparsedex._segment import SegmentView
        self.SegmentView = SegmentView
        self.version = getattr(sparsedex, "__version__", "dev")
        self.k = k
        self.quantization = quantization
        self.path = Path(workdir) / f"sparsedex-{quantization}{tag}"
        self.calibrate = calibrate
        self.algorithm = "auto"
        self.info.update(quantization=quantization)

    @property
    def algorithms(self):
        return list(self.SegmentView.algorithms)

    def build(self, c):
        # store_vectors=True: superblock pruning (sp), block-max TAAT (bmt) and the approximate
        # mode score surviving blocks from the stored vectors (their bytes count in the size).
        self.ix = self.SegmentView.build(
            (c.doc_indptr, c.doc_indices, c.doc_values), quantization=self.quantization, store_vectors=True)
        cal = getattr(c, "calibration", None) if self.calibrate else None
        if cal is not None:  # approximate mode calibrated on other queries than the timed ones
            self.ix.calibrate(cal)
            self.info["calibration_queries"] = len(cal[0]) - 1

    def set_algorithm(self, algorithm):
        """An algorithm name, "approximate@0.97" (approximate at that recall target), or
        "NAME:impacts" (exact, the raw 8-bit scores of a u8 index: no float rerank)."""
        algorithm, _, scores = algorithm.partition(":")
        name, _, target = algorithm.partition("@")
        self.algorithm = name
        self.target_recall = float(target) if target else None
        self.scores = scores or "vectors"

    def prepare(self, q_indices, q_values):
        return (np.ascontiguousarray(q_indices, dtype=np.uint32),
                np.ascontiguousarray(q_values, dtype=np.float32))

    def search(self, q):
        return self.ix.search(q[0], q[1], k=self.k, algorithm=self.algorithm,
                              target_recall=getattr(self, "target_recall", None),
                              scores=getattr(self, "scores", "vectors"))

    def search_batch(self, c, algorithm="auto", threads=None):
        return self.ix.search_batch((c.q_indptr, c.q_indices, c.q_values), k=self.k,
                                    algorithm=algorithm, threads=threads)

    def bytes(self):
        try:
            st = self.ix.stats()
            self.info["stats"] = {k: (v if isinstance(v, (int, float, str)) else str(v))
                                  for k, v in dict(st).items()}
        except Exception as exc:
            self.info["stats_error"] = repr(exc)
            st = {}
        try:
            if self.path.exists():
                shutil.rmtree(self.path)
            self.ix.save(str(self.path))
            self.info["saved_dir_bytes"] = dir_bytes(self.path)
        except Exception as exc:
            self.info["save_error"] = repr(exc)
        return int(st.get("bytes", self.info.get("saved_dir_bytes", 0)))

    def postings_bytes(self):
        """Doc ids, impacts, block-max and term metadata (`stats()['postings_bytes']`), without
        the stored vectors (`vectors_bytes`) and ids."""
        st = self.info.get("stats") or dict(self.ix.stats())
        return int(st["postings_bytes"])
