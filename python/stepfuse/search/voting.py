"""Answer voting over sampled solutions, tallied in Rust.

``majority_vote`` is self-consistency (Wang et al. 2023); ``weighted_vote`` sums verifier scores per
answer (Li et al. 2023; Snell et al. 2024 "best-of-N weighted"); ``complexity_vote`` votes among the
``top`` chains with the most steps (Fu et al. 2023, complexity-based prompting). Answers are compared
after ``normalize`` (a canonical key) or, slower, clustered by a pairwise ``equivalent`` predicate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from stepfuse import _core
from stepfuse.errors import InvalidArgumentError, InvalidTypeError

_BOXED = re.compile(r"\\boxed\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
_ANSWER = re.compile(r"answer(?: is)?\s*[:=]?\s*(.+)", re.IGNORECASE)


def extract_answer(text: str) -> str | None:
    """Default answer extraction: the last ``\\boxed{..}``, else what follows the last "answer",
    else the last non-blank line; None for blank text."""
    boxed = _BOXED.findall(text)
    if boxed:
        return boxed[-1].strip()
    matches = _ANSWER.findall(text)
    if matches:
        return matches[-1].strip().rstrip(".")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else None


@dataclass(slots=True)
class Vote:
    """A vote's outcome: the winning answer, the index of its first occurrence, its weight and count."""

    answer: str | None
    index: int
    weight: float
    count: int


def _keys(
    answers: Sequence[str | None],
    normalize: Callable[[str], str] | None,
    equivalent: Callable[[str, str], bool] | None,
) -> list[str | None]:
    if normalize is not None and equivalent is not None:
        raise InvalidArgumentError("normalize/equivalent: give at most one")
    if equivalent is None:
        if normalize is None:
            return list(answers)
        return [None if a is None else normalize(a) for a in answers]
    reps: list[str] = []
    out: list[str | None] = []
    for a in answers:
        if a is None:
            out.append(None)
            continue
        for j, r in enumerate(reps):
            if equivalent(a, r):
                out.append(str(j))
                break
        else:
            reps.append(a)
            out.append(str(len(reps) - 1))
    return out


def vote_batch(
    answers: Sequence[Sequence[str | None]],
    *,
    weights: Sequence[Sequence[float]] | None = None,
    complexity: Sequence[Sequence[float]] | None = None,
    top: int | None = None,
    normalize: Callable[[str], str] | None = None,
    equivalent: Callable[[str, str], bool] | None = None,
) -> list[Vote]:
    """Vote once per problem over ``answers[p]`` (None = no answer), tallied in one Rust call.

    ``weights[p][i]`` (default 1) weight the votes; with ``complexity`` and ``top`` only the ``top``
    most complex answers per problem vote. Winner: largest weight, then most votes, then earliest.
    ``normalize`` maps an answer to its canonical key; ``equivalent`` clusters answers pairwise
    (quadratic, per problem).
    """
    if isinstance(answers, str):
        raise InvalidTypeError("answers: must be a sequence of sequences of str, got str")
    lens = np.array([len(a) for a in answers], dtype=np.int64)
    offsets = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    keys = answers if normalize is None and equivalent is None else [_keys(a, normalize, equivalent) for a in answers]

    def _flat(name: str, v: Sequence[Sequence[float]] | None) -> np.ndarray | None:
        if v is None:
            return None
        if len(v) != len(answers) or any(len(x) != n for x, n in zip(v, lens.tolist())):
            raise InvalidArgumentError(f"{name}: must have one value per answer of every problem")
        if not len(v):
            return np.zeros(0)
        return np.concatenate([np.asarray(x, dtype=np.float64).reshape(-1) for x in v])

    if top is not None and complexity is None:
        raise InvalidArgumentError("top: needs complexity")
    idx, wt, cnt = _core._vote(
        keys, weights=_flat("weights", weights), complexity=_flat("complexity", complexity), top=top
    )
    starts = offsets.tolist()
    return [
        Vote(answers[p][i - starts[p]], i - starts[p], w, c) if i >= 0 else Vote(None, -1, w, c)
        for p, (i, w, c) in enumerate(zip(idx.tolist(), wt.tolist(), cnt.tolist()))
    ]


def majority_vote(
    answers: Sequence[str | None],
    *,
    normalize: Callable[[str], str] | None = None,
    equivalent: Callable[[str, str], bool] | None = None,
) -> Vote:
    """Most frequent answer (self-consistency). ``index`` is its first position in ``answers``."""
    return vote_batch([answers], normalize=normalize, equivalent=equivalent)[0]


def weighted_vote(
    answers: Sequence[str | None],
    weights: Sequence[float],
    *,
    normalize: Callable[[str], str] | None = None,
    equivalent: Callable[[str, str], bool] | None = None,
) -> Vote:
    """Answer with the largest summed weight (e.g. verifier scores)."""
    return vote_batch([answers], weights=[weights], normalize=normalize, equivalent=equivalent)[0]


def complexity_vote(
    answers: Sequence[str | None],
    num_steps: Sequence[int],
    top: int,
    *,
    normalize: Callable[[str], str] | None = None,
    equivalent: Callable[[str, str], bool] | None = None,
) -> Vote:
    """Majority vote among the ``top`` chains with the most steps (Fu et al. 2023)."""
    if top < 1:
        raise InvalidArgumentError(f"top: must be >= 1, got {top}")
    return vote_batch(
        [answers], complexity=[[float(x) for x in num_steps]], top=top, normalize=normalize, equivalent=equivalent
    )[0]
