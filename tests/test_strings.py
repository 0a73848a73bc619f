"""Oracle and property tests of stepfuse.strings (Hamming distances, k-mismatch, approx, sumset)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

import stepfuse
from stepfuse import strings
from stepfuse.errors import InvalidArgumentError, InvalidTypeError, StepfuseError

METHODS = ["auto", "counting", "marking", "fft", "bitparallel"]


def oracle(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    if len(p) > len(t):
        return np.zeros(0, dtype=np.int64)
    return (sliding_window_view(t, len(p)) != p).sum(1)


def zipf_text(rng: np.random.Generator, n: int, sigma: int, s: float = 1.0) -> np.ndarray:
    w = 1.0 / np.arange(1, sigma + 1) ** s
    return rng.choice(sigma, size=n, p=w / w.sum())


@st.composite
def text_pattern(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    sigma = draw(st.sampled_from([1, 2, 4, 256, 2**17]))
    n = draw(st.integers(1, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["uniform", "zipf", "periodic"]))
    if kind == "uniform":
        t = rng.integers(0, sigma, n)
    elif kind == "zipf":
        t = zipf_text(rng, n, min(sigma, 5000))
    else:
        period = draw(st.integers(1, 8))
        t = np.resize(rng.integers(0, sigma, period), n)
        flips = rng.random(n) < 0.05
        t[flips] = rng.integers(0, sigma, flips.sum())
    m = draw(st.sampled_from([1, n, None]))
    if m is None:
        m = draw(st.integers(1, n))
    if draw(st.booleans()):
        start = draw(st.integers(0, n - m))
        p = t[start : start + m].copy()
    else:
        p = rng.integers(0, sigma, m)
    dtype = draw(st.sampled_from([np.int64, np.uint64, np.int32]))
    if sigma > 2**16 and dtype == np.int32:
        dtype = np.int64
    return t.astype(dtype), p.astype(dtype)


@given(text_pattern())
@settings(max_examples=60)
def test_every_method_equals_oracle(tp: tuple[np.ndarray, np.ndarray]) -> None:
    t, p = tp
    want = oracle(t, p)
    for method in METHODS:
        got = strings.hamming_distances(t, p, method=method)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want, err_msg=method)


@given(text_pattern(), st.integers(0, 2**40))
@settings(max_examples=40)
def test_relabelling_invariance(tp: tuple[np.ndarray, np.ndarray], salt: int) -> None:
    t, p = tp

    # An injective map onto huge values (uint64 above 2^63) must not change any distance.
    def f(x: np.ndarray) -> np.ndarray:
        return (x.astype(np.uint64) * np.uint64(2654435761) + np.uint64(salt)) | np.uint64(1 << 63)

    np.testing.assert_array_equal(strings.hamming_distances(f(t), f(p)), strings.hamming_distances(t, p))


@given(text_pattern(), st.integers(0, 1000))
@settings(max_examples=40)
def test_pattern_split_additivity(tp: tuple[np.ndarray, np.ndarray], cut: int) -> None:
    t, p = tp
    if len(p) < 2:
        return
    c = 1 + cut % (len(p) - 1)
    whole = strings.hamming_distances(t, p).astype(np.int64)
    left = strings.hamming_distances(t[: len(t) - (len(p) - c)], p[:c])
    right = strings.hamming_distances(t[c:], p[c:])
    np.testing.assert_array_equal(whole, left + right)


@given(text_pattern(), st.integers(0, 12))
@settings(max_examples=60)
def test_k_bounded_is_min(tp: tuple[np.ndarray, np.ndarray], k: int) -> None:
    t, p = tp
    want = np.minimum(oracle(t, p), k + 1)
    for method in ["auto", "filter", "counting", "marking"]:
        np.testing.assert_array_equal(strings.hamming_distances(t, p, k=k, method=method), want)


def test_bytes_and_mixed_inputs() -> None:
    t = b"abracadabra abracadabra"
    p = b"abra"
    want = oracle(np.frombuffer(t, np.uint8), np.frombuffer(p, np.uint8))
    np.testing.assert_array_equal(strings.hamming_distances(t, p), want)
    np.testing.assert_array_equal(strings.hamming_distances(bytearray(t), list(p)), want)
    # -1 (int8) and 2^64 - 1 (uint64) are different integers: they must not match.
    big = np.array([2**64 - 1, 5], dtype=np.uint64)
    neg = np.array([-1, 5], dtype=np.int8)
    np.testing.assert_array_equal(strings.hamming_distances(big, neg), [1])
    np.testing.assert_array_equal(strings.hamming_distances(neg, neg.astype(np.int64)), [0])
    # strided views and every integer dtype are read as their values
    rng = np.random.default_rng(9)
    base = rng.integers(0, 3, 400)
    for dt in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64):
        tv = base.astype(dt)[::2]
        pv = base.astype(dt)[10:30:2]
        np.testing.assert_array_equal(strings.hamming_distances(tv, pv), oracle(tv, pv))
    # unicode text must be encoded by the caller
    with pytest.raises(InvalidTypeError):
        strings.hamming_distances("héllo", b"h")


def test_pattern_longer_than_text_is_empty() -> None:
    out = strings.hamming_distances(np.arange(3), np.arange(5))
    assert out.shape == (0,) and out.dtype == np.int32
    assert strings.hamming_distances(np.arange(3), np.arange(5), k=2).shape == (0,)
    assert strings.hamming_distances_approx(np.arange(3), np.arange(5), 0.5, seed=0).shape == (0,)


def test_long_inputs_cross_blocks_and_threads() -> None:
    rng = np.random.default_rng(1)
    t = (rng.random(150_000) < 0.3).astype(np.int64)
    p = t[7000:9500].copy()
    want = oracle(t, p)
    for method in ["fft", "bitparallel", "auto"]:
        np.testing.assert_array_equal(strings.hamming_distances(t, p, method=method), want, err_msg=method)
    z = zipf_text(rng, 120_000, 4096)
    q = z[500:540]
    want = oracle(z, q)
    for method in METHODS:
        np.testing.assert_array_equal(strings.hamming_distances(z, q, method=method), want, err_msg=method)
    for k in (0, 3, 20):
        np.testing.assert_array_equal(strings.hamming_distances(z, q, k=k), np.minimum(want, k + 1))


def test_fft_exact_at_large_counts() -> None:
    # One symbol everywhere: every correlation equals m = 2^14 and must round exactly.
    t = np.zeros(70_000, dtype=np.int64)
    t[::9973] = 1
    p = np.zeros(2**14, dtype=np.int64)
    np.testing.assert_array_equal(strings.hamming_distances(t, p, method="fft"), oracle(t, p))


def test_plan_follows_the_input() -> None:
    rng = np.random.default_rng(2)
    uniform = rng.integers(0, 2**16, 20_000)
    assert strings.hamming_plan(uniform, uniform[:300]).startswith("split")
    binary = rng.integers(0, 2, 20_000)
    assert strings.hamming_plan(binary, binary[:300]) in ("bitparallel", "counting")


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda: strings.hamming_distances([1, 2], []), InvalidArgumentError),
        (lambda: strings.hamming_distances(np.array([1.0, 2.0]), [1]), InvalidTypeError),
        (lambda: strings.hamming_distances(np.zeros((2, 2), int), [1]), InvalidArgumentError),
        (lambda: strings.hamming_distances(np.array([True]), [1]), InvalidTypeError),
        (lambda: strings.hamming_distances([1, 2], [1], k=-1), InvalidArgumentError),
        (lambda: strings.hamming_distances([1, 2], [1], method="nope"), InvalidArgumentError),
        (lambda: strings.hamming_distances([1, 2], [1], method="filter"), InvalidArgumentError),
        (lambda: strings.hamming_distances_approx([1, 2], [1], 0.0, seed=0), InvalidArgumentError),
        (lambda: strings.hamming_distances_approx([1, 2], [1], 1.0, seed=0), InvalidArgumentError),
        (lambda: strings.hamming_distances_approx([1, 2], [1], float("nan"), seed=0), InvalidArgumentError),
        (lambda: strings.hamming_distances_approx([1, 2], [1], 0.5, seed=-1), InvalidArgumentError),
        (lambda: strings.hamming_distances_approx([1, 2], [1], 0.5, seed=0, delta=1.5), InvalidArgumentError),
        (lambda: strings.hamming_distances_approx([1, 2], [], 0.5, seed=0), InvalidArgumentError),
        (lambda: strings.sumset(np.array([2**63], np.uint64), [1]), InvalidArgumentError),
        (lambda: strings.sumset([2**62 * 2 - 1], [1]), InvalidArgumentError),
        (lambda: strings.sumset([1.5], [1]), InvalidTypeError),
        (lambda: strings.sumset([1], [1], method="nope"), InvalidArgumentError),
        (lambda: strings.sumset([0, 10**12], [0, 10**12], method="fft"), InvalidArgumentError),
        (lambda: strings.find_repetition([1, 2, 3], 0), InvalidArgumentError),
        (lambda: strings.find_repetition([1, 2, 3], 2, -1), InvalidArgumentError),
    ],
)
def test_bad_input_raises_stepfuse_errors(call, exc) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(exc):
        call()


junk = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.binary(max_size=20),
    st.lists(st.integers(-(2**65), 2**65), max_size=6),
    st.lists(st.floats(allow_nan=True), max_size=4),
    st.builds(
        np.zeros,
        st.sampled_from([(0,), (3,), (2, 2)]),
        st.sampled_from([np.int8, np.uint64, np.float32, bool]),
    ),
)


@given(junk, junk, junk, st.sampled_from(["auto", "fft", "filter", "radix", "x"]))
@settings(max_examples=200)
def test_no_panic_on_malformed_input(a: object, b: object, c: object, method: str) -> None:
    calls = [
        lambda: strings.hamming_distances(a, b, k=c, method=method),  # type: ignore[arg-type]
        lambda: strings.hamming_distances(a, b),  # type: ignore[arg-type]
        lambda: strings.hamming_plan(a, b),  # type: ignore[arg-type]
        lambda: strings.hamming_distances_approx(a, b, c, seed=1),  # type: ignore[arg-type]
        lambda: strings.hamming_distances_approx(a, b, 0.9, seed=c, delta=0.5),  # type: ignore[arg-type]
        lambda: strings.sumset(a, b, multiplicities=True, method=method),  # type: ignore[arg-type]
        lambda: strings.find_repetition(a, b, c),  # type: ignore[arg-type]
    ]
    for call in calls:
        try:
            call()
        except (StepfuseError, TypeError, ValueError, OverflowError):
            pass  # a PanicException is a BaseException and fails the test


# ---- approximation --------------------------------------------------------------------------


def test_approx_exact_zero_and_range() -> None:
    rng = np.random.default_rng(3)
    t = np.resize(rng.integers(0, 5, 17), 400)
    p = t[:40].copy()
    want = oracle(t, p)
    got = strings.hamming_distances_approx(t, p, 0.5, seed=11, delta=0.2)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got == 0, want == 0)
    assert np.all((got >= 1) | (want == 0)) and np.all(got <= len(p))
    again = strings.hamming_distances_approx(t, p, 0.5, seed=11, delta=0.2)
    np.testing.assert_array_equal(got, again)


def test_approx_failure_rate_over_seeds() -> None:
    """Per shift, failures over independent seeds are Binomial(N, q) with q <= delta.

    With N seeds, the threshold t satisfies P(Binomial(N, delta) >= t) <= 1e-6 / shifts, so a
    correct implementation fails this test with probability below 1e-6 (union bound).
    """
    from scipy.stats import binom

    eps, delta, n_seeds = 0.5, 0.2, 60
    rng = np.random.default_rng(4)
    # A single mismatch class (symbols 0 vs 1 only) is the worst case for the variance bound.
    t = (rng.random(160) < 0.3).astype(np.int64)
    t[100:130] = rng.integers(0, 7, 30)
    p = np.concatenate([np.zeros(20, np.int64), rng.integers(0, 7, 12)])
    want = oracle(t, p).astype(np.float64)
    fails = np.zeros(len(want), dtype=np.int64)
    for seed in range(n_seeds):
        got = strings.hamming_distances_approx(t, p, eps, seed=seed, delta=delta)
        fails += np.abs(got - want) > eps * want
    threshold = binom.isf(1e-6 / len(want), n_seeds, delta)
    assert fails.max() <= threshold, (fails.max(), threshold)
    assert fails.sum() <= delta * fails.size


def test_projection_counts_formula() -> None:
    s, r = strings._projection_counts(0.5, 0.01)
    assert (s, r) == (32, 17)


# ---- sumset ---------------------------------------------------------------------------------


@given(
    st.lists(st.integers(-(2**40), 2**40), min_size=0, max_size=40),
    st.lists(st.integers(-1000, 1000), min_size=0, max_size=40),
    st.sampled_from(["auto", "pairs", "radix", "fft", "shift_or"]),
    st.booleans(),
)
@settings(max_examples=80)
def test_sumset_vs_numpy(a: list[int], b: list[int], method: str, small: bool) -> None:
    if small:
        a = [x % 5000 for x in a]
    aa, bb = np.array(a, np.int64), np.array(b, np.int64)
    try:
        sums, counts = strings.sumset(aa, bb, multiplicities=True, method=method)  # type: ignore[arg-type]
    except stepfuse.LimitExceededError:
        assert method in ("fft", "shift_or", "pairs")
        return
    want = np.unique(np.add.outer(aa, bb)) if len(a) and len(b) else np.zeros(0, np.int64)
    np.testing.assert_array_equal(sums, want)
    c = Counter(x + y for x in a for y in b)
    np.testing.assert_array_equal(counts, [c[s] for s in want.tolist()])
    np.testing.assert_array_equal(strings.sumset(aa, bb, method=method), want)  # type: ignore[arg-type]


def test_sumset_large_universe_sparse() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(-(10**15), 10**15, 300)
    b = rng.integers(0, 10**12, 200)
    np.testing.assert_array_equal(strings.sumset(a, b), np.unique(np.add.outer(a, b)))
    a = rng.integers(0, 2 * 10**5, 1200)
    b = rng.integers(0, 2 * 10**5, 1200)
    for method in ("auto", "fft", "pairs"):
        np.testing.assert_array_equal(strings.sumset(a, b, method=method), np.unique(np.add.outer(a, b)))


# ---- repetition -----------------------------------------------------------------------------


def repetition_oracle(t: np.ndarray, w: int, k: int) -> int | None:
    n = len(t)
    for d in range(1, n - w + 1):
        if (t[n - w :] != t[n - w - d : n - d]).sum() <= k:
            return d
    return None


@given(
    st.integers(0, 2**32 - 1), st.integers(1, 400), st.integers(1, 60), st.integers(0, 4), st.integers(1, 120)
)
@settings(max_examples=80)
def test_find_repetition_vs_oracle(seed: int, n: int, w: int, k: int, period: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.resize(rng.integers(0, 6, period), n)
    noise = rng.random(n) < 0.03
    t[noise] = rng.integers(0, 6, noise.sum())
    assert strings.find_repetition(t, w, k) == repetition_oracle(t, w, k)


def test_find_repetition_bytes_and_reexport() -> None:
    assert stepfuse.find_repetition(b"the cat sat. the cat sat. the cat", 10) == 13
    assert "hamming_distances" in stepfuse.__all__
