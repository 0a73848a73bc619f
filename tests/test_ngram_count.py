"""NGramCounts.count_flat against a brute-force Counter oracle: one sort serves every order.

Exact equality of the (sorted, distinct) rows and counts with the oracle's, plus row order, pins the
output bit for bit, whatever the sort inside does.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from _ngram_oracle import raw_counts
from hypothesis import given, settings
from hypothesis import strategies as st

from stepfuse.ngram import NGramCounts


def oracle(sents: list[list[int]], order: int, vocab: int) -> list[Counter]:
    """counts[n] over sentences padded as <s> ... </s> with the ids the library gives the specials."""
    return raw_counts(sents, order, bos=vocab + 1, eos=vocab + 2)


def flat(sents: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.array([x for s in sents for x in s], dtype=np.int64)
    return ids, np.cumsum([0, *[len(s) for s in sents]])


def check(sents: list[list[int]], order: int, vocab: int, chunk: int = 1 << 24) -> NGramCounts:
    ids, offs = flat(sents)
    c = NGramCounts.count_flat(ids, offs, order, vocab_size=vocab, chunk=chunk)
    want = oracle(sents, order, vocab)
    for n in range(1, order + 1):
        rows, counts = c.ngrams(n)
        assert rows.shape == (len(want[n]), n) and rows.dtype == np.uint32 and counts.dtype == np.uint64
        expect = sorted(want[n].items())
        assert [tuple(int(x) for x in r) for r in rows] == [g for g, _ in expect]
        assert counts.tolist() == [k for _, k in expect]
    assert c.tokens == len(ids) and c.sentences == len(sents)
    return c


sentence_lists = st.lists(st.lists(st.integers(0, 6), max_size=9), max_size=12)


@settings(max_examples=60, deadline=None)
@given(sentence_lists, st.integers(1, 7), st.integers(1, 40))
def test_all_orders_match_oracle_any_chunk(sents: list[list[int]], order: int, chunk: int) -> None:
    """Small vocabulary (3-bit ids, every order packs in 64 bits); small chunks merge many pieces."""
    check(sents, order, 7, chunk)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.integers(2**32 - 12, 2**32 - 4), max_size=6), max_size=6),
    st.integers(1, 4),
)
def test_ids_near_the_u32_limit(sents: list[list[int]], order: int) -> None:
    """vocab_size = 2^32 - 4: 32-bit ids, order 4 fills all 128 key bits, </s> is 2^32 - 1."""
    check(sents, order, 2**32 - 4)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 40_000), max_size=10), max_size=10),
    st.integers(1, 8),
    st.booleans(),
)
def test_wide_vocabulary_and_unk(sents: list[list[int]], order: int, unk: bool) -> None:
    """16-bit ids: orders >= 5 take 128-bit bucket keys; the id vocab_size itself is <unk>."""
    v = 40_000
    if unk:
        sents = [[v if x % 5 == 0 else x for x in s] for s in sents]
    check(sents, order, v + 1)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 3), st.integers(1, 300), st.integers(1, 6), st.integers(0, 2**31))
def test_many_short_and_repeated_sentences(length: int, copies: int, order: int, seed: int) -> None:
    """Empty and one-token sentences, and one sentence repeated: long runs of equal keys."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 3, size=length).tolist()
    sents = [base] * copies + [[], [int(rng.integers(0, 3))]] * (copies // 3)
    check(sents, order, 3)


def test_zipf_stream_crosses_the_radix_paths() -> None:
    """Long enough for the MSD radix passes (not only the comparison sort of short ranges)."""
    rng = np.random.default_rng(5)
    ids = (rng.zipf(1.2, size=60_000) - 1) % 500
    cuts = np.sort(rng.choice(np.arange(1, ids.size), size=2_000, replace=False))
    sents = [s.tolist() for s in np.split(ids, cuts)]
    whole = check(sents, 5, 500)
    pieces = check(sents, 5, 500, chunk=7_000)
    for n in range(1, 6):
        for a, b in zip(whole.ngrams(n), pieces.ngrams(n)):
            np.testing.assert_array_equal(a, b)


def test_empty_corpus_and_only_empty_sentences() -> None:
    for sents in ([], [[]], [[], [], []]):
        c = check(sents, 3, 5)
        assert c.num_ngrams(3) == 0
