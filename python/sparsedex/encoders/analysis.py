"""Text analysis for BM25: Unicode normalisation, case folding, words, stopwords, stemming.

What ``Analyzer()`` does to a text, in order (the same for documents and queries):

1. **Unicode normalisation NFKC** (``unicodedata.normalize("NFKC", text)``): the same word
   typed in composed (NFC) or decomposed (NFD) form, or with compatibility characters
   (the ligature ``"ﬁ"``, full-width ``"Ｚ"``), becomes one string, so ``"Zürich"`` with a
   combining diaeresis matches ``"Zürich"`` with a precomposed one.
2. **Full Unicode case folding** (``str.casefold()``, then NFKC again, since folding can undo
   normalisation): ``"Straße"``, ``"STRASSE"`` and ``"strasse"`` are one word.
3. **Words**: maximal runs of word characters (Python's Unicode ``\\w``) and the combining
   marks that follow them (Unicode categories Mn, Mc, Me), so a mark that has no precomposed
   form (Devanagari vowel signs, ``"n̈"``) stays inside its word instead of splitting it.
4. Optional stopwords (compared after steps 1-3), then the Snowball stemmer (PyStemmer).

On ASCII text steps 1-3 are lowercasing and ``\\w+`` words, exactly what earlier versions
did, which is the analysis behind REFERENCE_RESULTS.json's BM25 numbers (Snowball English,
no stopwords). ``normalization="NFC"`` keeps compatibility characters apart;
``normalization=None`` turns steps 1-3 off and gives the analysis of sparsedex <= 0.1
(``str.lower()`` and ``\\w+``): an index saved by those versions has no ``normalization``
in its analyzer config and keeps analysing its documents and queries that way when opened.
"""

from __future__ import annotations

import re
import sys
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Analyzer", "ENGLISH_STOPWORDS", "available_languages"]

#: Lucene's EnglishAnalyzer stop set (33 words), used by ``stopwords="english"``.
ENGLISH_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with".split()
)
_BUILTIN_STOPWORDS = {"english": ENGLISH_STOPWORDS, "en": ENGLISH_STOPWORDS}


_NORMALIZATIONS = ("NFKC", "NFC")
_LEGACY_PATTERN = r"\w+"
_ASCII_WORDS = re.compile(r"\w+")
_word_re: re.Pattern[str] | None = None
_word_lock = threading.Lock()


def _mark_ranges() -> list[tuple[int, int]]:
    """Code point ranges of Unicode combining marks (categories Mn, Mc, Me) in this Python's
    Unicode database. Marks live below U+20000 and in the supplementary special-purpose plane."""
    ranges: list[tuple[int, int]] = []
    start = prev = -2
    for lo, hi in ((0x300, 0x20000), (0xE0000, 0xE1000)):
        for cp in range(lo, min(hi, sys.maxunicode + 1)):
            if unicodedata.category(chr(cp))[0] == "M":
                if cp != prev + 1:
                    if start >= 0:
                        ranges.append((start, prev))
                    start = cp
                prev = cp
    if start >= 0:
        ranges.append((start, prev))
    return ranges


def word_pattern() -> re.Pattern[str]:
    """The default word: a word character, then word characters and combining marks.

    Built once per process (a scan of the Unicode database, about 0.1 s) on the first text
    that is not ASCII; on ASCII text it matches what ``\\w+`` matches.
    """
    global _word_re
    if _word_re is None:
        with _word_lock:
            if _word_re is None:
                marks = "".join(
                    re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
                    for a, b in _mark_ranges()
                )
                _word_re = re.compile(rf"\w[\w{marks}]*")
    return _word_re


def available_languages() -> list[str]:
    """Languages the Snowball stemmer (PyStemmer) knows."""
    import Stemmer

    return sorted(Stemmer.algorithms())


def _compile_token_pattern(pattern: Any, rules: bool = True) -> re.Pattern[str]:
    """``token_pattern`` compiled, or a ValueError / TypeError naming it (helper-142): a
    pattern that matches the empty string made ``""`` a term of every text (every document
    matched every query), one with capturing groups gave tuples (``re.findall``), an invalid
    one a bare ``re.error``. ``rules=False`` (a saved analyzer's pattern) checks only that it
    compiles: a saved index keeps the pattern it was built with (helper-143)."""
    if not isinstance(pattern, str):
        raise TypeError(f"token_pattern must be a str (a regular expression), got {type(pattern).__name__}")
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise ValueError(f"token_pattern {pattern!r} is not a valid regular expression: {e}") from None
    if not rules:
        return rx
    if rx.groups:
        raise ValueError(f"token_pattern {pattern!r} has capturing groups: write them (?:...)")
    if rx.fullmatch("") is not None:
        raise ValueError(f"token_pattern {pattern!r} matches the empty string: a word must hold a character "
                         "(e.g. \\w+, not \\w*)")
    return rx


class Analyzer:
    """Turns text into index terms.

    Parameters
    ----------
    language:
        Snowball stemmer language (``available_languages()``), also the name of the built-in
        stopword list when ``stopwords=True``.
    stemming:
        Apply the Snowball stemmer (default ``True``).
    stopwords:
        ``None``/``False``: keep every word (default). ``True`` or a language name: the built-in
        list (English only). An iterable of words: that list (normalised and case folded as
        the text is, compared before stemming).
    lowercase:
        Fold case (default ``True``): full Unicode case folding (``str.casefold``) when
        ``normalization`` is set, ``str.lower()`` when it is ``None``.
    token_pattern:
        Regular expression of a word. ``None`` (default): word characters with the combining
        marks that follow them (see the module docstring); ``r"\\w+"`` was the default of
        sparsedex <= 0.1.
    normalization:
        Unicode normal form applied to the text first: ``"NFKC"`` (default) or ``"NFC"``;
        ``None`` applies none (the analysis of sparsedex <= 0.1, kept for indexes it saved).

    Raises
    ------
    ValueError
        An unknown language, stopword list or normal form.
    """

    def __init__(
        self,
        language: str = "english",
        *,
        stemming: bool = True,
        stopwords: bool | str | Iterable[str] | None = None,
        lowercase: bool = True,
        token_pattern: str | None = None,
        normalization: str | None = "NFKC",
    ) -> None:
        if normalization is not None:
            if not isinstance(normalization, str) or normalization.upper() not in _NORMALIZATIONS:
                raise ValueError(f"normalization must be 'NFKC', 'NFC' or None, got {normalization!r}")
            normalization = normalization.upper()
        self.language = language
        self.stemming = bool(stemming)
        self.lowercase = bool(lowercase)
        self.normalization = normalization
        self.token_pattern = token_pattern
        self._re = None if token_pattern is None else _compile_token_pattern(token_pattern)
        self._keep_empty = False  # True for a saved analyzer (from_config)
        self._stopwords_spec: Any
        if stopwords is not None and not isinstance(stopwords, (bool, str)) and (
            not isinstance(stopwords, Iterable) or isinstance(stopwords, (bytes, Mapping))
        ):
            raise TypeError(f"stopwords must be True, False, None, a language name or a list of words, "
                            f"got {type(stopwords).__name__}")
        if stopwords is None or stopwords is False:
            self.stopwords: frozenset[str] = frozenset()
            self._stopwords_spec = None
        elif stopwords is True or isinstance(stopwords, str):
            name = language if stopwords is True else stopwords
            if name.lower() not in _BUILTIN_STOPWORDS:
                raise ValueError(
                    f"no built-in stopword list for {name!r} (have: english); pass a list of words"
                )
            self.stopwords = _BUILTIN_STOPWORDS[name.lower()]
            self._stopwords_spec = name.lower()
        else:
            words = list(stopwords)
            bad = [w for w in words if not isinstance(w, str)]
            if bad:  # helper-143: a bare AttributeError ('isascii')
                raise TypeError(f"stopwords must be words (str), got {type(bad[0]).__name__} {bad[0]!r} in the list")
            words = [self._fold(w) for w in words]
            self.stopwords = frozenset(words)
            self._stopwords_spec = sorted(self.stopwords)
        self._stemmer = None
        if self.stemming:
            import Stemmer

            try:
                self._stemmer = Stemmer.Stemmer(language)
            except KeyError:
                raise ValueError(
                    f"no Snowball stemmer for language {language!r}; "
                    f"available: {', '.join(available_languages())}"
                ) from None

    def normalize(self, text: str) -> str:
        """``text`` after Unicode normalisation and case folding (steps 1-2 of the module
        docstring; ``str.lower()`` only when ``normalization`` is None)."""
        return self._fold(text)

    def _fold(self, text: str) -> str:
        if self.normalization is None or text.isascii():
            return text.lower() if self.lowercase else text
        form: Any = self.normalization
        text = unicodedata.normalize(form, text)
        if self.lowercase:
            text = unicodedata.normalize(form, text.casefold())
        return text

    def words(self, text: str) -> list[str]:
        """Normalised, case-folded words with stopwords removed, before stemming."""
        text = self._fold(text)
        if self._re is not None:
            # empty matches dropped: a pattern can match "" in some places only (e.g. \b)
            words = self._re.findall(text)
            if not self._keep_empty:
                words = [w for w in words if w]
        elif text.isascii():
            words = _ASCII_WORDS.findall(text)
        else:
            words = word_pattern().findall(text)
        if self.stopwords:
            words = [w for w in words if w not in self.stopwords]
        return words

    def __call__(self, text: str) -> list[str]:
        """The terms of ``text``, in order, repeats kept."""
        if not isinstance(text, str):
            raise TypeError(f"expected str, got {type(text).__name__}")
        words = self.words(text)
        if self._stemmer is not None and words:
            words = self._stemmer.stemWords(words)
        return words

    analyze = __call__

    def config(self) -> dict[str, Any]:
        """JSON-able settings; ``Analyzer.from_config(a.config())`` analyses identically."""
        return {
            "language": self.language,
            "stemming": self.stemming,
            "stopwords": self._stopwords_spec,
            "lowercase": self.lowercase,
            "token_pattern": self.token_pattern,
            "normalization": self.normalization,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Analyzer:
        """The analyzer of :meth:`config`. A config without ``normalization`` (saved by
        sparsedex <= 0.1) gives that version's analysis: no normalisation, ``str.lower()``,
        its ``token_pattern`` (``\\w+``)."""
        a = cls(
            config.get("language", "english"),
            stemming=config.get("stemming", True),
            stopwords=config.get("stopwords"),
            lowercase=config.get("lowercase", True),
            normalization=config.get("normalization"),
        )
        pattern = config.get("token_pattern", _LEGACY_PATTERN)
        if pattern is not None:
            # a saved index keeps the pattern it was built with: the rules for new analyzers
            # (_compile_token_pattern) made indexes saved with a one-group pattern, which
            # analysed fine, unopenable (helper-143)
            a._re = _compile_token_pattern(pattern, rules=False)
            a.token_pattern = pattern
            # and its empty matches, which its documents' postings hold (helper-144: dropping them
            # changed the scores of an index saved with \w*)
            a._keep_empty = True
        return a

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Analyzer) and self.config() == other.config()

    def __repr__(self) -> str:
        c = self.config()
        return "Analyzer(" + ", ".join(f"{k}={v!r}" for k, v in c.items()) + ")"
