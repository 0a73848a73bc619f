"""Compute-optimal test-time allocation (Snell et al. 2024, §3.2): bin problems by estimated
difficulty (e.g. the pass rate of a few samples), then per bin pick the strategy and budget that
scored best on a dev set, from a table the user measured, under a budget cap."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from stepfuse.errors import InvalidArgumentError, NonFiniteError
from stepfuse.search.protocols import SearchResult


def predicted_pass_rates(results: Sequence[SearchResult]) -> np.ndarray:
    """Model-predicted difficulty (Snell et al. §3.2): per problem, the mean verifier score of its
    sampled solutions (e.g. from ``BestOfN(n=16).run_batch``), clipped to [0, 1] (float64[P]).
    Problems without candidates get 0 (hardest)."""
    out = np.zeros(len(results), dtype=np.float64)
    for i, r in enumerate(results):
        if r.candidates:
            out[i] = float(np.mean([c.score for c in r.candidates]))
    if not np.isfinite(out).all():
        raise NonFiniteError("results: candidate scores must be finite")
    return np.clip(out, 0.0, 1.0)


def difficulty_bins(pass_rates: Sequence[float] | np.ndarray, n_bins: int = 5) -> np.ndarray:
    """Difficulty bin per problem: 0 = easiest (pass rate near 1) .. ``n_bins - 1`` = hardest (int64)."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise InvalidArgumentError(f"n_bins: must be an int >= 1, got {n_bins!r}")
    r = np.asarray(pass_rates, dtype=np.float64).reshape(-1)
    if not np.isfinite(r).all():
        raise NonFiniteError("pass_rates: must be finite")
    if ((r < 0) | (r > 1)).any():
        raise InvalidArgumentError("pass_rates: must lie in [0, 1]")
    return np.minimum(((1.0 - r) * n_bins).astype(np.int64), n_bins - 1)


@dataclass(frozen=True)
class ComputeOptimalPolicy:
    """``table[bin][(strategy, budget)] = accuracy`` measured on a dev set."""

    table: Mapping[int, Mapping[tuple[str, int], float]]

    def choose(self, difficulty_bin: int, max_budget: int) -> tuple[str, int]:
        """Best (strategy, budget) for a bin with budget <= ``max_budget`` (ties: smaller budget, then name)."""
        if max_budget < 1:
            raise InvalidArgumentError(f"max_budget: must be >= 1, got {max_budget}")
        row = self.table.get(difficulty_bin)
        if not row:
            raise InvalidArgumentError(f"difficulty_bin: no table entry for bin {difficulty_bin}")
        ok = [(acc, -b, name) for (name, b), acc in row.items() if b <= max_budget]
        if not ok:
            raise InvalidArgumentError(f"max_budget: no entry of bin {difficulty_bin} fits budget {max_budget}")
        for acc, _, _ in ok:
            if not np.isfinite(acc):
                raise NonFiniteError("table: accuracies must be finite")
        best = None
        for acc, nb, name in sorted(ok, key=lambda x: x[2]):
            if best is None or (acc, nb) > (best[0], best[1]):
                best = (acc, nb, name)
        assert best is not None
        return best[2], -best[1]

    def allocate(self, bins: Sequence[int] | np.ndarray, max_budget: int) -> list[tuple[str, int]]:
        """(strategy, budget) per problem."""
        return [self.choose(int(b), max_budget) for b in np.asarray(bins).reshape(-1)]


def run_compute_optimal(
    problems: Sequence[str],
    bins: Sequence[int] | np.ndarray,
    policy: ComputeOptimalPolicy,
    factories: Mapping[str, Callable[[int], object]],
    max_budget: int,
) -> list[SearchResult]:
    """Run each problem with its bin's chosen strategy; problems sharing a choice run as one batch.
    ``factories[name](budget)`` builds a strategy with ``run_batch``."""
    if len(bins) != len(problems):
        raise InvalidArgumentError(f"bins: {len(bins)} bins for {len(problems)} problems")
    plan = policy.allocate(bins, max_budget)
    out: list[SearchResult | None] = [None] * len(problems)
    for choice in sorted(set(plan)):
        name, budget = choice
        if name not in factories:
            raise InvalidArgumentError(f"factories: no factory for strategy {name!r}")
        idx = [i for i, c in enumerate(plan) if c == choice]
        strat = factories[name](budget)
        res = strat.run_batch([problems[i] for i in idx])  # type: ignore[attr-defined]
        for i, r in zip(idx, res):
            out[i] = r
    return out  # type: ignore[return-value]
