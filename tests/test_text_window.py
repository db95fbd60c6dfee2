"""SPLADE encoding cost bounded by the model window (issue 9, item 2): TextWindow tokenises at
most a window of each text and gives exactly the tokens of the whole text, for texts of every
size, both truncation sides, and tokenizers of each family (WordPiece, byte-level BPE,
SentencePiece Unigram)."""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsedex.encoders.splade import SpladeEncoder, TextWindow

tokenizers = pytest.importorskip("tokenizers")
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402

MODEL = Path(__file__).resolve().parents[1] / "python" / "sparsedex" / "models" / "splade-tiny"

FRAGMENTS = [
    "the", "quick", "brown", "fox", "aeroelastic", "boundary-layer", "x_1", "42", "3.14",
    " ", "  ", "   \t ", "\n", "\n\n", ",", ".", "!?", "'s", "--", "(", ")",
    "naïve", unicodedata.normalize("NFD", "résumé"), "Zürich", "東京", "中文字符", "नमस्ते", "n\u0308",
    "🎸", "\u200b", "\x00", "ﬁ", "Ｚ", "[SEP]", "[MASK]", "[CLS]", "<s>", "</s>", "[UNK]",
    "a" * 101,  # a word over BERT's 100-character limit: one [UNK]
    "b" * 30,
    "\u0301\u0301\u0301",  # stray combining marks
]
CORPUS = ["the quick brown fox jumps over the lazy dog, naïve café 東京 Zürich résumé 42 3.14"] * 40


def bert(max_length: int, direction: str = "right") -> Tokenizer:
    tok = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length, direction=direction)
    return tok


def byte_bpe(max_length: int, direction: str = "right") -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        CORPUS, trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>"],
                                    initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    )
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 1)])
    tok.enable_truncation(max_length, direction=direction)
    return tok


def unigram(max_length: int, direction: str = "right") -> Tokenizer:
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(
        CORPUS, trainers.UnigramTrainer(vocab_size=120, special_tokens=["<cls>", "<sep>", "<unk>"], unk_token="<unk>")
    )
    tok.post_processor = processors.TemplateProcessing(single="<cls> $A <sep>", special_tokens=[("<cls>", 0), ("<sep>", 1)])
    tok.enable_truncation(max_length, direction=direction)
    return tok


FAMILIES = {"wordpiece": bert, "bytelevel-bpe": byte_bpe, "unigram": unigram}
_CACHE: dict = {}


def tokenizer(family: str, max_length: int, direction: str) -> Tokenizer:
    key = (family, max_length, direction)
    if key not in _CACHE:
        _CACHE[key] = FAMILIES[family](max_length, direction)
    return _CACHE[key]


def full(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tok.encode_batch(texts)]


texts_st = st.lists(st.sampled_from(FRAGMENTS), max_size=120).map("".join)


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(texts_st, min_size=1, max_size=4),
    family=st.sampled_from(sorted(FAMILIES)),
    max_length=st.sampled_from([3, 5, 8, 16]),
    direction=st.sampled_from(["right", "left"]),
    chars_per_token=st.sampled_from([1, 2, 4]),
)
def test_window_gives_the_whole_texts_tokens(texts, family, max_length, direction, chars_per_token):
    tok = tokenizer(family, max_length, direction)
    w = TextWindow(tok, max_length, chars_per_token=chars_per_token)
    assert w.token_ids(texts) == full(tok, texts)


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("direction", ["right", "left"])
def test_texts_of_every_size(family, direction):
    """Every prefix length of a mixed text, from empty to many windows long."""
    rng = random.Random(7)
    text = "".join(rng.choice(FRAGMENTS) for _ in range(400))
    tok = tokenizer(family, 12, direction)
    w = TextWindow(tok, 12, chars_per_token=2)  # first window: 24 characters
    texts = [text[:n] for n in range(0, len(text), 7)] + [text]
    assert w.token_ids(texts) == full(tok, texts)


def test_pathological_texts():
    tok = tokenizer("wordpiece", 10, "right")
    w = TextWindow(tok, 10, chars_per_token=4)
    texts = [
        "a" + " " * 10_000 + "b c d e f g h i j k",   # whitespace runs longer than any window
        "x" * 50_000,                                   # one long word: [UNK]
        "中" * 50_000,                                  # no spaces at all: CJK characters split
        "é" * 3 + "\u0301" * 20_000 + " tail",          # a run of combining marks across the cut
        "[MASK]" * 5_000,                               # added tokens back to back
        "",
    ]
    assert w.token_ids(texts) == full(tok, texts)


def test_the_window_bounds_what_is_tokenised(monkeypatch):
    tok = tokenizer("wordpiece", 16, "right")
    w = TextWindow(tok, 16)
    seen: list[int] = []
    real = w._raw.encode_batch

    def spy(texts, **kw):
        seen.extend(len(t) for t in texts)
        return real(texts, **kw)

    monkeypatch.setattr(w, "_raw", type("Raw", (), {"encode_batch": staticmethod(spy)})())
    words = " ".join(["word"] * 200_000)  # 1 MB of text
    assert w.token_ids([words]) == full(tok, [words])
    assert seen == [16 * 16]  # one window of 256 characters, not a megabyte


@pytest.mark.model
def test_splade_vectors_equal_whole_text_tokenisation():
    enc = SpladeEncoder("splade-tiny", progress=False)
    rng = random.Random(3)
    words = [w for w in FRAGMENTS if w.strip()] + ["aircraft", "wing", "shock", "music", "band"] * 5
    texts = [" ".join(rng.choice(words) for _ in range(n)) for n in (10, 300, 600, 5_000, 40_000)]
    ids = full(enc.tokenizer, texts)
    assert enc._window.token_ids(texts) == ids
    vecs = enc.encode_documents(texts)
    for text_ids, v in zip(ids, vecs):
        row = enc._run([text_ids], len(text_ids))[0]
        nz = np.flatnonzero(row)
        assert np.array_equal(v.indices, nz) and np.array_equal(v.values, row[nz])
    assert enc.tokenize(texts[-1]) == enc.tokenizer.encode(texts[-1]).tokens
