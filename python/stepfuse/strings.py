"""Text-to-pattern Hamming distances, k-mismatch, approximate distances, sumsets, loop detection.

Implements the engines of Chan, Jin, Vassilevska Williams and Xu, "Faster Algorithms for
Text-to-Pattern Hamming Distances": for a text T (length n) and pattern P (length m),
``HD[i] = |{j < m : T[i + j] != P[j]}|`` for every shift ``0 <= i <= n - m``. Inputs are 1-D numpy
arrays of any integer dtype (any values, including >= 2^63 in uint64), sequences of ints, or
``bytes``/``bytearray``. The work runs in Rust with the GIL released, multi-threaded over the text.
"""

from __future__ import annotations

import math
import operator
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

from stepfuse import _core
from stepfuse.errors import InvalidArgumentError, InvalidTypeError

__all__ = [
    "find_repetition",
    "hamming_distances",
    "hamming_distances_approx",
    "hamming_plan",
    "sumset",
]

Symbols = npt.ArrayLike | bytes | bytearray
HammingMethod = Literal["auto", "counting", "marking", "fft", "bitparallel", "filter"]
SumsetMethod = Literal["auto", "pairs", "radix", "fft", "shift_or"]


def _int(x: object, arg: str) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise InvalidTypeError(f"{arg}: must be an int, got {type(x).__name__}")
    return operator.index(x)


def _float(x: object, arg: str) -> float:
    if isinstance(x, (bool, str, bytes)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise InvalidTypeError(f"{arg}: must be a real number, got {type(x).__name__}")
    return float(x)


def hamming_distances(
    text: Symbols, pattern: Symbols, *, k: int | None = None, method: HammingMethod = "auto"
) -> np.ndarray:
    """Hamming distance between ``pattern`` and every length-m window of ``text``.

    Chan–Jin–Vassilevska Williams–Xu: ``HD[i] = Σ_j [T[i+j] != P[j]]``. ``method`` picks the engine:
    ``"counting"`` (blocked SIMD counting, O(nm)), ``"marking"`` (pattern occurrence lists,
    O(Σ_c occ_T(c)·occ_P(c))), ``"fft"`` (correlation per symbol, O(n log m) each, exact after
    rounding), ``"bitparallel"`` (bit planes + popcount, for small alphabets) or ``"auto"``, which
    assigns each symbol to FFT (heavy) or marking (light) by a cost model and compares that plan
    with whole-text counting and bit-parallel counting (see :func:`hamming_plan`).

    With ``k``, returns ``min(HD, k + 1)``: ``"auto"`` then uses a pigeonhole filter (k + 1 pattern
    pieces, rolling hash) with early-exit verification and falls back to the full computation
    when the filter would not pay; ``"filter"`` forces the filter; other methods clamp.

    Args:
        text: 1-D integer array (any dtype), int sequence or bytes, length n.
        pattern: same kinds, length m >= 1.
        k: mismatch cap (>= 0) or None.
        method: engine name.

    Returns:
        int32 array of length ``n - m + 1`` (empty when the pattern is longer than the text).
    """
    if k is not None:
        k = _int(k, "k")
        if k < 0:
            raise InvalidArgumentError(f"k: must be >= 0, got {k}")
        k = min(k, 2**62)
    return _core.hamming_distances(text, pattern, k, method)


def hamming_plan(text: Symbols, pattern: Symbols) -> str:
    """The engine ``method="auto"`` picks for these inputs (e.g. ``"split(fft=3, marking=980)"``).

    Args:
        text: as in :func:`hamming_distances`.
        pattern: as in :func:`hamming_distances`.
    """
    return _core.hamming_plan(text, pattern)


def hamming_distances_approx(
    text: Symbols, pattern: Symbols, eps: float, *, seed: int, delta: float = 0.01
) -> np.ndarray:
    """(1 ± eps)-approximate Hamming distances by random ±1 projections and median of means.

    Karloff-style estimator: with random signs φ per symbol, ``m - Σ_j φ(T[i+j])φ(P[j])`` is
    unbiased for HD[i] with variance <= HD[i]². Means of ``s = ⌈8/eps²⌉`` FFT correlations fail
    (Chebyshev) with probability <= 1/8; the median of ``r = ⌈ln(1/delta)/0.28125⌉`` means fails
    with probability <= ``delta`` per shift (Hoeffding). Shifts with distance 0 are detected
    exactly (KMP) and reported as exactly 0; other estimates are clamped to [1, m]. Cost
    O(s·r·n log m), independent of the alphabet.

    Args:
        text: as in :func:`hamming_distances`.
        pattern: as in :func:`hamming_distances`.
        eps: relative accuracy in (0, 1).
        seed: non-negative int; equal seeds give identical results at any thread count.
        delta: failure probability per shift in (0, 1).

    Returns:
        float64 array of length ``n - m + 1``.
    """
    eps = _float(eps, "eps")
    delta = _float(delta, "delta")
    if not 0.0 < eps < 1.0:
        raise InvalidArgumentError(f"eps: must lie in (0, 1), got {eps}")
    if not 0.0 < delta < 1.0:
        raise InvalidArgumentError(f"delta: must lie in (0, 1), got {delta}")
    seed = _int(seed, "seed")
    if not 0 <= seed < 2**64:
        raise InvalidArgumentError(f"seed: must lie in [0, 2^64), got {seed}")
    return _core.hamming_distances_approx(text, pattern, eps, seed, delta)


@overload
def sumset(
    a: npt.ArrayLike, b: npt.ArrayLike, *, multiplicities: Literal[False] = ..., method: SumsetMethod = ...
) -> np.ndarray: ...
@overload
def sumset(
    a: npt.ArrayLike, b: npt.ArrayLike, *, multiplicities: Literal[True], method: SumsetMethod = ...
) -> tuple[np.ndarray, np.ndarray]: ...
def sumset(
    a: npt.ArrayLike, b: npt.ArrayLike, *, multiplicities: bool = False, method: SumsetMethod = "auto"
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Sorted distinct sums ``{x + y : x in a, y in b}``, optionally with pair counts.

    Engines (Chan–Jin–Vassilevska Williams–Xu §sumset): ``"pairs"`` (pair enumeration into cache
    tiles of a bitmap/counters, O(|A||B| + U/64)), ``"radix"`` (pair sums radix-sorted, any
    universe), ``"fft"`` (real FFT convolution with exact rounding, O(U log U), U <= 2^25),
    ``"shift_or"`` (OR of shifted bitmaps, O(min(|A|,|B|)·U/64)); ``"auto"`` takes the cheapest
    by a cost model. Negative values are handled by offsetting; U is the range of the sums.

    Args:
        a: 1-D integer array or sequence (duplicates allowed).
        b: same.
        multiplicities: also return ``counts[i] = |{(i1, i2): a[i1] + b[i2] = sums[i]}|``.
        method: engine name.

    Returns:
        int64 ``sums``, or ``(sums, counts)`` (both int64) when ``multiplicities``.
    """
    sums, counts = _core.sumset(a, b, bool(multiplicities), method)
    if multiplicities:
        assert counts is not None
        return sums, counts
    return sums


def find_repetition(tokens: Symbols, window: int, max_mismatch: int = 0) -> int | None:
    """Smallest period d >= 1 at which the last ``window`` tokens repeat (decoding-loop detection).

    Returns the least d with ``HD(tokens[n-w:], tokens[n-w-d:n-d]) <= max_mismatch``: periods up
    to 64 are checked directly with early exit, the rest by k-mismatch search. ``None`` when no
    period qualifies (always when ``window >= len(tokens)``).

    Args:
        tokens: 1-D integer array, int sequence or bytes.
        window: number of trailing tokens compared, >= 1.
        max_mismatch: mismatches allowed, >= 0.
    """
    window = _int(window, "window")
    max_mismatch = _int(max_mismatch, "max_mismatch")
    if window < 1:
        raise InvalidArgumentError(f"window: must be >= 1, got {window}")
    if max_mismatch < 0:
        raise InvalidArgumentError(f"max_mismatch: must be >= 0, got {max_mismatch}")
    window = min(window, 2**62)
    max_mismatch = min(max_mismatch, 2**62)
    return _core.find_repetition(tokens, window, max_mismatch)


def _projection_counts(eps: float, delta: float) -> tuple[int, int]:
    """(s, r) of :func:`hamming_distances_approx` (mirrors the Rust formula; used by tests)."""
    s = math.ceil(8.0 / (eps * eps))
    r = max(1, math.ceil(math.log(1.0 / delta) / 0.28125))
    return s, r + (r % 2 == 0)
