"""Benchmarks of stepfuse.search: null-evaluator MCTS through the batched Python API against
pure-Python node-object MCTS (two baselines written here: the design of OpenR-style reasoning-search
code, with a text state per node, children in a dict keyed by step text and AlphaZero's pb_c
schedule; and a leaner __slots__ variant), beam pruning per candidate, and answer voting."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from harness import Case, bench
from stepfuse import SearchTree
from stepfuse.search import vote_batch

K = 8
BATCH = 256
ITERS = 40  # simulations per problem per call


class PyNode:
    """One search node as a Python object (the baseline's representation)."""

    __slots__ = ("children", "parent", "prior", "value_sum", "visits")

    def __init__(self, parent: PyNode | None, prior: float) -> None:
        self.parent = parent
        self.prior = prior
        self.children: dict[int, PyNode] = {}
        self.visits = 0
        self.value_sum = 0.0

    def q(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0

    def puct(self, parent_visits: int, c: float) -> float:
        return self.q() + c * self.prior * math.sqrt(parent_visits) / (1 + self.visits)


def py_mcts(roots: list[PyNode], sims: int, c: float = 1.0) -> None:
    """Null-evaluator MCTS, one simulation at a time per tree: select, expand K, back up 0."""
    for root in roots:
        for _ in range(sims):
            node = root
            while node.children:
                pv = node.visits
                node = max(node.children.values(), key=lambda ch: ch.puct(pv, c))
            for a in range(K):
                node.children[a] = PyNode(node, 1.0 / K)
            x: PyNode | None = node
            while x is not None:
                x.visits += 1
                x.value_sum += 0.0
                x = x.parent


class TextNode:
    """A node in the style of common reasoning-search code: text state, children keyed by step text,
    statistics as attributes, value as a property, AlphaZero's pb_c exploration schedule."""

    def __init__(self, parent: TextNode | None, prior: float, text_state: str, last_action: str) -> None:
        self.parent = parent
        self.prior = prior
        self.text_state = text_state
        self.last_action = last_action
        self.children: dict[str, TextNode] = {}
        self.visit_count = 0
        self.value_sum = 0.0

    @property
    def value(self) -> float:
        return self.value_sum / self.visit_count if self.visit_count else 0.0

    def is_leaf(self) -> bool:
        return not self.children


def ucb(parent: TextNode, child: TextNode, base: float = 19652.0, init: float = 1.25) -> float:
    pb_c = math.log((parent.visit_count + base + 1) / base) + init
    pb_c *= math.sqrt(parent.visit_count) / (child.visit_count + 1)
    return pb_c * child.prior + child.value


def text_mcts(roots: list[TextNode], sims: int) -> None:
    for root in roots:
        for _ in range(sims):
            node = root
            while not node.is_leaf():
                parent = node
                _, node = max(node.children.items(), key=lambda kv: ucb(parent, kv[1]))
            for a in range(K):
                action = f"step {a}"
                node.children[action] = TextNode(node, 1.0 / K, node.text_state + action + "\n\n", action)
            x: TextNode | None = node
            while x is not None:
                x.visit_count += 1
                x.value_sum += 0.0
                x = x.parent


_ARENA = SearchTree(0, max_nodes=BATCH * (ITERS * K + 1) + 1)


def ours_mcts(iters: int) -> SearchTree:
    """``iters`` batched iterations over BATCH problems: one select, one expand, one backup call each.
    The arena is cleared and reused between calls (as a server reuses it across problem batches)."""
    tree = _ARENA
    tree.clear()
    tree.add_roots(BATCH)
    offsets = np.arange(BATCH + 1, dtype=np.int64) * K
    priors = np.full(BATCH * K, 1.0 / K, dtype=np.float32)
    zeros = np.zeros(BATCH)
    for _ in range(iters):
        leaves, _ = tree.select(1)
        tree.expand(leaves, offsets, priors)
        tree.backup(leaves, zeros)
    return tree


@bench("search/mcts-null-K8-batch256", target=">= 100x pure-Python node objects")
def _mcts() -> Case:
    sims = BATCH * ITERS
    return Case(
        ours=lambda: ours_mcts(ITERS),
        baselines={
            "text-state node objects": lambda: text_mcts(
                [TextNode(None, 1.0, "problem\n\n", "") for _ in range(BATCH)], ITERS
            ),
            "lean __slots__ nodes": lambda: py_mcts([PyNode(None, 1.0) for _ in range(BATCH)], ITERS),
        },
        info={"simulations_per_call": sims},
        per=sims,
        repeats=5,
        baseline_repeats=3,
    )


@bench("search/beam-prune-256x64-keep4", target="ns per candidate; >> python sort per problem")
def _beam() -> Case:
    tree = SearchTree(BATCH)
    kids = tree.expand(tree.roots, np.arange(BATCH + 1) * 64, np.full(BATCH * 64, 1 / 64))
    rng = np.random.default_rng(0)
    scores = rng.random(len(kids))
    probs = tree.problem(kids)

    def baseline() -> list[int]:
        out: list[int] = []
        groups: dict[int, list[int]] = {}
        for i, p in enumerate(probs.tolist()):
            groups.setdefault(p, []).append(i)
        sl = scores.tolist()
        for p in sorted(groups):
            out.extend(sorted(groups[p], key=lambda i: -sl[i])[:4])
        return out

    return Case(ours=lambda: tree.top_k(kids, scores, 4), baselines={"python sort per problem": baseline}, per=len(kids))


@bench("search/vote-256x64", target="answers/s; >> collections.Counter")
def _vote() -> Case:
    rng = np.random.default_rng(1)
    answers = [[str(x) for x in rng.integers(0, 12, 64)] for _ in range(BATCH)]

    def baseline() -> list[str]:
        return [Counter(a).most_common(1)[0][0] for a in answers]

    return Case(
        ours=lambda: vote_batch(answers),
        baselines={"collections.Counter": baseline},
        per=BATCH * 64,
    )
