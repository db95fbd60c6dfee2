"""Text analysis for BM25: lowercase, Unicode ``\\w+`` words, optional stopwords and stemming.

``Analyzer()`` with its defaults is the analysis behind REFERENCE_RESULTS.json's BM25 numbers:
lowercase, ``\\w+`` tokens (Python's Unicode-aware ``re``), the Snowball English stemmer
(PyStemmer), no stopwords.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["Analyzer", "ENGLISH_STOPWORDS", "available_languages"]

#: Lucene's EnglishAnalyzer stop set (33 words), used by ``stopwords="english"``.
ENGLISH_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with".split()
)
_BUILTIN_STOPWORDS = {"english": ENGLISH_STOPWORDS, "en": ENGLISH_STOPWORDS}


def available_languages() -> list[str]:
    """Languages the Snowball stemmer (PyStemmer) knows."""
    import Stemmer

    return sorted(Stemmer.algorithms())


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
        list (English only). An iterable of words: that list (compared after lowercasing, before
        stemming).
    lowercase:
        Lowercase the text first (default ``True``).
    token_pattern:
        Regular expression of a word (default ``\\w+``, Unicode).
    """

    def __init__(
        self,
        language: str = "english",
        *,
        stemming: bool = True,
        stopwords: bool | str | Iterable[str] | None = None,
        lowercase: bool = True,
        token_pattern: str = r"\w+",
    ) -> None:
        self.language = language
        self.stemming = bool(stemming)
        self.lowercase = bool(lowercase)
        self.token_pattern = token_pattern
        self._re = re.compile(token_pattern)
        self._stopwords_spec: Any
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
            words = [w.lower() if self.lowercase else w for w in stopwords]
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

    def words(self, text: str) -> list[str]:
        """Lowercased words with stopwords removed, before stemming."""
        if self.lowercase:
            text = text.lower()
        words = self._re.findall(text)
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
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Analyzer:
        return cls(
            config.get("language", "english"),
            stemming=config.get("stemming", True),
            stopwords=config.get("stopwords"),
            lowercase=config.get("lowercase", True),
            token_pattern=config.get("token_pattern", r"\w+"),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Analyzer) and self.config() == other.config()

    def __repr__(self) -> str:
        c = self.config()
        return "Analyzer(" + ", ".join(f"{k}={v!r}" for k, v in c.items()) + ")"
