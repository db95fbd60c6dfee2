//! Conversions between numpy / Python values and the core's types.

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use sparsedex_core::index::{Id, IdBuf, IdsInput, Quantization, Reorder};
use sparsedex_core::search::{Algorithm, Bm25Stats, DocSet};
use sparsedex_core::vectors::CsrRef;

use crate::error::to_py;

/// Term ids and weights (or doc ids and scores) as numpy arrays.
pub type Vec1<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<f32>>);
/// Hits of a batch over one index: doc ids `[nq, k]` and scores `[nq, k]`.
pub type Hits2<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>);
/// Pairs of uint32 arrays.
pub type Pairs<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<u32>>);
/// CSR arrays.
pub type Csr1<'py> = (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<f32>>);
/// Segment hits of one query: (segment positions, internal docs, scores).
pub type SegHits1<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<f32>>);
/// Segment hits of a batch: (segment positions, internal docs, scores), each `[nq, k]`.
pub type SegHits2<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>);

/// The `reorder` argument: `"bp"`, `"signature"`, `"none"`, True (the default order) or
/// False (none).
#[derive(FromPyObject, Clone, Debug)]
pub enum ReorderArg {
    /// True: the default order ([`Reorder::default`]); False: none.
    Bool(bool),
    /// A mode's name.
    Name(String),
}

impl ReorderArg {
    /// The core's order (a ValueError for an unknown name).
    pub fn parse(&self) -> PyResult<Reorder> {
        match self {
            ReorderArg::Bool(b) => Ok(Reorder::from(*b)),
            ReorderArg::Name(s) => s.parse().map_err(to_py),
        }
    }
}

/// A numpy array as a slice (a non-contiguous array is a ValueError naming the argument).
pub fn slice<'a, T: numpy::Element>(a: &'a PyReadonlyArray1<'_, T>, name: &str) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|_| PyValueError::new_err(format!("{name} must be a contiguous 1-d array")))
}

/// CSR arrays as the core's view.
pub fn csr<'a>(
    indptr: &'a PyReadonlyArray1<'_, u64>,
    indices: &'a PyReadonlyArray1<'_, u32>,
    values: &'a PyReadonlyArray1<'_, f32>,
) -> PyResult<CsrRef<'a>> {
    Ok(CsrRef {
        indptr: slice(indptr, "indptr")?,
        indices: slice(indices, "indices")?,
        values: slice(values, "values")?,
    })
}

/// An allowed-document set from uint64 words.
pub fn doc_set(a: &Option<PyReadonlyArray1<'_, u64>>, n_docs: u32) -> PyResult<Option<DocSet>> {
    match a {
        None => Ok(None),
        Some(a) => DocSet::from_words(slice(a, "allowed")?.to_vec(), n_docs).map(Some).map_err(to_py),
    }
}

/// An algorithm name (or alias), with the recall target of `"approximate"` (default 0.97;
/// a target with any other algorithm is a ValueError).
pub fn algorithm(s: &str, target_recall: Option<f64>) -> PyResult<Algorithm> {
    let a: Algorithm = s.parse().map_err(to_py)?;
    match (a, target_recall) {
        (Algorithm::Approximate(_), Some(r)) => {
            Ok(Algorithm::Approximate(sparsedex_core::search::approx::RecallTarget::new(r).map_err(to_py)?))
        }
        (_, Some(_)) => Err(PyValueError::new_err(format!(
            "target_recall applies to algorithm='approximate' only, got algorithm='{s}'"
        ))),
        (a, None) => Ok(a),
    }
}

/// The scores of exact searches of u8 segments: "vectors" (the float32 dot products of the
/// stored vectors, the default) or "impacts" (the 8-bit scores).
pub fn scores(s: &str) -> PyResult<sparsedex_core::search::Scores> {
    use sparsedex_core::search::Scores;
    match s {
        "vectors" => Ok(Scores::Vectors),
        "impacts" => Ok(Scores::Impacts),
        _ => Err(PyValueError::new_err(format!("scores must be 'vectors' or 'impacts', got {s:?}"))),
    }
}

/// `quantization` ("u8" or "float"), with a u8 `scale` and BM25 parameters.
pub fn quantization(q: &str, scale: Option<f32>, bm25: Option<(f32, f32)>) -> PyResult<Quantization> {
    let u8 = match q {
        "u8" => true,
        "float" | "f32" => false,
        other => return Err(PyValueError::new_err(format!("quantization must be 'u8' or 'float', got '{other}'"))),
    };
    if scale.is_some() && (!u8 || bm25.is_some()) {
        return Err(PyValueError::new_err("scale only applies to quantization='u8' without BM25"));
    }
    Ok(match (bm25, u8) {
        (Some((k1, b)), quantized) => Quantization::Bm25(sparsedex_core::index::Bm25Params { k1, b, quantized }),
        (None, true) => Quantization::U8 { scale },
        (None, false) => Quantization::F32,
    })
}

/// Ids given as `ids_int` (int64 array) or `ids_str` (list of str), at most one.
pub fn ids_input<'a>(ids_int: Option<&'a [i64]>, ids_str: Option<&'a [String]>) -> PyResult<IdsInput<'a>> {
    match (ids_int, ids_str) {
        (Some(_), Some(_)) => Err(PyValueError::new_err("give ids_int or ids_str, not both")),
        (Some(i), None) => Ok(IdsInput::Int(i)),
        (None, Some(s)) => Ok(IdsInput::Str(s)),
        (None, None) => Ok(IdsInput::None),
    }
}

/// A document id from Python: an int or a str.
pub fn id_of(x: &Bound<'_, PyAny>) -> PyResult<IdBuf> {
    if x.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err("ids are ints or strings, not bools"));
    }
    if let Ok(s) = x.extract::<String>() {
        return Ok(IdBuf::Str(s));
    }
    match x.extract::<i64>() {
        Ok(i) => Ok(IdBuf::Int(i)),
        Err(_) => Err(PyTypeError::new_err(format!("ids are ints (64-bit) or strings, not {}", type_name(x)))),
    }
}

/// A document id as a Python object.
pub fn id_to_py<'py>(py: Python<'py>, id: Id<'_>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match id {
        Id::Int(i) => i.into_pyobject(py)?.into_any(),
        Id::Str(s) => s.into_pyobject(py)?.into_any(),
    })
}

/// The name of `x`'s type, for error messages.
fn type_name(x: &Bound<'_, PyAny>) -> String {
    x.get_type().name().map(|n| n.to_string()).unwrap_or_default()
}

/// Why a Python object is not an integer in `0..=max`.
enum IntFault {
    Bool,
    NotInt,
    Range(i128),
}

/// `x` as an integer in `0..=max` (anything with `__index__`: int, numpy integers), not a bool.
fn int_in(x: &Bound<'_, PyAny>, max: u64) -> Result<u64, IntFault> {
    if x.is_instance_of::<pyo3::types::PyBool>() {
        return Err(IntFault::Bool);
    }
    let v: i128 = x.call_method0("__index__").and_then(|v| v.extract()).map_err(|_| IntFault::NotInt)?;
    if v < 0 || v > max as i128 {
        return Err(IntFault::Range(v));
    }
    Ok(v as u64)
}

/// Integers in `0..=max` from a 1-d sequence (an integer array of any dtype, a list), for
/// arguments whose fast path is one exact array dtype; the error names the argument.
fn int_list(obj: &Bound<'_, PyAny>, name: &str, what: &str, max: u64) -> PyResult<Vec<u64>> {
    let bad = |why: String| {
        PyTypeError::new_err(format!("{name} must be {what}: a 1-d integer array or a list of ints ({why})"))
    };
    if obj.is_instance_of::<pyo3::types::PyString>() || obj.is_instance_of::<pyo3::types::PyBytes>() {
        return Err(bad(format!("got {}", type_name(obj))));
    }
    let items: Vec<Bound<'_, PyAny>> =
        obj.try_iter().map_err(|_| bad(format!("got {}", type_name(obj))))?.collect::<PyResult<_>>()?;
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            int_in(x, max).map_err(|f| match f {
                IntFault::Bool => bad(format!("{name}[{i}] is a bool")),
                IntFault::NotInt => bad(format!(
                    "{name}[{i}] = {} is not an integer",
                    x.repr().map(|r| r.to_string()).unwrap_or_default()
                )),
                IntFault::Range(v) => {
                    PyValueError::new_err(format!("{name}[{i}] = {v} is out of range: {name} must be {what}"))
                }
            })
        })
        .collect()
}

/// A count argument (`n_docs`, `total_len`): an integer in `0..=2**64-1`, not a bool; the
/// error names the argument.
fn count_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<u64> {
    int_in(obj, u64::MAX).map_err(|f| match f {
        IntFault::Bool => PyTypeError::new_err(format!("{name} must be an integer >= 0, not a bool")),
        IntFault::NotInt => PyTypeError::new_err(format!("{name} must be an integer >= 0, not {}", type_name(obj))),
        IntFault::Range(v) => PyValueError::new_err(format!("{name} = {v} is out of range: an integer in 0..2**64-1")),
    })
}

/// The `words` argument: strings (not one string), each valid Unicode; errors name the entry.
fn words_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let not_words =
        || PyTypeError::new_err(format!("words must be a list of strings, one per term, not {}", type_name(obj)));
    if obj.is_instance_of::<pyo3::types::PyString>() || obj.is_instance_of::<pyo3::types::PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "words must be a list of strings, one per term, not a {}",
            type_name(obj)
        )));
    }
    obj.try_iter()
        .map_err(|_| not_words())?
        .enumerate()
        .map(|(i, x)| {
            let x = x?;
            let s = x
                .cast::<pyo3::types::PyString>()
                .map_err(|_| PyTypeError::new_err(format!("words[{i}] must be a string, not {}", type_name(&x))))?;
            s.to_str().map(str::to_string).map_err(|_| {
                PyValueError::new_err(format!(
                    "words[{i}] is not valid Unicode (a lone surrogate): {}",
                    s.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            })
        })
        .collect()
}

/// BM25 statistics handed over from Python.
#[pyclass(frozen, name = "Bm25Stats", module = "sparsedex._core")]
pub struct PyBm25Stats {
    pub inner: Bm25Stats,
    /// The term texts, aligned with `inner.terms()`, where the statistics came from an index
    /// with a term dictionary: term ids are that dictionary's, and another index (its own
    /// dictionary) looks the words up instead.
    pub words: Option<Vec<String>>,
}

#[pymethods]
impl PyBm25Stats {
    /// Statistics over `n_docs` documents of total length `total_len`, with `df[i]` the
    /// document frequency of `terms[i]` (every term a query may hold), and optionally
    /// `words[i]` its text (terms in any order: `terms` reads back ascending, `df` and `words`
    /// with them). A df above `n_docs` or above `total_len` (a document holding a term has a
    /// length of at least 1), a `total_len` over 0 documents, a repeated term or word, or
    /// `words` of another length than `terms` is a ValueError.
    #[new]
    #[pyo3(signature = (n_docs, total_len, terms, df, words=None))]
    fn new(
        n_docs: &Bound<'_, PyAny>,
        total_len: &Bound<'_, PyAny>,
        terms: &Bound<'_, PyAny>,
        df: &Bound<'_, PyAny>,
        words: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let n_docs = count_arg(n_docs, "n_docs")?;
        let total_len = count_arg(total_len, "total_len")?;
        let words = words.filter(|w| !w.is_none()).map(words_arg).transpose()?;
        // a strided array (a numpy slice such as a[::2]) is read element by element
        let terms: Vec<u32> = match terms.extract::<PyReadonlyArray1<'_, u32>>() {
            Ok(a) => a.as_array().to_vec(),
            Err(_) => int_list(terms, "terms", "term ids in 0..2**32-1", u32::MAX as u64)?
                .into_iter()
                .map(|x| x as u32)
                .collect(),
        };
        let df: Vec<u64> = match df.extract::<PyReadonlyArray1<'_, u64>>() {
            Ok(a) => a.as_array().to_vec(),
            Err(_) => int_list(df, "df", "document frequencies (integers >= 0)", u64::MAX)?,
        };
        let (terms, df, words) = match words {
            Some(w) if w.len() != terms.len() => {
                return Err(PyValueError::new_err(format!(
                    "words has {} entries for {} terms: one word per term id",
                    w.len(),
                    terms.len()
                )));
            }
            // the core keeps the terms ascending: the words follow their terms (they stayed in
            // the order given, each naming another term, for terms given unsorted); terms and
            // df of different lengths are the core's error below
            Some(w) if !terms.is_sorted() && terms.len() == df.len() => {
                let mut rows: Vec<((u32, u64), String)> = terms.into_iter().zip(df).zip(w).collect();
                rows.sort_by_key(|r| r.0 .0);
                let (pairs, w): (Vec<(u32, u64)>, Vec<String>) = rows.into_iter().unzip();
                let (t, d) = pairs.into_iter().unzip();
                (t, d, Some(w))
            }
            w => (terms, df, w),
        };
        // statistics made by hand that contradict themselves gave finite but meaningless
        // scores (a total length of 0: an average document length of 0): a document a term is
        // in has a length of at least 1, and documents of no length add none
        if let Some((i, d)) = df.iter().enumerate().find(|(_, &d)| d > total_len) {
            return Err(PyValueError::new_err(format!(
                "Bm25Stats: term {} is in {d} documents, but total_len (the length of all documents together) \
                 is {total_len}: each document holding a term has a length of at least 1",
                terms[i]
            )));
        }
        if n_docs == 0 && total_len > 0 {
            return Err(PyValueError::new_err(format!("Bm25Stats: total_len {total_len} over n_docs 0 documents")));
        }
        let inner = Bm25Stats::new(n_docs, total_len, terms, df).map_err(to_py)?;
        if let Some(w) = &words {
            let mut seen = std::collections::HashSet::with_capacity(w.len());
            if let Some(dup) = w.iter().find(|x| !seen.insert(x.as_str())) {
                return Err(PyValueError::new_err(format!("word {dup:?} appears twice in words")));
            }
        }
        Ok(PyBm25Stats { inner, words })
    }

    /// The sum of statistics of disjoint collections (shards). Statistics that carry their
    /// words (those of `SparseIndex.collection_stats`) add up by word, whatever each shard's
    /// term ids: separately built BM25 indexes each grow their own dictionary, so one id
    /// names different words in each. A word some parts lack has df 0 there. When the parts'
    /// dictionaries agree on every id they share, the sum keeps their ids; otherwise its
    /// terms are positions in its (sorted) words, and an index looks the words up. Statistics
    /// without words (built by hand) must cover the same term ids (ValueError otherwise);
    /// mixing the two kinds is a ValueError. `parts` is any iterable of Bm25Stats (a list, a
    /// generator...); another element is a TypeError naming its position, and a document
    /// count, total length or df whose sum passes 2**64-1 a ValueError naming it.
    #[staticmethod]
    fn sum(parts: &Bound<'_, PyAny>) -> PyResult<Self> {
        let items = parts.try_iter().map_err(|_| {
            PyTypeError::new_err(format!(
                "Bm25Stats.sum takes an iterable of Bm25Stats (a list, a generator...), got {}",
                type_name(parts)
            ))
        })?;
        let parts: Vec<Bound<'_, PyBm25Stats>> = items
            .enumerate()
            .map(|(i, x)| {
                let x = x?;
                x.cast_into::<PyBm25Stats>().map_err(|e| {
                    PyTypeError::new_err(format!(
                        "Bm25Stats.sum: part {i} is a {}, not a Bm25Stats (from collection_stats() or Bm25Stats(...))",
                        type_name(&e.into_inner())
                    ))
                })
            })
            .collect::<PyResult<_>>()?;
        let with_words = parts.iter().filter(|p| p.get().words.is_some()).count();
        if with_words == 0 {
            let parts: Vec<Bm25Stats> = parts.iter().map(|p| p.get().inner.clone()).collect();
            return Ok(PyBm25Stats { inner: Bm25Stats::sum(&parts).map_err(to_py)?, words: None });
        }
        if with_words != parts.len() {
            let i = parts.iter().position(|p| p.get().words.is_none()).unwrap_or(0);
            return Err(PyValueError::new_err(format!(
                "Bm25Stats.sum: part {i} has no words (built by hand from term ids) while others \
                 carry theirs (from collection_stats()): term ids of different indexes cannot be \
                 matched to words; build every part with collection_stats()"
            )));
        }
        use std::collections::{BTreeMap, HashMap};
        let (mut n, mut total) = (0u64, 0u64);
        // word -> (summed df, the id the parts give it, or None where they disagree)
        let mut by_word: BTreeMap<&str, (u64, Option<u32>)> = BTreeMap::new();
        let mut word_of: HashMap<u32, &str> = HashMap::new();
        let mut ids_agree = true;
        let overflow =
            |what: String| PyValueError::new_err(format!("Bm25Stats.sum: the summed {what} overflows 64 bits"));
        for p in &parts {
            let p = p.get();
            n = n.checked_add(p.inner.n_docs()).ok_or_else(|| overflow("document count".into()))?;
            total = total.checked_add(p.inner.total_len()).ok_or_else(|| overflow("total length".into()))?;
            let words = p.words.as_ref().expect("checked: every part has words");
            for ((w, &t), &d) in words.iter().zip(p.inner.terms()).zip(p.inner.df()) {
                let e = by_word.entry(w.as_str()).or_insert((0, Some(t)));
                e.0 = e.0.checked_add(d).ok_or_else(|| overflow(format!("document frequency of {w:?}")))?;
                if e.1 != Some(t) {
                    ids_agree = false;
                }
                if *word_of.entry(t).or_insert(w.as_str()) != w.as_str() {
                    ids_agree = false;
                }
            }
        }
        let mut rows: Vec<(u32, &str, u64)> = if ids_agree {
            by_word.iter().map(|(w, &(d, t))| (t.expect("ids agree"), *w, d)).collect()
        } else {
            by_word.iter().enumerate().map(|(i, (w, &(d, _)))| (i as u32, *w, d)).collect()
        };
        rows.sort_unstable_by_key(|r| r.0);
        let inner = Bm25Stats::new(n, total, rows.iter().map(|r| r.0).collect(), rows.iter().map(|r| r.2).collect())
            .map_err(to_py)?;
        Ok(PyBm25Stats { inner, words: Some(rows.iter().map(|r| r.1.to_string()).collect()) })
    }

    /// Pickling (statistics sent to other processes, e.g. shards' workers): the constructor's
    /// arguments.
    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
    ) -> PyResult<(
        Bound<'py, PyAny>,
        (u64, u64, Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<u64>>, Option<Vec<String>>),
    )> {
        let s = slf.get();
        Ok((
            slf.get_type().into_any(),
            (
                s.inner.n_docs(),
                s.inner.total_len(),
                s.inner.terms().to_vec().into_pyarray(py),
                s.inner.df().to_vec().into_pyarray(py),
                s.words.clone(),
            ),
        ))
    }

    /// The term texts aligned with `terms` (a list of str), or None for statistics built
    /// from term ids alone.
    #[getter]
    fn words(&self) -> Option<Vec<String>> {
        self.words.clone()
    }

    /// Number of documents (N).
    #[getter]
    fn n_docs(&self) -> u64 {
        self.inner.n_docs()
    }

    /// Sum of the document lengths.
    #[getter]
    fn total_len(&self) -> u64 {
        self.inner.total_len()
    }

    /// The terms, ascending (uint32).
    #[getter]
    fn terms<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.inner.terms().to_vec().into_pyarray(py)
    }

    /// Document frequencies aligned with `terms` (uint64).
    #[getter]
    fn df<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        self.inner.df().to_vec().into_pyarray(py)
    }

    /// Equal statistics: the same document count, total length, terms, dfs and words (None
    /// differs from any list). Another type compares NotImplemented.
    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner && self.words == other.words
    }

    /// Consistent with `__eq__` (a Bm25Stats is immutable: usable as a dict key or in a set).
    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.inner.n_docs(), self.inner.total_len(), self.inner.terms(), self.inner.df(), &self.words).hash(&mut h);
        h.finish()
    }

    fn __repr__(&self) -> String {
        format!(
            "Bm25Stats(n_docs={}, total_len={}, terms={}{})",
            self.inner.n_docs(),
            self.inner.total_len(),
            self.inner.terms().len(),
            if self.words.is_some() { ", with words" } else { "" }
        )
    }
}

/// Hits of a batch as `[nq, k]` matrices, `-1` / NaN where a query has fewer hits; `f` gives
/// a hit's (segment or -1, doc, score).
pub fn matrices<H>(res: &[Vec<H>], k: usize, f: impl Fn(&H) -> (i64, i64, f32)) -> (Vec<i64>, Vec<i64>, Vec<f32>) {
    let nq = res.len();
    let (mut sg, mut docs, mut scores) = (vec![-1i64; nq * k], vec![-1i64; nq * k], vec![f32::NAN; nq * k]);
    for (i, hits) in res.iter().enumerate() {
        for (j, h) in hits.iter().take(k).enumerate() {
            let (s, d, v) = f(h);
            (sg[i * k + j], docs[i * k + j], scores[i * k + j]) = (s, d, v);
        }
    }
    (sg, docs, scores)
}
