"""Benchmarks of stepfuse.strings at the sizes of the issue: n = 10^6, m = 10^3, alphabet 2^16.

Baselines: numpy naive (one vectorized comparison per pattern position), scipy FFT correlation
per symbol (timed on a subset of the pattern's symbols and extrapolated to all of them; reported
in ``info``), our own counting engine (``auto`` must stay within 1.1x of it), and numpy FFT
convolution for sumsets.
"""

from __future__ import annotations

import time

import numpy as np

from harness import Case, bench, time_callable
from stepfuse import strings

N, M, SIGMA = 1_000_000, 1_000, 2**16


def _text(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        t = rng.integers(0, SIGMA, N, dtype=np.int64)
    else:
        w = 1.0 / np.arange(1, SIGMA + 1)
        t = rng.choice(SIGMA, size=N, p=w / w.sum()).astype(np.int64)
    start = int(rng.integers(0, N - M))
    return t, t[start : start + M].copy()


def numpy_naive(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    s = len(t) - len(p) + 1
    acc = np.zeros(s, dtype=np.int32)
    for j in range(len(p)):
        acc += t[j : j + s] != p[j]
    return acc


def scipy_fft_symbols(t: np.ndarray, p: np.ndarray, symbols: np.ndarray) -> np.ndarray:
    from scipy import fft

    s = len(t) - len(p) + 1
    n = fft.next_fast_len(len(t) + len(p) - 1, real=True)
    matches = np.zeros(s)
    for c in symbols:
        a = fft.rfft((t == c).astype(np.float64), n)
        b = fft.rfft((p[::-1] == c).astype(np.float64), n)
        matches += fft.irfft(a * b, n)[len(p) - 1 : len(p) - 1 + s]
    return len(p) - np.rint(matches)


def _scipy_extrapolated(t: np.ndarray, p: np.ndarray, k: int = 8) -> tuple[float, int]:
    symbols = np.unique(p)
    subset = symbols[:k]
    tm = time_callable(lambda: scipy_fft_symbols(t, p, subset), repeats=3, min_sample_s=0.0)
    return tm.median_s * len(symbols) / len(subset), len(symbols)


def _hd_case(kind: str) -> Case:
    t, p = _text(kind)
    ours = strings.hamming_distances(t, p)
    assert np.array_equal(ours, numpy_naive(t, p)), "auto disagrees with numpy"
    est, n_sym = _scipy_extrapolated(t, p)
    ours_s = time_callable(lambda: strings.hamming_distances(t, p), repeats=3).median_s
    return Case(
        ours=lambda: strings.hamming_distances(t, p),
        baselines={
            "numpy naive": lambda: numpy_naive(t, p),
            "stepfuse counting": lambda: strings.hamming_distances(t, p, method="counting"),
        },
        info={
            "auto plan": strings.hamming_plan(t, p),
            f"scipy FFT per symbol, extrapolated from 8 of {n_sym} symbols": f"{est:.3g} s",
            "ratio vs scipy FFT (extrapolated)": f"{est / ours_s:.1f}x",
        },
        baseline_repeats=3,
    )


@bench("strings/hd-uniform-n1e6-m1e3", target=">= 30x numpy naive; >= 0.91x stepfuse counting")
def _hd_uniform() -> Case:
    return _hd_case("uniform")


@bench("strings/hd-zipf-n1e6-m1e3", target=">= 8x numpy naive; >= 0.91x stepfuse counting")
def _hd_zipf() -> Case:
    return _hd_case("zipf")


def _k_case(kind: str, k: int) -> Case:
    t, p = _text(kind, seed=1)
    full = strings.hamming_distances(t, p)
    assert np.array_equal(strings.hamming_distances(t, p, k=k), np.minimum(full, k + 1))
    return Case(
        ours=lambda: strings.hamming_distances(t, p, k=k),
        baselines={"stepfuse full distances": lambda: strings.hamming_distances(t, p)},
        info={"shifts with HD <= k": int((full <= k).sum())},
    )


for _kind in ("uniform", "zipf"):
    for _k in (8, 64):

        def _make(kind: str = _kind, k: int = _k) -> Case:
            return _k_case(kind, k)

        bench(f"strings/kmismatch-{_kind}-k{_k}", target="> 1x full computation")(_make)


def numpy_fft_sumset(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lo_a, lo_b = int(a.min()), int(b.min())
    fa = np.zeros(int(a.max()) - lo_a + 1)
    fb = np.zeros(int(b.max()) - lo_b + 1)
    fa[a - lo_a] = 1.0
    fb[b - lo_b] = 1.0
    n = 1 << int(len(fa) + len(fb) - 2).bit_length()
    conv = np.fft.irfft(np.fft.rfft(fa, n) * np.fft.rfft(fb, n), n)[: len(fa) + len(fb) - 1]
    return np.flatnonzero(np.rint(conv) > 0) + lo_a + lo_b


for _u, _s, _target in (
    (10**6, 10**3, ">= 40x numpy FFT (s^2/U = 1)"),
    (10**7, 3162, ">= 40x numpy FFT (s^2/U = 1)"),
    (10**6, 10**4, ">= 1x numpy FFT (dense, s^2/U = 100)"),
):

    def _make_sumset(u: int = _u, s: int = _s) -> Case:
        rng = np.random.default_rng(u + s)
        a = rng.choice(u, s, replace=False).astype(np.int64)
        b = rng.choice(u, s, replace=False).astype(np.int64)
        assert np.array_equal(strings.sumset(a, b), numpy_fft_sumset(a, b))
        return Case(
            ours=lambda: strings.sumset(a, b),
            baselines={"numpy FFT convolution": lambda: numpy_fft_sumset(a, b)},
            baseline_repeats=3,
        )

    bench(f"strings/sumset-U{_u:.0e}-s{_s}", target=_target)(_make_sumset)


@bench("strings/approx-n1e5-m1e3-eps0.5", target="(info) cost of the (1±eps) estimate vs exact")
def _approx() -> Case:
    t, p = _text("uniform")
    t = t[:100_000]
    t0 = time.perf_counter()
    strings.hamming_distances_approx(t, p, 0.5, seed=0, delta=0.1)
    first = time.perf_counter() - t0
    return Case(
        ours=lambda: strings.hamming_distances_approx(t, p, 0.5, seed=0, delta=0.1),
        baselines={"stepfuse exact auto": lambda: strings.hamming_distances(t, p)},
        info={"projections (s, r)": strings._projection_counts(0.5, 0.1), "first call s": round(first, 3)},
        repeats=1,
    )


@bench("strings/find-repetition-n1e5-w64", target="> 1x numpy naive scan (loop at d=1000)")
def _repetition() -> Case:
    rng = np.random.default_rng(7)
    t = rng.integers(0, 50_000, 100_000)
    t[-3000:] = np.resize(t[-3000:-2000], 3000)  # a loop of period 1000 at the end
    t[-10] += 1  # with one mismatch

    def naive() -> int | None:
        n, w = len(t), 64
        tail = t[n - w :]
        for d in range(1, n - w + 1):
            if (tail != t[n - w - d : n - d]).sum() <= 1:
                return d
        return None

    assert strings.find_repetition(t, 64, 1) == naive()
    return Case(ours=lambda: strings.find_repetition(t, 64, 1), baselines={"numpy naive scan": naive})
