"""SearchTree against a pure-Python oracle of PUCT/UCT selection with virtual loss and backup, plus
checkpointing, tie-breaking determinism, bad input and a no-panic fuzz of every binding."""

from __future__ import annotations

import copy
import math
import pickle
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stepfuse
from stepfuse import SearchTree
from stepfuse.errors import (
    FormatError,
    InvalidArgumentError,
    InvalidTypeError,
    LimitExceededError,
    NonFiniteError,
    OutOfRangeError,
    StepfuseError,
)

# ---- oracle -------------------------------------------------------------------------------------


class Oracle:
    """Dict-of-lists tree with the textbook formulas, recomputed from scratch on every call."""

    def __init__(self) -> None:
        self.parent = [-1]
        self.children: list[list[int]] = [[]]
        self.prior = [1.0]
        self.N = [0]
        self.W = [0.0]
        self.pend = [0]
        self.terminal = [False]

    def expand(self, node: int, priors: list[float], terminal: list[bool]) -> list[int]:
        ids = []
        for p, t in zip(priors, terminal):
            i = len(self.parent)
            self.parent.append(node)
            self.children.append([])
            self.prior.append(float(np.float32(p)))
            self.N.append(0)
            self.W.append(0.0)
            self.pend.append(0)
            self.terminal.append(t)
            self.children[node].append(i)
            ids.append(i)
        return ids

    def available(self, n: int) -> bool:
        if not self.children[n]:
            return self.pend[n] == 0
        return any(self.available(c) for c in self.children[n])

    def score(self, p: int, c: int, policy: str, cc: float, vl: float, fpu: float) -> float:
        n_p = self.N[p] + self.pend[p]
        n_c = self.N[c] + self.pend[c]
        q = (self.W[c] - vl * self.pend[c]) / n_c if n_c > 0 else fpu
        if policy == "puct":
            return q + (cc * math.sqrt(n_p)) * self.prior[c] / (1 + n_c)
        if n_c == 0:
            return math.inf
        return q + cc * math.sqrt(math.log(max(n_p, 1)) / n_c)

    def select(self, n: int, keys: np.ndarray, **kw: float) -> list[int]:
        out = []
        for _ in range(n):
            if not self.available(0):
                break
            node = 0
            while self.children[node]:
                cands = [c for c in self.children[node] if self.available(c)]
                node = max(cands, key=lambda c: (self.score(node, c, **kw), -int(keys[c]), -c))
            out.append(node)
            x = node
            while x != -1:
                self.pend[x] += 1
                x = self.parent[x]
        return out

    def backup(self, leaves: list[int], values: list[float]) -> None:
        for leaf, v in zip(leaves, values):
            drop = self.pend[leaf] > 0
            x = leaf
            while x != -1:
                self.N[x] += 1
                self.W[x] += v
                if drop:
                    self.pend[x] -= 1
                x = self.parent[x]


@pytest.mark.parametrize("policy", ["puct", "uct"])
@pytest.mark.parametrize("seed", range(6))
def test_select_and_backup_match_oracle(policy: str, seed: int) -> None:
    rnd = random.Random(seed)
    tree = SearchTree(seed=seed)
    orc = Oracle()
    kw = {"policy": policy, "c": rnd.choice([0.0, 0.5, 1.5]), "vl": rnd.choice([0.0, 1.0, 3.0]), "fpu": 0.2}
    for _ in range(25):
        n = rnd.randint(1, 5)
        expect = orc.select(n, tree.tie_keys(), cc=kw["c"], vl=kw["vl"], fpu=kw["fpu"], policy=policy)
        leaves, off = tree.select(n, policy=policy, c=kw["c"], virtual_loss=kw["vl"], fpu=kw["fpu"])
        assert leaves.tolist() == expect
        assert off.tolist() == [0, len(expect)]
        assert len(set(expect)) == len(expect)
        assert tree.pending().tolist() == orc.pend
        grow = [x for x in expect if not orc.terminal[x]]
        if grow:
            ks = [rnd.randint(1, 4) for _ in grow]
            priors = [rnd.choice([0.1, 0.25, 0.5, 0.5]) for _ in range(sum(ks))]
            terms = [rnd.random() < 0.2 for _ in range(sum(ks))]
            tree.expand(grow, np.concatenate([[0], np.cumsum(ks)]), priors, terminal=terms)
            i = 0
            for g, k in zip(grow, ks):
                orc.expand(g, priors[i : i + k], terms[i : i + k])
                i += k
        # back up only some of the leaves: the others stay in flight across the next select
        keep = [x for x in expect if rnd.random() < 0.8]
        vals = [rnd.choice([0.0, 0.25, 1.0, -0.5]) for _ in keep]
        tree.backup(keep, vals)
        orc.backup(keep, vals)
        assert tree.visits().tolist() == orc.N
        assert tree.value_sums().tolist() == orc.W
        assert tree.pending().tolist() == orc.pend
        assert tree.terminal().tolist() == orc.terminal


def test_hot_state_is_32_bytes_per_node() -> None:
    assert SearchTree.hot_bytes_per_node() == 32


def test_clear_and_reserve_reuse_the_arena() -> None:
    t = SearchTree(2, seed=4)
    t.reserve(100)
    t.expand([0], [0, 2], [0.5, 0.5], text=["x", "y"])
    t.push([2], [1.0])
    t.clear()
    assert len(t) == 0 and t.roots.tolist() == [] and t.texts() == []
    assert t.add_roots(2).tolist() == [0, 1]
    fresh = SearchTree(2, seed=4)
    kids = t.expand([1], [0, 1], [1.0], text=["z"])
    fresh.expand([1], [0, 1], [1.0], text=["z"])
    assert t == fresh and kids.tolist() == [2] and t.frontier_len().tolist() == [0, 0]


def test_select_distinct_and_exhaustion() -> None:
    t = SearchTree()
    (root,) = t.select(5)[0].tolist()
    assert root == 0
    assert t.select(5)[0].tolist() == []  # the only leaf is in flight
    t.backup([0], [0.0])
    kids = t.expand([0], [0, 3], [0.2, 0.3, 0.5])
    leaves, _ = t.select(10)
    assert sorted(leaves.tolist()) == kids.tolist()
    t.backup(leaves, np.zeros(3))
    assert t.pending().sum() == 0
    assert t.visits()[0] == 4


def test_forest_select_groups_by_root_and_keys_are_structural() -> None:
    a = SearchTree(3, seed=7)
    b = SearchTree(1, seed=7)
    a.expand([0, 1, 2], [0, 2, 4, 6], np.full(6, 0.5))
    b.expand([0], [0, 2], [0.5, 0.5])
    assert a.tie_keys([5, 6]).tolist() == b.tie_keys([1, 2]).tolist()
    assert SearchTree(1, seed=8).expand([0], [0, 2], [0.5, 0.5]) is not None
    leaves, off = a.select(2, roots=[2, 0])
    assert off.tolist() == [0, 2, 4]
    assert a.problem(leaves).tolist() == [2, 2, 0, 0]


def test_best_leaf_path_children() -> None:
    t = SearchTree()
    kids = t.expand([0], [0, 3], [0.3, 0.3, 0.4])
    gk = t.expand([kids[1]], [0, 2], [0.5, 0.5])
    t.backup([kids[0], gk[0], gk[1], gk[1]], [1.0, 0.1, 0.2, 0.3])
    assert t.best_leaf(by="visits") == gk[1]
    assert t.best_leaf(by="value") == kids[0]
    assert t.path(gk[1]).tolist() == [0, kids[1], gk[1]]
    assert t.children(kids[1]).tolist() == gk.tolist()
    assert t.children(gk[0]).tolist() == []


def test_top_k_groups_and_ties() -> None:
    t = SearchTree(2, seed=3)
    kids = t.expand([0, 1], [0, 4, 8], np.full(8, 0.25))
    scores = np.array([0.1, 0.9, 0.9, -np.inf, 0.5, 0.5, 0.5, 0.7])
    pos = t.top_k(kids, scores, 2)
    keys = t.tie_keys(kids)
    first = sorted([1, 2], key=lambda i: keys[i])
    second = [7, min([4, 5, 6], key=lambda i: keys[i])]
    assert pos.tolist() == first + second
    pos = t.top_k(kids, scores, 1, groups=[5, 5, 1, 1, 1, 1, 1, 1])
    assert pos.tolist() == [2, 1]
    assert t.top_k(kids, scores, 0).tolist() == []
    with pytest.raises(NonFiniteError):
        t.top_k(kids, np.full(8, np.nan), 1)


@given(st.lists(st.sampled_from([0.0, 1.0, -1.0, 0.5, np.inf, -np.inf]), min_size=1, max_size=30), st.integers(0, 8))
@settings(max_examples=60)
def test_top_k_oracle(scores: list[float], k: int) -> None:
    t = SearchTree(seed=11)
    kids = t.expand([0], [0, len(scores)], np.full(len(scores), 0.1))
    keys = t.tie_keys(kids)
    expect = sorted(range(len(scores)), key=lambda i: (-scores[i], keys[i], i))[:k]
    assert t.top_k(kids, scores, k).tolist() == expect


def test_frontier_order_and_checkpoint() -> None:
    t = SearchTree(2)
    kids = t.expand([0, 1], [0, 3, 5], np.full(5, 0.2))
    t.push(kids, [0.3, 0.9, 0.1, 0.5, 0.6])
    assert t.frontier_len().tolist() == [3, 2]
    u = SearchTree.from_json(t.to_json())
    nodes, off = t.pop_best(2)
    assert nodes.tolist() == [kids[1], kids[0], kids[4], kids[3]]
    assert off.tolist() == [0, 2, 4]
    assert u.pop_best(2)[0].tolist() == nodes.tolist()
    with pytest.raises(InvalidArgumentError):
        t.pop_best(1, roots=[kids[0]])


def test_json_and_pickle_round_trip_exactly() -> None:
    t = SearchTree(2, seed=5, max_nodes=100)
    kids = t.expand([0, 1], [0, 2, 3], [1 / 3, 2 / 3, 1.0], text=["a\n\"q\"", "β", ""], payload=[4, 5, 6])
    t.backup(kids, [0.1, 1 / 7, 2.5e-300])
    t.select(2, roots=[0])
    t.push(kids, [0.5, 0.5, -np.inf])
    for u in (SearchTree.from_json(t.to_json()), pickle.loads(pickle.dumps(t)), copy.deepcopy(t)):
        assert u == t
        assert u.to_json() == t.to_json()
        assert u.value_sums().tolist() == t.value_sums().tolist()
        assert u.texts() == ["", "", "a\n\"q\"", "β", ""]
        assert u.max_nodes == 100 and u.seed == 5


@pytest.mark.parametrize(
    "bad",
    ["", "{", "[]", '{"seed": 1}', "null"],
)
def test_from_json_rejects_malformed(bad: str) -> None:
    with pytest.raises(FormatError):
        SearchTree.from_json(bad)


def test_from_json_rejects_broken_invariants() -> None:
    t = SearchTree()
    t.expand([0], [0, 2], [0.5, 0.5])
    t.select(1)
    s = t.to_json()
    for a, b in [
        ('"parent":[4294967295,0,0]', '"parent":[4294967295,0,5]'),
        ('"depth":[0,1,1]', '"depth":[0,2,1]'),
        ('"pending":[1,1,0]', '"pending":[0,1,0]'),
        ('"text_end":[0,0,0]', '"text_end":[0,3,0]'),
    ]:
        assert a in s
        with pytest.raises(FormatError):
            SearchTree.from_json(s.replace(a, b))


def test_bad_input_errors() -> None:
    t = SearchTree(max_nodes=4)
    with pytest.raises(NonFiniteError):
        t.expand([0], [0, 2], [0.5, np.nan])
    with pytest.raises(NonFiniteError):
        t.expand([0], [0, 1], [np.inf])
    with pytest.raises(InvalidArgumentError, match="empty proposal"):
        t.expand([0], [0, 0], [])
    with pytest.raises(InvalidArgumentError):
        t.expand([0], [0, 2], [0.5])
    with pytest.raises(InvalidArgumentError, match=">= 0"):
        t.expand([0], [0, 1], [-0.1])
    with pytest.raises(OutOfRangeError):
        t.expand([3], [0, 1], [0.1])
    with pytest.raises(OutOfRangeError):
        t.backup([-1], [0.0])
    with pytest.raises(LimitExceededError, match="max_nodes"):
        t.expand([0], [0, 4], np.full(4, 0.25))
    with pytest.raises(InvalidTypeError):
        t.expand([0.5], [0, 1], [0.1])
    with pytest.raises(InvalidTypeError):
        t.backup([0], ["x"])
    with pytest.raises(NonFiniteError):
        t.backup([0], [np.nan])
    with pytest.raises(InvalidArgumentError, match="length"):
        t.backup([0, 0], [1.0])
    with pytest.raises(InvalidArgumentError):
        t.select(1, policy="ucb")
    with pytest.raises(InvalidArgumentError):
        t.select(1, c=np.inf)
    with pytest.raises(InvalidArgumentError):
        t.select(-1)
    with pytest.raises(InvalidArgumentError):
        t.best_leaf(by="mean")
    with pytest.raises(OutOfRangeError):
        SearchTree(max_nodes=0)
    big = SearchTree(max_nodes=4_000_000_000)
    try:
        big.reserve(4_000_000_000)  # either succeeds lazily or raises; never aborts
    except LimitExceededError:
        pass
    assert len(t) == 1  # nothing changed
    kids = t.expand([0], [0, 2], [0.5, 0.5])
    with pytest.raises(InvalidArgumentError, match="already expanded"):
        t.expand([0], [0, 1], [1.0])
    t.set_terminal([kids[0]])
    with pytest.raises(InvalidArgumentError, match="terminal"):
        t.expand([kids[0]], [0, 1], [1.0])
    with pytest.raises(InvalidArgumentError):
        t.set_terminal([0])


def test_sibling_pairs() -> None:
    t = SearchTree()
    kids = t.expand([0], [0, 3], np.full(3, 1 / 3))
    t.backup(kids, [1.0, 0.0, 0.95])
    p, c, r = t.sibling_pairs(0.5)
    assert sorted(zip(c.tolist(), r.tolist())) == sorted([(kids[0], kids[1]), (kids[2], kids[1])])
    assert (p == 0).all()
    with pytest.raises(InvalidArgumentError):
        t.sibling_pairs(-1.0)


def test_dot_escapes_labels() -> None:
    t = SearchTree()
    t.expand([0], [0, 1], [1.0], text=['say "hi"\\'])
    dot = t.to_dot()
    assert dot.startswith("digraph") and 'say \\"hi\\"\\\\' in dot and "n0 -> n1" in dot


# ---- no panic may reach Python --------------------------------------------------------------

_junk = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.binary(max_size=4),
    st.lists(st.integers(-(2**40), 2**40), max_size=4),
    st.lists(st.floats(allow_nan=True), max_size=4),
    st.lists(st.booleans(), max_size=4),
)


@given(st.sampled_from(["expand", "select", "backup", "top_k", "push", "pop_best", "path", "best_leaf", "sibling_pairs",
                        "from_json", "vote", "texts", "set_terminal", "children", "add_roots", "set_payload",
                        "parents", "values", "frontier_len", "reserve", "path_texts", "to_dot"]),
       st.lists(_junk, min_size=1, max_size=5))
@settings(max_examples=300)
def test_no_panic_on_malformed_input(method: str, args: list[object]) -> None:
    t = SearchTree(2, max_nodes=64)
    t.expand([0], [0, 2], [0.5, 0.5])
    try:
        if method == "from_json":
            SearchTree.from_json(str(args[0]))
        elif method == "vote":
            stepfuse._core._vote(args[0], weights=args[-1] if len(args) > 1 else None)
        else:
            getattr(t, method)(*args)
    except (StepfuseError, TypeError, ValueError, OverflowError):
        pass


def _sample_tree() -> SearchTree:
    t = SearchTree(2, seed=3)
    kids = t.expand([0, 1], [0, 2, 5], np.full(5, 0.2), text=["a", "bb", "", "é", "c"])
    t.expand([kids[0]], [0, 2], [0.5, 0.5], terminal=[True, False])
    t.backup(kids[:3], [0.5, 0.1, 0.9])
    t.select(2)
    t.push(kids, [0.1, 0.2, 0.3, 0.4, 0.5])
    return t


_FIELDS = ["parent", "child_start", "child_count", "pending", "prior", "visits", "value_sum", "key", "depth",
           "root_of", "payload", "text_end", "roots", "max_nodes", "seed"]


@given(st.sampled_from(_FIELDS), st.integers(0, 20), st.one_of(st.integers(-5, 2**33), st.floats(-2, 2)))
@settings(max_examples=200)
def test_corrupted_checkpoints_never_panic(field: str, pos: int, value: object) -> None:
    import json

    doc = json.loads(_sample_tree().to_json())
    if isinstance(doc[field], list):
        if not doc[field]:
            return
        doc[field][pos % len(doc[field])] = value
    else:
        doc[field] = value
    try:
        t = SearchTree.from_json(json.dumps(doc))
    except StepfuseError:
        return
    # whatever loads must be usable without a panic
    leaves, _ = t.select(3)
    t.backup(leaves, np.zeros(len(leaves)))
    for n in range(len(t)):
        t.path(n)
    t.top_k(np.arange(len(t)), np.zeros(len(t)), 2)
    t.to_dot()
    t.pop_best(10)
