"""byte_prefix_logprob (exact and gfd) and the incremental GFD form, against brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepfuse import ByteVocab, byte_prefix_logprob, gfd_prepare
from stepfuse.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    LimitExceededError,
    NonFiniteError,
    OutOfRangeError,
)


class RandomModel:
    """A fixed random next-token model: log-softmax of normals seeded by (seed, context)."""

    def __init__(self, n_vocab: int, seed: int, extra_cols: int = 0) -> None:
        self.v = n_vocab + extra_cols
        self.seed = seed
        self.calls: list[int] = []

    def row(self, ctx: tuple[int, ...]) -> np.ndarray:
        rng = np.random.default_rng([self.seed, len(ctx), *ctx])
        x = rng.normal(size=self.v) * 1.5
        x[rng.random(self.v) < 0.1] = -np.inf  # some impossible tokens
        x[0] = max(x[0], 0.0)  # keep at least one finite entry
        m = x.max()
        return (x - m - np.log(np.sum(np.exp(x - m)))).astype(np.float32)

    def __call__(self, seqs: list[list[int]]) -> np.ndarray:
        self.calls.append(len(seqs))
        return np.stack([self.row(tuple(s)) for s in seqs]) if seqs else np.zeros((0, self.v), np.float32)


def brute_exact(tokens: list[bytes | None], special: list[int], model: RandomModel, data: bytes,
                context: tuple[int, ...] = ()) -> float:
    """Sum P(seq) over every token sequence (length <= |data|) that is a cover of data."""
    ok = [i for i, t in enumerate(tokens) if t is not None and t != b"" and i not in special]
    total = 0.0

    def rec(ctx: tuple[int, ...], pos: int, lp: float) -> None:
        nonlocal total
        row = model.row(ctx).astype(np.float64)
        for i in ok:
            t = tokens[i]
            assert t is not None
            rest = data[pos:]
            if t.startswith(rest):
                total += math.exp(lp + row[i])
            elif rest.startswith(t):
                rec((*ctx, i), pos + len(t), lp + row[i])

    rec(context, 0, 0.0)
    return math.log(total) if total > 0 else -math.inf


AB = st.lists(st.sampled_from([ord("a"), ord("b"), 0xFF]), min_size=0, max_size=3).map(bytes)


@st.composite
def small_vocab(draw: st.DrawFn) -> tuple[list[bytes | None], list[int]]:
    toks: list[bytes | None] = [b"a", b"b", b"\xff"]  # every byte of the alphabet is coverable
    toks += draw(st.lists(st.one_of(AB, st.none()), max_size=5))
    special = draw(st.lists(st.integers(3, len(toks) - 1), max_size=1)) if len(toks) > 3 else []
    return toks, special


@settings(max_examples=40)
@given(small_vocab(), st.lists(st.sampled_from([ord("a"), ord("b"), 0xFF]), min_size=1, max_size=5).map(bytes),
       st.integers(0, 2**16), st.sampled_from([(), (1,), (0, 2)]))
def test_exact_matches_brute_force_and_gfd_is_a_lower_bound(
    vs: tuple[list[bytes | None], list[int]], data: bytes, seed: int, context: tuple[int, ...]
) -> None:
    toks, special = vs
    v = ByteVocab(toks, special)
    model = RandomModel(len(toks), seed, extra_cols=2)
    want = brute_exact(toks, special, model, data, context)
    got = byte_prefix_logprob(v, model, data, context=context)
    if want == -math.inf:
        assert got == -math.inf
    else:
        assert got == pytest.approx(want, rel=1e-6, abs=1e-6)
    # one model call per level of the partial-cover tree, each batched
    assert len(model.calls) <= len(data)
    gfd = byte_prefix_logprob(v, model, data, context=context, mode="gfd")
    assert gfd <= got + 1e-9
    g2 = byte_prefix_logprob(v, model, data, context=context, mode="gfd", encode=lambda b: [])
    assert g2 == pytest.approx(gfd, abs=1e-9)  # an empty encoding means greedy


def iid_vocab_and_model(p_a: float) -> tuple[ByteVocab, list[bytes], object]:
    """All strings over {a, b} of length 1..3 as tokens; P(t) = q_len · Π p(c). The byte stream is
    then i.i.d. characters, so P(output starts with x) = Π p(c) exactly."""
    toks = [bytes(s) for n in (1, 2, 3) for s in itertools.product(b"ab", repeat=n)]
    toks.append(b"<eos>")
    q = {1: 0.5, 2: 0.3, 3: 0.2}
    pc = {ord("a"): p_a, ord("b"): 1 - p_a}
    row = np.array([math.log(q[len(t)]) + sum(math.log(pc[c]) for c in t) for t in toks[:-1]] + [-np.inf])
    row = row.astype(np.float32)

    def model(seqs: list[list[int]]) -> np.ndarray:
        return np.tile(row, (len(seqs), 1))

    return ByteVocab(toks, special_ids=[len(toks) - 1]), toks, model


@pytest.mark.parametrize("data", [b"a", b"ab", b"abba", b"babab", b"aaaaaa", b"abbabbab"])
def test_exact_equals_true_marginal_of_known_string_distribution(data: bytes) -> None:
    v, _, model = iid_vocab_and_model(0.3)
    want = sum(math.log(0.3 if c == ord("a") else 0.7) for c in data)
    got = byte_prefix_logprob(v, model, data)  # type: ignore[arg-type]
    assert got == pytest.approx(want, abs=1e-5)
    assert byte_prefix_logprob(v, model, data, mode="gfd") <= got + 1e-9  # type: ignore[arg-type]
    assert byte_prefix_logprob(v, model, data + b"c") == -math.inf  # type: ignore[arg-type]


def test_empty_data_and_torch_output() -> None:
    v, _, model = iid_vocab_and_model(0.5)
    assert byte_prefix_logprob(v, model, b"") == 0.0  # type: ignore[arg-type]
    torch = pytest.importorskip("torch")

    def tmodel(seqs: list[list[int]]) -> object:
        return torch.from_numpy(model(seqs))  # type: ignore[operator]

    assert byte_prefix_logprob(v, tmodel, b"ab") == pytest.approx(2 * math.log(0.5), abs=1e-5)


def test_bad_model_outputs_and_arguments() -> None:
    v, _, model = iid_vocab_and_model(0.5)
    n = len(v)
    with pytest.raises(InvalidArgumentError, match="next_logprobs: must return shape"):
        byte_prefix_logprob(v, lambda s: np.zeros((len(s), n - 1), np.float32), b"ab")
    with pytest.raises(InvalidArgumentError, match="next_logprobs"):
        byte_prefix_logprob(v, lambda s: np.zeros((len(s) + 1, n), np.float32), b"ab")
    with pytest.raises(InvalidArgumentError, match="next_logprobs"):
        byte_prefix_logprob(v, lambda s: np.zeros(n, np.float32), b"ab")
    with pytest.raises(InvalidTypeError, match="next_logprobs"):
        byte_prefix_logprob(v, lambda s: np.zeros((len(s), n), np.int64), b"ab")
    nan = np.zeros((1, n), np.float32)
    nan[0, 3] = np.nan
    with pytest.raises(NonFiniteError, match="next_logprobs"):
        byte_prefix_logprob(v, lambda s: np.tile(nan, (len(s), 1)), b"ab")
    with pytest.raises(NonFiniteError, match="logprobs"):
        step = gfd_prepare(v, [[]], [b"ab"])
        step.score(np.tile(np.where(np.arange(n) == 0, np.nan, 0.0), (len(step.inputs), 1)))
    with pytest.raises(LimitExceededError, match="max_covers"):
        byte_prefix_logprob(v, model, b"ab" * 20, max_covers=50)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="mode"):
        byte_prefix_logprob(v, model, b"ab", mode="fast")  # type: ignore[arg-type]
    with pytest.raises(OutOfRangeError, match="context"):
        byte_prefix_logprob(v, model, b"ab", context=[n])  # type: ignore[arg-type]
    with pytest.raises(OutOfRangeError, match="context"):
        byte_prefix_logprob(v, model, b"ab", context=[-1])  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="data"):
        byte_prefix_logprob(v, model, "ab")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="trailing"):
        gfd_prepare(v, [[], []], [b"a"])
    with pytest.raises(InvalidTypeError, match=r"trailing\[0\]"):
        gfd_prepare(v, [[]], ["a"])  # type: ignore[list-item]


# ---- incremental GFD ------------------------------------------------------------------------------


@settings(max_examples=25)
@given(st.lists(st.lists(st.sampled_from(b"ab"), min_size=0, max_size=3).map(bytes), min_size=1, max_size=6),
       st.integers(1, 5), st.integers(0, 2**16))
def test_incremental_gfd_beams(chunks: list[bytes], window: int, seed: int) -> None:
    """Feed a text chunk by chunk to 3 beams; check the state invariants, that one batched step equals
    per-beam one-shot gfd on the trailing bytes, and that the running total never exceeds exact."""
    toks = [bytes(s) for n in (1, 2, 3) for s in itertools.product(b"ab", repeat=n)]
    v = ByteVocab(toks)
    model = RandomModel(len(toks), seed)
    prompt = [0]
    ctxs = [list(prompt) for _ in range(3)]
    trails = [b""] * 3
    committed = [0.0] * 3
    text = [b""] * 3
    for k, chunk in enumerate(chunks):
        for b in range(3):
            add = chunk[: b + 1] if k % 2 else chunk  # beams diverge
            trails[b] += add
            text[b] += add
        step = gfd_prepare(v, ctxs, trails, window=window)
        assert len(step.row_offsets) == 4
        scores = step.score(model(step.inputs))
        for b in range(3):
            # one-shot gfd of the same trailing bytes after the same context
            one = byte_prefix_logprob(v, model, trails[b], context=ctxs[b], mode="gfd")
            assert scores.logprob[b] == pytest.approx(one, abs=1e-6)
            total = committed[b] + scores.logprob[b]
            if len(text[b]) <= 7:  # the exact cover tree grows exponentially with the length
                exact = byte_prefix_logprob(v, model, text[b], context=prompt)
                assert total <= exact + 1e-6
            # state bookkeeping
            committed[b] += float(scores.committed_logprob[b])
            ctxs[b] = step.contexts[b]
            trails[b] = step.trailing[b]
            assert len(trails[b]) <= window or len(step.committed[b]) == len(step.canonical[b]) - 1
            spelled = b"".join(v.token_bytes(i) or b"" for i in ctxs[b][len(prompt):])
            assert spelled + trails[b] == text[b]
    for b in range(3):
        lp = 0.0
        for j in range(len(prompt), len(ctxs[b])):
            lp += float(model.row(tuple(ctxs[b][:j]))[ctxs[b][j]])
        assert committed[b] == pytest.approx(lp, abs=1e-5)


def test_incremental_gfd_with_real_tokenizer_encoder() -> None:
    tiktoken = pytest.importorskip("tiktoken")
    ranks = {bytes([i]): i for i in range(256)}
    ranks.update({b"he": 256, b"ll": 257, b"hell": 258, b"hello": 259, b" w": 260, b" wo": 261})
    enc = tiktoken.Encoding("tiny", pat_str=r"\s?\S+|\s+", mergeable_ranks=ranks, special_tokens={"<e>": 262})
    v = ByteVocab.from_tokenizer(enc)
    model = RandomModel(len(v), 7)
    step = gfd_prepare(v, [[1], [2]], [b"hello w", "hé".encode()[:-1]])
    assert step.canonical[0] == [259, 260]
    assert step.inputs[: step.row_offsets[1]] == [[1], [1, 259]]
    s = step.score(model(step.inputs))
    assert np.all(np.isfinite(s.logprob))


def test_layout_arrays_reproduce_score() -> None:
    """The documented formula over layout arrays (what a GPU kernel would compute) equals score()."""
    toks = [bytes(s) for n in (1, 2, 3) for s in itertools.product(b"ab", repeat=n)]
    v = ByteVocab(toks)
    model = RandomModel(len(toks), 11)
    step = gfd_prepare(v, [[0], [1, 2], [3]], [b"abbab", b"", b"ba"], window=3)
    lp = model(step.inputs).astype(np.float64)
    lay = step.layout
    srt = v.sorted_ids
    for b in range(3):
        rs, re_ = int(step.row_offsets[b]), int(step.row_offsets[b + 1])
        acc, terms, committed = 0.0, [], 0.0
        for r in range(rs, re_):
            if r - rs == int(lay.n_commit[b]):
                committed = acc
            ids = srt[lay.row_lo[r] : lay.row_hi[r]]
            terms.append(acc + (np.logaddexp.reduce(lp[r, ids]) if len(ids) else -np.inf))
            if lay.row_next[r] >= 0:
                acc += lp[r, lay.row_next[r]]
        s = step.score(model(step.inputs))
        want = np.logaddexp.reduce(terms) if terms else 0.0
        assert s.logprob[b] == pytest.approx(want, abs=1e-6)
        assert s.committed_logprob[b] == pytest.approx(committed, abs=1e-6)
