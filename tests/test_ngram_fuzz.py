"""Malformed input thrown at every ngram binding: errors are stepfuse errors (or TypeError from argument
conversion), never a Rust panic (pyo3_runtime.PanicException, a BaseException)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepfuse import _core
from stepfuse.errors import StepfuseError

ids = st.one_of(
    st.lists(st.integers(-(2**40), 2**40), max_size=12),
    st.lists(st.integers(0, 9), max_size=12),
    st.just([]),
)
arrays2 = st.builds(
    lambda r, c, lo, hi, seed: np.random.default_rng(seed).integers(lo, hi, size=(r, c)),
    st.integers(0, 4),
    st.integers(0, 7),
    st.integers(-(2**40), 0),
    st.integers(1, 2**40),
    st.integers(0, 1000),
)


def _call(fn, *args):  # type: ignore[no-untyped-def]
    try:
        fn(*args)
    except (StepfuseError, TypeError, ValueError, OverflowError):
        pass


@pytest.fixture(scope="module")
def lms() -> list[_core._NGramLM]:
    c = _core._NGramCounts.count(np.array([0, 1, 2, 1, 0, 3, 2]), np.array([0, 4, 7]), 3, 5)
    return [
        _core._NGramLM.train(c, "modified_kneser_ney", None, (0.5, 1.0, 1.5)),
        _core._NGramLM.train(c, "interpolated_mle", [0.2, 0.3, 0.5], None),
    ]


@settings(max_examples=150)
@given(ids, ids, st.integers(-3, 200), st.integers(-3, 40), st.integers(-1, 5))
def test_counting_never_panics(tokens, offsets, order, vocab, chunk) -> None:  # type: ignore[no-untyped-def]
    _call(_core._NGramCounts.count, tokens, offsets, order, vocab, chunk)
    _call(_core._NGramCounts.count, tokens, [0, len(tokens)], order, vocab, chunk)


@settings(max_examples=150)
@given(arrays2, arrays2, ids, st.integers(-2, 6))
def test_queries_never_panic(lms, ctx, tok, ngram, n) -> None:  # type: ignore[no-untyped-def]
    for lm in lms:
        _call(lm.score, ctx, tok)
        _call(lm.score, ctx, tok[:, :1] if tok.ndim == 2 and tok.shape[0] == ctx.shape[0] else tok)
        _call(lm.next_logprobs, ctx)
        _call(lm.entry, ngram)
        _call(lm.count, n)


@settings(max_examples=100)
@given(ids, arrays2, st.integers(-2, 5), st.integers(-2, 4), st.integers(-3, 2**33))
def test_norepeat_never_panics(tokens, mat, n, row, limit) -> None:  # type: ignore[no-untyped-def]
    try:
        s = _core._NoRepeatNGram(n, 3)
    except StepfuseError:
        return
    _call(s.update, tokens)
    _call(s.extend_row, row, tokens)
    _call(s.sync, mat)
    _call(s.banned, limit)
    _call(s.apply_f32, np.zeros((3, 5), np.float32))
    _call(s.apply_f32, np.zeros((2, 5), np.float32))
    _call(s.history, row)


@settings(max_examples=100)
@given(st.lists(st.text(max_size=30), max_size=4), st.lists(ids, max_size=3), st.integers(-1, 5))
def test_index_never_panics(texts, id_docs, n) -> None:  # type: ignore[no-untyped-def]
    try:
        idx = _core._NGramIndex(n, True)
    except StepfuseError:
        return
    _call(idx.add_texts, texts, 0)
    _call(idx.add_ids, id_docs, 0)
    _call(idx.scan_texts, texts, True)
    _call(idx.scan_ids, id_docs, True)
    _call(idx.add_texts, texts, 2**32 - 1)
    _call(_core.ngram_words, "".join(texts), False)


@settings(max_examples=60)
@given(st.binary(max_size=300), st.text(max_size=200))
def test_file_readers_never_panic(tmp_path_factory, blob, text) -> None:  # type: ignore[no-untyped-def]
    d: Path = tmp_path_factory.mktemp("fuzz")
    (d / "m.bin").write_bytes(b"SFNGRAM\x00\x01\x00\x00\x00\x04\x03\x02\x01" + blob)
    for mm in (True, False):
        _call(_core._NGramLM.load, str(d / "m.bin"), mm)
    _call(_core._NGramLM.read_arpa_bytes, ("\\data\\\nngram 1=2\n" + text).encode(), "x.arpa")
    _call(_core._NGramLM.read_arpa_bytes, blob, "x.arpa")


@settings(max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6))
def test_corrupted_binary_never_panics(tmp_path_factory, flips) -> None:  # type: ignore[no-untyped-def]
    d: Path = tmp_path_factory.mktemp("flip")
    c = _core._NGramCounts.count(np.arange(40) % 7, np.array([0, 13, 40]), 3, 7)
    lm = _core._NGramLM.train(c, "modified_kneser_ney", None, (0.5, 1.0, 1.5))
    lm.save(str(d / "m.bin"), b"{}", True)
    data = bytearray((d / "m.bin").read_bytes())
    for pos, val in flips:
        data[pos % len(data)] = val
    (d / "m.bin").write_bytes(bytes(data))
    for mm in (True, False):
        try:
            back, _ = _core._NGramLM.load(str(d / "m.bin"), mm)
        except StepfuseError:
            continue
        ctx = np.array([[0, 1], [-1, 9], [3, 3]])
        _call(back.score, ctx, np.array([[1], [2], [9]]))
        _call(back.next_logprobs, ctx)
        _call(back.write_arpa, str(d / "o.arpa"), [str(i) for i in range(7)])
