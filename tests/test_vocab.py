"""ByteVocab queries against linear-scan oracles; serialization; bad input never panics."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stepfuse
from stepfuse import ByteVocab
from stepfuse.errors import (
    FormatError,
    InvalidArgumentError,
    InvalidTypeError,
    NonFiniteError,
    OutOfRangeError,
    StepfuseError,
)

# Small alphabets make prefixes, duplicates and shared runs common; 0x00/0xFF and UTF-8 bytes too.
BYTE = st.sampled_from([0x00, 0xFF, ord("a"), ord("b"), 0xE4, 0x80]) | st.integers(0, 255)
TOKEN = st.binary(max_size=0) | st.lists(BYTE, max_size=6).map(bytes)
TOKENS = st.lists(st.one_of(TOKEN, st.none()), min_size=1, max_size=30)
QUERY = st.lists(BYTE, max_size=8).map(bytes)


@st.composite
def vocabularies(draw: st.DrawFn) -> tuple[list[bytes | None], list[int]]:
    toks = draw(TOKENS)
    special = draw(st.lists(st.integers(0, len(toks) - 1), max_size=3))
    return toks, special


def matching(toks: list[bytes | None], special: list[int]) -> list[tuple[int, bytes]]:
    return [(i, t) for i, t in enumerate(toks) if t is not None and i not in special]


def oracle_extending(m: list[tuple[int, bytes]], p: bytes, strict: bool = False) -> list[int]:
    return [i for i, t in m if t.startswith(p) and (not strict or len(t) > len(p))]


def oracle_prefixes_of(m: list[tuple[int, bytes]], d: bytes) -> list[int]:
    return [i for i, t in m if len(t) > 0 and d.startswith(t)]


@given(vocabularies(), st.lists(QUERY, min_size=1, max_size=6))
def test_queries_match_linear_scan(vs: tuple[list[bytes | None], list[int]], queries: list[bytes]) -> None:
    toks, special = vs
    v = ByteVocab(toks, special)
    m = matching(toks, special)
    assert len(v) == len(toks)
    assert v.max_token_len == max((len(t) for _, t in m), default=0)
    assert v.n_match == len(m)
    perm = v.sorted_ids
    assert perm.dtype == np.int32 and sorted(perm.tolist()) == list(range(len(toks)))
    order = sorted((t, i) for i, t in m)
    assert [(v.token_bytes(i), i) for i in perm[: v.n_match]] == order
    for i, t in enumerate(toks):
        assert v.token_bytes(i) == t
        assert v.is_special(i) == (i in special)
    assert v.token_lengths.tolist() == [len(t or b"") for t in toks]
    ids = list(range(len(toks))) * 2
    assert v.decode(ids) == b"".join((t or b"") for i, t in enumerate(toks * 2) if ids[i] not in special)
    assert v.decode(np.array(ids, np.uint16), skip_special=False) == b"".join(t or b"" for t in toks * 2)
    for q in queries:
        for strict in (False, True):
            ext = v.extending(q, strict=strict)
            assert ext.dtype == np.int32
            assert ext.tolist() == oracle_extending(m, q, strict)
            lo, hi = v.prefix_range(q, strict=strict)
            assert sorted(perm[lo:hi].tolist()) == ext.tolist()
        assert v.prefixes_of(q).tolist() == oracle_prefixes_of(m, q)
        assert v.ids_of(q).tolist() == [i for i, t in m if t == q]
    # batched forms equal the single ones
    for strict in (False, True):
        lo, hi = v.prefix_ranges(queries, strict=strict)
        assert lo.dtype == np.int32 and hi.dtype == np.int32
        assert list(zip(lo.tolist(), hi.tolist())) == [v.prefix_range(q, strict) for q in queries]
        off, ids = v.extending_batch(queries, strict=strict)
        assert off.tolist()[0] == 0 and len(off) == len(queries) + 1
        for k, q in enumerate(queries):
            assert ids[off[k] : off[k + 1]].tolist() == oracle_extending(m, q, strict)
    off, ids = v.prefixes_of_batch(queries)
    for k, q in enumerate(queries):
        assert ids[off[k] : off[k + 1]].tolist() == oracle_prefixes_of(m, q)


@given(vocabularies(), QUERY)
def test_greedy_tokenize_spells_a_prefix(vs: tuple[list[bytes | None], list[int]], q: bytes) -> None:
    v = ByteVocab(*vs)
    ids, used = v.greedy_tokenize(q)
    assert b"".join(v.token_bytes(i) or b"" for i in ids.tolist()) == q[:used]
    m = matching(*vs)
    # greedy stops only where no non-empty token matches the rest
    if used < len(q):
        assert oracle_prefixes_of(m, q[used:]) == []


@given(vocabularies())
def test_serialization_roundtrips(vs: tuple[list[bytes | None], list[int]]) -> None:
    v = ByteVocab(*vs)
    for w in (ByteVocab.from_bytes(v.to_bytes()), pickle.loads(pickle.dumps(v))):
        assert w.to_bytes() == v.to_bytes()
        assert w.sorted_ids.tolist() == v.sorted_ids.tolist()
        assert [w.token_bytes(i) for i in range(len(w))] == vs[0]
        assert [w.is_special(i) for i in range(len(w))] == [v.is_special(i) for i in range(len(v))]


def test_sorted_ids_is_read_only_and_cached() -> None:
    v = ByteVocab([b"b", b"a"])
    assert v.sorted_ids is v.sorted_ids
    with pytest.raises(ValueError):
        v.sorted_ids[0] = 1
    assert v.sorted_ids.tolist() == [1, 0]


def test_reexported_at_top_level() -> None:
    assert stepfuse.ByteVocab is ByteVocab
    assert "ByteVocab" in stepfuse.__all__ and "byte_prefix_logprob" in stepfuse.__all__


def test_index_memory_under_4mb_at_150k_tokens() -> None:
    rng = np.random.default_rng(0)
    lens = rng.integers(1, 14, size=150_000)
    toks = [rng.integers(0, 256, size=n, dtype=np.uint8).tobytes() for n in lens]
    v = ByteVocab(toks)
    assert v.index_bytes < 4_000_000
    assert v.index_bytes <= sum(map(len, toks)) + 17 * 150_001 + 4 * 65_794 + 64


# ---- bad input ----------------------------------------------------------------------------------


def test_bad_inputs_raise_named_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="tokens: the vocabulary must not be empty"):
        ByteVocab([])
    with pytest.raises(InvalidTypeError, match=r"tokens\[1\]"):
        ByteVocab([b"a", "b"])  # type: ignore[list-item]
    with pytest.raises(InvalidTypeError, match="tokens"):
        ByteVocab(b"abc")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="tokens"):
        ByteVocab(5)  # type: ignore[arg-type]
    with pytest.raises(OutOfRangeError, match="special_ids"):
        ByteVocab([b"a"], [1])
    with pytest.raises(OutOfRangeError, match="special_ids"):
        ByteVocab([b"a"], [-1])
    with pytest.raises(InvalidTypeError, match="special_ids"):
        ByteVocab([b"a"], [0.5])
    v = ByteVocab([b"a", b"b"])
    with pytest.raises(OutOfRangeError, match="i: 2 is out of range"):
        v.token_bytes(2)
    with pytest.raises(OutOfRangeError, match="i: -1"):
        v.token_bytes(-1)
    with pytest.raises(InvalidTypeError, match="i"):
        v.token_bytes(1.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="prefix"):
        v.extending("a")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match=r"prefixes\[1\]"):
        v.extending_batch([b"a", 3])  # type: ignore[list-item]
    with pytest.raises(InvalidTypeError, match="data"):
        v.prefixes_of(None)  # type: ignore[arg-type]
    with pytest.raises(FormatError, match="from_bytes"):
        ByteVocab.from_bytes(b"garbage")
    with pytest.raises(InvalidTypeError):
        ByteVocab.from_tokenizer(object())


ANY = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=4),
    st.binary(max_size=12),
    st.lists(st.one_of(st.binary(max_size=4), st.integers(-5, 5), st.none()), max_size=4),
)


@settings(max_examples=60)
@given(ANY, ANY, ANY)
def test_malformed_input_never_panics(a: object, b: object, c: object) -> None:
    v = ByteVocab([b"a", b"ab", None, b"\xff"], [3])
    big = ByteVocab([bytes([i]) for i in range(256)] + [b"zz", b"zzz", b"yz"])._core
    calls = [
        lambda: ByteVocab(a),  # type: ignore[arg-type]
        lambda: ByteVocab([b"x"], a),  # type: ignore[arg-type]
        lambda: v.token_bytes(a),  # type: ignore[arg-type]
        lambda: v.extending(a),  # type: ignore[arg-type]
        lambda: v.prefix_range(a),  # type: ignore[arg-type]
        lambda: v.prefix_ranges(a),  # type: ignore[arg-type]
        lambda: v.extending_batch(a),  # type: ignore[arg-type]
        lambda: v.prefixes_of(a),  # type: ignore[arg-type]
        lambda: v.prefixes_of_batch(a),  # type: ignore[arg-type]
        lambda: v.ids_of(a),  # type: ignore[arg-type]
        lambda: v.decode(a),  # type: ignore[arg-type]
        lambda: ByteVocab.from_bytes(a),  # type: ignore[arg-type]
        lambda: ByteVocab.from_bytes(v.to_bytes()[:16] + (a if isinstance(a, bytes) else b"")),
        lambda: v.range_logsumexp(np.zeros((2, 4), np.float32), a, b, c),  # type: ignore[arg-type]
        lambda: v._core.cover_tree(a, 10),  # type: ignore[arg-type]
        lambda: v._core.gfd_layout(a, b, 3),  # type: ignore[arg-type]
        lambda: stepfuse.gfd_prepare(v, a, b),  # type: ignore[arg-type]
        lambda: v._core.gfd_score(big.gfd_layout([b"zzzz", b"yz"], [[], []], 2), np.zeros((4, 5), np.float32)),
        lambda: v._core.gfd_score(v._core.gfd_layout([b"ab"], [[]], 1), a),  # type: ignore[arg-type]
        lambda: stepfuse.byte_prefix_logprob(v, lambda s: np.zeros((len(s), 4)), a, context=b),  # type: ignore[arg-type]
    ]
    for call in calls:
        try:
            call()
        except (StepfuseError, TypeError, ValueError, OverflowError):
            pass


@settings(max_examples=50)
@given(vocabularies(), st.lists(QUERY, min_size=1, max_size=5), st.integers(0, 2**16))
def test_range_logsumexp_matches_numpy(
    vs: tuple[list[bytes | None], list[int]], queries: list[bytes], seed: int
) -> None:
    v = ByteVocab(*vs)
    rng = np.random.default_rng(seed)
    lp = rng.normal(size=(3, len(v) + 2)).astype(np.float32)
    lp[rng.random(lp.shape) < 0.2] = -np.inf
    lo, hi = v.prefix_ranges(queries)
    rows = rng.integers(0, 3, size=len(queries))
    got = v.range_logsumexp(lp, rows, lo, hi)
    assert got.dtype == np.float64
    for k, q in enumerate(queries):
        ids = v.extending(q)
        x = lp[rows[k], ids].astype(np.float64)
        want = -np.inf if x.size == 0 or np.all(x == -np.inf) else np.logaddexp.reduce(x)
        assert got[k] == pytest.approx(want, abs=1e-5) or (got[k] == want == -np.inf)
    bad = lp.copy()
    bad[:, v.sorted_ids[: v.n_match]] = np.nan
    full = np.zeros(len(queries), np.int64), np.zeros(len(queries), np.int64), np.full(len(queries), v.n_match)
    if v.n_match:
        with pytest.raises(NonFiniteError, match="logprobs"):
            v.range_logsumexp(bad, *full)
    with pytest.raises(InvalidArgumentError, match="logprobs"):
        v.range_logsumexp(lp[:, : len(v) - 1], rows, lo, hi)


def test_concurrent_queries_agree() -> None:
    """The index is immutable and the GIL is released during queries: threads see the same answers."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(5)
    toks = [rng.integers(97, 100, size=rng.integers(1, 6), dtype=np.uint8).tobytes() for _ in range(3000)]
    v = ByteVocab(toks)
    queries = [t[: max(1, len(t) // 2)] for t in toks[:500]]
    want = v.extending_batch(queries)[1].tolist()
    with ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(lambda _: v.extending_batch(queries)[1].tolist(), range(8)))
    assert all(o == want for o in outs)


class _Bytes(bytes):
    """A bytes subclass: read through the generic path, not the exact-bytes fast path."""


@settings(max_examples=60, deadline=None)
@given(vocabularies(), st.lists(QUERY, min_size=1, max_size=6))
def test_list_fast_path_matches_other_sequences(
    vs: tuple[list[bytes | None], list[int]], queries: list[bytes]
) -> None:
    toks, special = vs
    ref = ByteVocab(tuple(toks), special)
    mixed = [
        None if t is None else (bytearray(t) if i % 3 == 1 else _Bytes(t) if i % 3 == 2 else t)
        for i, t in enumerate(toks)
    ]
    for v in (ByteVocab(list(toks), special), ByteVocab(mixed, special), ByteVocab(iter(toks), special)):
        assert v.sorted_ids.tolist() == ref.sorted_ids.tolist()
        assert [v.token_bytes(i) for i in range(len(v))] == toks
    want = sorted(t for _, t in matching(toks, special))
    lo, hi = ref.prefix_ranges(list(queries))
    lo2, hi2 = ref.prefix_ranges(tuple(bytearray(q) for q in queries))
    assert lo.tolist() == lo2.tolist() and hi.tolist() == hi2.tolist()
    for q, a, b in zip(queries, lo.tolist(), hi.tolist()):
        assert b - a == sum(t.startswith(q) for t in want)


def test_list_items_of_wrong_type_are_named() -> None:
    with pytest.raises(InvalidTypeError, match=r"tokens\[2\]: must be bytes or None, got int"):
        ByteVocab([b"a", None, 3])
    with pytest.raises(InvalidTypeError, match=r"prefixes\[1\]: must be bytes, got NoneType"):
        ByteVocab([b"a"]).prefix_ranges([b"a", None])
    with pytest.raises(InvalidTypeError, match=r"prefixes\[0\]: must be bytes, got str"):
        ByteVocab([b"a"]).extending_batch(["a"])
