"""NoRepeatNGram and the transformers-compatible processor against transformers and a brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepfuse.errors import InvalidArgumentError, InvalidTypeError, LimitExceededError, OutOfRangeError
from stepfuse.ngram import NoRepeatNGram


def brute_banned(seq: list[int], n: int) -> set[int]:
    if len(seq) < n:
        return set()
    prefix = tuple(seq[len(seq) + 1 - n :])
    return {seq[i + n - 1] for i in range(len(seq) - n + 1) if tuple(seq[i : i + n - 1]) == prefix}


@settings(max_examples=60)
@given(
    st.lists(st.lists(st.integers(0, 5), min_size=12, max_size=12), min_size=1, max_size=4), st.integers(1, 4)
)
def test_incremental_matches_brute_force(seqs: list[list[int]], n: int) -> None:
    st_ = NoRepeatNGram(n, len(seqs))
    for step in range(12):
        logits = np.zeros((len(seqs), 6), np.float32)
        st_.apply(logits)
        for r, s in enumerate(seqs):
            assert set(np.flatnonzero(np.isinf(logits[r]))) == brute_banned(s[:step], n)
        st_.update(np.array([s[step] for s in seqs]))
    np.testing.assert_array_equal(st_.history(0), seqs[0])


@settings(max_examples=40)
@given(
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(0, 14),
    st.integers(2, 9),
    st.integers(0, 2**31),
)
def test_processor_equals_transformers(n: int, batch: int, length: int, vocab: int, seed: int) -> None:
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("transformers")
    from stepfuse.ngram import NoRepeatNGramLogitsProcessor

    rng = np.random.default_rng(seed)
    ours, theirs = NoRepeatNGramLogitsProcessor(n), tf.NoRepeatNGramLogitsProcessor(n)
    ids = torch.from_numpy(rng.integers(0, vocab + 2, size=(batch, length)))
    for _ in range(3):  # successive decoding steps, sometimes reordering rows like beam search
        scores = torch.from_numpy(rng.standard_normal((batch, vocab)).astype(np.float32))
        a, b = ours(ids, scores.clone()), theirs(ids, scores.clone())
        assert torch.equal(a, b)
        ids = torch.cat([ids, torch.from_numpy(rng.integers(0, vocab, size=(batch, 1)))], dim=1)
        if rng.random() < 0.5:
            ids = ids[torch.from_numpy(rng.permutation(batch))]


def test_apply_numpy_dtypes_and_torch() -> None:
    torch = pytest.importorskip("torch")
    s = NoRepeatNGram(2, prompts=[[1, 2, 1], [3, 3]])
    f64 = np.zeros((2, 5))
    s.apply(f64)
    assert np.isinf(f64[0, 2]) and np.isinf(f64[1, 3]) and np.isinf(f64).sum() == 2
    t = torch.zeros((2, 5), dtype=torch.bfloat16)
    s.apply(t)
    assert torch.isinf(t).sum() == 2
    rows, cols = s.banned()
    assert rows.tolist() == [0, 1] and cols.tolist() == [2, 3]


def test_bad_input() -> None:
    with pytest.raises(InvalidArgumentError):
        NoRepeatNGram(0)
    for batch in (2**24 + 1, 2**40, 2**63 - 1):  # an absurd batch is an error, never an allocation panic
        with pytest.raises(LimitExceededError, match="batch"):
            NoRepeatNGram(2, batch)
    s = NoRepeatNGram(2, 2)
    with pytest.raises(InvalidArgumentError):
        s.update([1])
    with pytest.raises(OutOfRangeError):
        s.update([1, -1])
    with pytest.raises(InvalidTypeError):
        s.update([1.5, 2.0])
    with pytest.raises(InvalidArgumentError):
        s.apply(np.zeros((3, 4), np.float32))
    with pytest.raises(OutOfRangeError):
        s.extend(5, [1])
    with pytest.raises(InvalidArgumentError):
        s.sync(np.zeros(3, np.int64))
