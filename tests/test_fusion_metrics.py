"""WER/CER against a brute-force edit distance, and the stated normalization."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepfuse.errors import InvalidArgumentError
from stepfuse.fusion.metrics import cer, edit_distance, error_counts, normalize_text, wer


def brute_distance(a, b):
    """Smallest number of unit edits, by breadth-first search over strings (tiny inputs only)."""
    a, b = tuple(a), tuple(b)
    alphabet = set(a) | set(b)
    frontier, seen, d = {a}, {a}, 0
    while b not in frontier:
        nxt = set()
        for s in frontier:
            for i in range(len(s) + 1):
                for c in alphabet:
                    nxt.add((*s[:i], c, *s[i:]))
                    if i < len(s):
                        nxt.add((*s[:i], c, *s[i + 1 :]))
                if i < len(s):
                    nxt.add(s[:i] + s[i + 1 :])
        frontier = nxt - seen
        seen |= nxt
        d += 1
    return d


@given(st.lists(st.sampled_from("abc"), max_size=4), st.lists(st.sampled_from("abc"), max_size=4))
def test_edit_distance_oracle(a, b):
    assert edit_distance(a, b) == brute_distance(a, b)


def test_normalization_and_rates():
    assert normalize_text("  Hello, WORLD!  It's 'quoted' ") == "hello world it's quoted"
    assert wer("the cat sat", "the cat sat") == 0.0
    assert wer("the cat sat", "the hat") == pytest.approx(2 / 3)
    assert wer(["a b", "c d e f"], ["a b", "c x e"]) == pytest.approx(2 / 6)
    assert cer("abc", "abd") == pytest.approx(1 / 3)
    assert error_counts(["a b c"], ["a b c d"]) == (1, 3, 4)
    assert wer("", "") == 0.0 and wer("", "x") == 1.0
    with pytest.raises(InvalidArgumentError):
        wer(["a"], ["a", "b"])


@given(st.text(max_size=30), st.text(max_size=30))
def test_wer_bounds(r, h):
    e, n, m = error_counts([r], [h])
    assert max(n, m) >= e >= abs(n - m)
    assert list(itertools.islice(normalize_text(r).split(), 100)) == normalize_text(normalize_text(r)).split()
