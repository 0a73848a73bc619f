"""stepfuse.search: test-time search over reasoning steps.

The :class:`SearchTree` arena (Rust) holds nodes, priors, visits, values and virtual loss; the
strategies here (best-of-N, voting, step beam search with lookahead, DVTS, best-first, MCTS) drive it
with batched calls to a :class:`Proposer` and a :class:`Scorer`. The HuggingFace backend lives in
``stepfuse.search.hf`` (imports torch lazily).
"""

from __future__ import annotations

from stepfuse._core import SearchTree
from stepfuse.search.allocation import (
    ComputeOptimalPolicy,
    difficulty_bins,
    predicted_pass_rates,
    run_compute_optimal,
)
from stepfuse.search.pairs import PreferencePair, preference_pairs
from stepfuse.search.protocols import (
    Candidate,
    Proposer,
    Scorer,
    SearchResult,
    State,
    Step,
    StepSplitter,
    Usage,
    aggregate,
)
from stepfuse.search.render import render_tree, tree_svg
from stepfuse.search.strategies import DVTS, MCTS, BeamSearch, BestFirst, BestOfN, Strategy
from stepfuse.search.voting import (
    Vote,
    complexity_vote,
    extract_answer,
    majority_vote,
    vote_batch,
    weighted_vote,
)

__all__ = [
    "DVTS",
    "MCTS",
    "BeamSearch",
    "BestFirst",
    "BestOfN",
    "Candidate",
    "ComputeOptimalPolicy",
    "PreferencePair",
    "Proposer",
    "Scorer",
    "SearchResult",
    "SearchTree",
    "State",
    "Step",
    "StepSplitter",
    "Strategy",
    "Usage",
    "Vote",
    "aggregate",
    "complexity_vote",
    "difficulty_bins",
    "extract_answer",
    "majority_vote",
    "predicted_pass_rates",
    "preference_pairs",
    "render_tree",
    "run_compute_optimal",
    "tree_svg",
    "vote_batch",
    "weighted_vote",
]
