"""What a user plugs into a search: a proposer of next steps, a scorer of partial solutions, and the
one step splitter both share.

A *state* is a problem plus the reasoning steps taken so far. A proposer maps states to candidate
next steps; a scorer maps states to one score per step (a process reward model, Lightman et al.;
Snell et al. §3), which :func:`aggregate` reduces to one value (``min``, ``last``, ``mean``, ``prod``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from stepfuse.errors import InvalidArgumentError, InvalidTypeError, NonFiniteError

Aggregation = Literal["min", "last", "mean", "prod"]
AGGREGATIONS: tuple[str, ...] = ("min", "last", "mean", "prod")


@dataclass(frozen=True)
class Step:
    """One proposed reasoning step.

    ``text`` excludes the delimiter; ``token_ids`` (optional) are the generated ids; ``logprob`` is the
    step's total natural-log probability under the proposer (used as the MCTS prior); ``terminal``
    marks a step that ends the solution.
    """

    text: str
    token_ids: tuple[int, ...] | None = None
    logprob: float = 0.0
    terminal: bool = False

    @property
    def num_tokens(self) -> int:
        """Generated tokens: ``len(token_ids)`` when known, else the whitespace word count (>= 1)."""
        if self.token_ids is not None:
            return len(self.token_ids)
        return max(1, len(self.text.split()))


@dataclass(frozen=True)
class State:
    """A problem and the steps taken so far."""

    problem: str
    steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepSplitter:
    """Joins steps into text and splits text into steps, identically for proposer and scorer.

    The default delimiter is a blank line. A step may not contain the delimiter nor be blank, so
    ``split(join(steps)) == steps`` always holds and step counts can never disagree.
    """

    delimiter: str = "\n\n"

    def __post_init__(self) -> None:
        if not isinstance(self.delimiter, str) or not self.delimiter:
            raise InvalidArgumentError("delimiter: must be a non-empty string")

    def split(self, text: str) -> list[str]:
        """Steps of ``text`` (blank pieces dropped)."""
        return [s for s in text.split(self.delimiter) if s.strip()]

    def join(self, steps: Sequence[str]) -> str:
        """Steps joined by the delimiter."""
        return self.delimiter.join(steps)

    def prompt(self, state: State) -> str:
        """The text a proposer continues: problem, delimiter, each step followed by the delimiter."""
        return state.problem + self.delimiter + "".join(s + self.delimiter for s in state.steps)

    def check_step(self, text: str) -> None:
        """Raise when ``text`` cannot be a step (blank, or contains the delimiter)."""
        if not text.strip():
            raise InvalidArgumentError("step: a proposed step is blank")
        if self.delimiter in text:
            raise InvalidArgumentError(f"step: {text[:40]!r} contains the step delimiter {self.delimiter!r}")


@runtime_checkable
class Proposer(Protocol):
    """Proposes ``n`` candidate next steps for every state (one batched model call)."""

    def propose(self, states: Sequence[State], n: int) -> list[list[Step]]: ...


@runtime_checkable
class Scorer(Protocol):
    """Scores every step of every state: ``len(result[i]) == len(states[i].steps)``."""

    def score(self, states: Sequence[State]) -> list[list[float]]: ...


def check_aggregation(how: str) -> None:
    """Raise unless ``how`` is one of min/last/mean/prod."""
    if how not in AGGREGATIONS:
        raise InvalidArgumentError(f"aggregation: must be one of {AGGREGATIONS}, got {how!r}")


def aggregate(step_scores: Sequence[Sequence[float]], how: str = "last") -> np.ndarray:
    """Reduce per-step scores to one value per state (float64[B]).

    ``min`` (weakest step, Lightman et al.), ``last`` (the final step's score, Snell et al.),
    ``mean``, ``prod`` (product of step correctness probabilities). A state with no steps gets 0.
    """
    check_aggregation(how)
    lens = np.fromiter((len(s) for s in step_scores), dtype=np.int64, count=len(step_scores))
    flat = np.fromiter((x for s in step_scores for x in s), dtype=np.float64, count=int(lens.sum()))
    if not np.isfinite(flat).all():
        raise NonFiniteError("scores: scorer returned NaN or inf")
    out = np.zeros(len(lens), dtype=np.float64)
    has = lens > 0
    if not has.any():
        return out
    starts = (np.cumsum(lens) - lens)[has]
    if how == "min":
        out[has] = np.minimum.reduceat(flat, starts)
    elif how == "last":
        out[has] = flat[starts + lens[has] - 1]
    elif how == "mean":
        out[has] = np.add.reduceat(flat, starts) / lens[has]
    else:
        out[has] = np.multiply.reduceat(flat, starts)
    return out


@dataclass
class Usage:
    """Compute spent on one problem: batched calls it took part in, tokens generated and read."""

    proposer_calls: int = 0
    scorer_calls: int = 0
    generated_tokens: int = 0
    scored_tokens: int = 0
    proposed_steps: int = 0
    scored_states: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.proposer_calls + other.proposer_calls,
            self.scorer_calls + other.scorer_calls,
            self.generated_tokens + other.generated_tokens,
            self.scored_tokens + other.scored_tokens,
            self.proposed_steps + other.proposed_steps,
            self.scored_states + other.scored_states,
        )


@dataclass
class Candidate:
    """One solution found by a search: its steps, aggregated score, tree node, extracted answer."""

    steps: tuple[str, ...]
    score: float
    node: int = -1
    terminal: bool = True
    answer: str | None = None

    def text(self, splitter: StepSplitter | None = None) -> str:
        """Steps joined by the splitter's delimiter."""
        return (splitter or StepSplitter()).join(self.steps)


@dataclass
class SearchResult:
    """Outcome of a search on one problem.

    ``tree`` is the search forest (shared by every problem of one ``run_batch``) and ``root`` this
    problem's root in it; ``candidates`` are sorted best first.
    """

    best: Candidate | None
    candidates: list[Candidate]
    tree: object | None
    usage: Usage = field(default_factory=Usage)
    root: int = 0


def validate_proposals(
    proposals: object, n_states: int, n: int, splitter: StepSplitter, exact: bool = False
) -> list[list[Step]]:
    """Check a proposer's output: one non-empty list of Steps per state, each a valid step."""
    if not isinstance(proposals, list) or len(proposals) != n_states:
        got = len(proposals) if isinstance(proposals, list) else type(proposals).__name__
        raise InvalidArgumentError(f"proposals: expected a list of {n_states} lists, got {got}")
    for i, steps in enumerate(proposals):
        if not isinstance(steps, list) or not steps:
            raise InvalidArgumentError(f"proposals[{i}]: empty proposal (need 1..{n} steps)")
        if len(steps) > n or (exact and len(steps) != n):
            raise InvalidArgumentError(f"proposals[{i}]: {len(steps)} steps for n={n}")
        for s in steps:
            if not isinstance(s, Step):
                raise InvalidTypeError(f"proposals[{i}]: expected Step, got {type(s).__name__}")
            splitter.check_step(s.text)
            if not np.isfinite(s.logprob) and s.logprob != -np.inf:
                raise NonFiniteError(f"proposals[{i}]: step logprob {s.logprob} is NaN or +inf")
    return proposals  # type: ignore[return-value]


def validate_scores(scores: object, states: Sequence[State]) -> list[list[float]]:
    """Check a scorer's output: one score per step of every state."""
    if not isinstance(scores, (list, tuple)) or len(scores) != len(states):
        got = len(scores) if isinstance(scores, (list, tuple)) else type(scores).__name__
        raise InvalidArgumentError(f"scores: expected {len(states)} score lists, got {got}")
    for i, (s, st) in enumerate(zip(scores, states)):
        if len(s) != len(st.steps):
            raise InvalidArgumentError(
                f"scores[{i}]: {len(s)} scores for a state with {len(st.steps)} steps (must be equal)"
            )
    return list(scores)  # type: ignore[arg-type]
