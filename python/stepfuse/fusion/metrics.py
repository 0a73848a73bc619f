"""Word and character error rates with a stated text normalization.

Normalization (``normalize_text``): Unicode NFKC, lowercase, every character that is not a letter, digit or
apostrophe becomes a space, apostrophes at word edges are dropped, whitespace runs collapse. Words are the
space-separated pieces; characters are those of the normalized words joined by single spaces.
WER = (substitutions + deletions + insertions) / reference words, summed over a corpus (Levenshtein alignment).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

__all__ = ["cer", "edit_distance", "error_counts", "normalize_text", "wer"]


def normalize_text(text: str) -> str:
    """The normalization WER/CER use (see the module docstring)."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = "".join(c if (c.isalnum() or c == "'") else " " for c in t)
    return " ".join(w.strip("'") for w in t.split() if w.strip("'"))


def edit_distance(ref: Sequence[object], hyp: Sequence[object]) -> int:
    """Levenshtein distance between two sequences (unit costs), O(|ref|·|hyp|) time, O(|hyp|) memory."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def error_counts(refs: Sequence[str], hyps: Sequence[str], unit: str = "word") -> tuple[int, int, int]:
    """(edits, reference length, hypothesis length) summed over pairs, in words or characters."""
    if len(refs) != len(hyps):
        from stepfuse.errors import InvalidArgumentError

        raise InvalidArgumentError(f"hyps: need one hypothesis per reference ({len(hyps)} != {len(refs)})")
    e = n = m = 0
    for r, h in zip(refs, hyps):
        rn, hn = normalize_text(r), normalize_text(h)
        rs: Sequence[object] = rn.split() if unit == "word" else list(rn)
        hs: Sequence[object] = hn.split() if unit == "word" else list(hn)
        e += edit_distance(rs, hs)
        n += len(rs)
        m += len(hs)
    return e, n, m


def wer(refs: Sequence[str] | str, hyps: Sequence[str] | str) -> float:
    """Corpus word error rate (a single pair may be given as two strings)."""
    if isinstance(refs, str):
        refs, hyps = [refs], [hyps]  # type: ignore[list-item]
    e, n, _ = error_counts(refs, hyps, "word")  # type: ignore[arg-type]
    return e / n if n else float(e > 0)


def cer(refs: Sequence[str] | str, hyps: Sequence[str] | str) -> float:
    """Corpus character error rate."""
    if isinstance(refs, str):
        refs, hyps = [refs], [hyps]  # type: ignore[list-item]
    e, n, _ = error_counts(refs, hyps, "char")  # type: ignore[arg-type]
    return e / n if n else float(e > 0)
