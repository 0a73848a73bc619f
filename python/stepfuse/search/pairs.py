"""Step-level preference pairs from a finished search tree (Tree-PLV, He et al. 2024; step-level
reward model data, "What Are Step-Level Reward Models Rewarding?"): sibling steps whose subtree mean
values differ by at least a margin become (prefix, chosen step, rejected step)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stepfuse._core import SearchTree
from stepfuse.errors import InvalidArgumentError, InvalidTypeError


@dataclass(frozen=True)
class PreferencePair:
    """One preference: after ``prefix`` (the steps so far) ``chosen`` beat ``rejected`` by ``margin``."""

    problem: str | int
    prefix: tuple[str, ...]
    chosen: str
    rejected: str
    margin: float


def preference_pairs(
    tree: SearchTree,
    problems: Sequence[str] | None = None,
    *,
    margin: float = 0.1,
    min_visits: int = 1,
) -> list[PreferencePair]:
    """All sibling pairs with ``Q(chosen) - Q(rejected) >= margin`` among children visited at least
    ``min_visits`` times. ``problems[i]`` labels root i (default: the root ordinal)."""
    if not isinstance(tree, SearchTree):
        raise InvalidTypeError(f"tree: must be a SearchTree, got {type(tree).__name__}")
    if problems is not None and len(problems) != len(tree.roots):
        raise InvalidArgumentError(f"problems: {len(problems)} labels for {len(tree.roots)} roots")
    if isinstance(min_visits, bool) or not isinstance(min_visits, int) or min_visits < 1:
        raise InvalidArgumentError(f"min_visits: must be an int >= 1, got {min_visits!r}")
    parents, chosen, rejected = tree.sibling_pairs(float(margin), min_visits=min_visits)
    if not len(parents):
        return []
    q = tree.values()
    texts = tree.texts()
    probs = tree.problem(parents)
    out = []
    prefix_cache: dict[int, tuple[str, ...]] = {}
    for p, a, b, r in zip(parents.tolist(), chosen.tolist(), rejected.tolist(), probs.tolist()):
        if p not in prefix_cache:
            prefix_cache[p] = tuple(tree.path_texts(p))
        label: str | int = problems[r] if problems is not None else r
        out.append(PreferencePair(label, prefix_cache[p], texts[a], texts[b], float(q[a] - q[b])))
    return out
