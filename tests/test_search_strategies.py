"""Search strategies on a synthetic task with a known optimum, batch/thread determinism, checkpoint +
resume, voting, preference pairs, compute-optimal allocation, rendering and bad input."""

from __future__ import annotations

import json
import pickle
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from search_synth import DigitTask

from stepfuse import SearchTree
from stepfuse.errors import InvalidArgumentError, InvalidTypeError, LimitExceededError, NonFiniteError
from stepfuse.search import (
    DVTS,
    MCTS,
    BeamSearch,
    BestFirst,
    BestOfN,
    ComputeOptimalPolicy,
    State,
    Step,
    StepSplitter,
    aggregate,
    complexity_vote,
    difficulty_bins,
    extract_answer,
    majority_vote,
    predicted_pass_rates,
    preference_pairs,
    render_tree,
    run_compute_optimal,
    vote_batch,
    weighted_vote,
)

BUDGET = 80  # proposer tokens per problem: 16 samples x 5 digits


def _strategies(t: DigitTask) -> dict[str, object]:
    return {
        "best_of_n": BestOfN(t, t, n=16),
        "beam": BeamSearch(t, t, beam_width=4, expand=4),
        "best_first": BestFirst(t, t, expand=4, max_expansions=20),
        "mcts": MCTS(t, t, simulations=20, expand=4, leaf_batch=2),
    }


def test_tree_search_beats_best_of_n_at_equal_token_budget() -> None:
    acc: dict[str, list[float]] = {}
    for seed in range(3):
        t = DigitTask(40, length=5, seed=seed)
        for name, s in _strategies(t).items():
            res = s.run_batch(t.problems)  # type: ignore[attr-defined]
            assert max(r.usage.generated_tokens for r in res) <= BUDGET, name
            acc.setdefault(name, []).append(t.correct(res))
    means = {k: float(np.mean(v)) for k, v in acc.items()}
    for name in ("beam", "best_first", "mcts"):
        assert means[name] > means["best_of_n"] + 0.15, means


def test_one_proposer_call_per_iteration_across_the_batch() -> None:
    t = DigitTask(12, length=4)
    BeamSearch(t, t, beam_width=2, expand=3).run_batch(t.problems)
    assert t.propose_calls == 4 and t.score_calls == 4
    t = DigitTask(12, length=4)
    res = MCTS(t, t, simulations=8, expand=3, leaf_batch=4).run_batch(t.problems)
    # leaf batching: fewer proposer calls than simulations, each shared by every problem still running
    assert t.propose_calls < 8
    assert max(r.usage.proposer_calls for r in res) == t.propose_calls


def _signature(tree: SearchTree, root: int) -> list[tuple]:
    out = []
    stack = [root]
    while stack:
        n = stack.pop()
        out.append((tree.texts([n])[0], int(tree.visits([n])[0]), float(tree.value_sums([n])[0]),
                    float(tree.priors([n])[0]), bool(tree.terminal([n])[0]), int(tree.tie_keys([n])[0])))
        stack.extend(reversed(tree.children(n).tolist()))
    return out


def _result_sig(r) -> tuple:
    return (r.best.steps, r.best.score, [(c.steps, c.score) for c in r.candidates], _signature(r.tree, r.root))


@pytest.mark.parametrize(
    "make",
    [
        lambda t: MCTS(t, t, simulations=16, expand=3, leaf_batch=4, seed=3),
        lambda t: BeamSearch(t, t, beam_width=3, expand=2, lookahead=1),
        lambda t: DVTS(t, t, n=8, m=2),
        lambda t: BestFirst(t, t, expand=3, max_expansions=6, pop=2, n_solutions=2),
        lambda t: BestOfN(t, t, n=6, weighted=True),
    ],
    ids=["mcts", "beam-lookahead", "dvts", "best-first", "bon-weighted"],
)
def test_problem_results_identical_at_any_batch_size_and_thread_count(make) -> None:
    t = DigitTask(6, length=4, seed=5)
    together = make(t).run_batch(t.problems)
    alone = [make(t).run_batch([p])[0] for p in t.problems]
    pairs = [make(t).run_batch(t.problems[i : i + 2]) for i in range(0, 6, 2)]
    split = [r for rs in pairs for r in rs]
    shared = make(t)  # one strategy object used from several threads at once
    with ThreadPoolExecutor(4) as ex:
        threaded = list(ex.map(lambda p: shared.run_batch([p])[0], t.problems))
    for a, b, c, d in zip(together, alone, split, threaded):
        assert _result_sig(a) == _result_sig(b) == _result_sig(c) == _result_sig(d)


def test_mcts_checkpoint_and_resume_equals_uninterrupted() -> None:
    t = DigitTask(5, length=5, seed=9)
    full = MCTS(t, t, simulations=24, expand=3, leaf_batch=4).run_batch(t.problems)
    for k in (1, 3):
        part = MCTS(t, t, simulations=24, expand=3, leaf_batch=4).run_batch(t.problems, max_iterations=k)
        assert part[0].tree != full[0].tree
        blob = pickle.dumps(part[0].tree)
        restored = SearchTree.from_json(json.loads(json.dumps(part[0].tree.to_json())))
        assert pickle.loads(blob) == restored
        resumed = MCTS(t, t, simulations=24, expand=3, leaf_batch=4).run_batch(t.problems, tree=restored)
        assert resumed[0].tree == full[0].tree
        assert [_result_sig(r) for r in resumed] == [_result_sig(r) for r in full]


def test_mcts_options_rollout_uct_and_batch_leaves() -> None:
    t = DigitTask(4, length=4, seed=2)
    for kw in ({"rollout_depth": 2}, {"policy": "uct", "c": 0.5}, {"leaf_batch": 8, "virtual_loss": 0.0}):
        res = MCTS(t, t, simulations=12, expand=3, **kw).run_batch(t.problems)
        for r in res:
            assert r.tree.visits([r.root])[0] == 12
            assert r.tree.pending().sum() == 0
            assert r.best is not None and len(r.best.steps) >= 1
            assert [c.score for c in r.candidates] == sorted((c.score for c in r.candidates), reverse=True)


def test_lookahead_uses_the_rollout_proposer() -> None:
    t = DigitTask(30, length=5, seed=6)
    greedy = DigitTask(30, length=5, seed=6, q=0.99)  # an (almost) greedy rollout policy
    plain = BeamSearch(t, t, beam_width=2, expand=3, lookahead=2).run_batch(t.problems)
    guided = BeamSearch(t, t, beam_width=2, expand=3, lookahead=2, rollout_proposer=greedy).run_batch(t.problems)
    assert greedy.propose_calls > 0
    # rollouts that follow the right digits make the lookahead score informative
    assert t.correct(guided) > t.correct(plain) + 0.2


def test_usage_counts_tokens() -> None:
    t = DigitTask(3, length=3)
    res = BestOfN(t, t, n=4).run_batch(t.problems)
    for r in res:
        assert r.usage.generated_tokens == 12 and r.usage.proposed_steps == 12
        assert r.usage.scorer_calls == 1 and r.usage.scored_states == 4 and r.usage.scored_tokens == 12
        assert r.usage.proposer_calls == 3
        assert len(r.candidates) == 4 and all(c.terminal for c in r.candidates)


def test_beam_and_dvts_keep_their_widths() -> None:
    t = DigitTask(2, length=3)
    res = BeamSearch(t, t, beam_width=3, expand=2).run_batch(t.problems)
    assert all(len(r.candidates) == 3 for r in res)
    res = DVTS(t, t, n=8, m=2).run_batch(t.problems)
    for r in res:
        assert len(r.candidates) == 4
        firsts = [r.tree.path(c.node)[1] for c in r.candidates]
        assert len(set(firsts)) == 4  # one survivor per independent subtree


def test_aggregation() -> None:
    s = [[0.5, 0.2, 0.9], [], [0.4]]
    assert aggregate(s, "min").tolist() == [0.2, 0.0, 0.4]
    assert aggregate(s, "last").tolist() == [0.9, 0.0, 0.4]
    assert np.allclose(aggregate(s, "mean"), [1.6 / 3, 0.0, 0.4])
    assert np.allclose(aggregate(s, "prod"), [0.09, 0.0, 0.4])
    with pytest.raises(InvalidArgumentError):
        aggregate(s, "max")
    with pytest.raises(NonFiniteError):
        aggregate([[np.nan]], "min")


@given(st.lists(st.text(alphabet="ab\n c", min_size=1, max_size=6).filter(lambda x: x.strip() and "\n\n" not in x),
                max_size=6))
@settings(max_examples=60)
def test_splitter_round_trip(steps: list[str]) -> None:
    sp = StepSplitter()
    assert sp.split(sp.join(steps)) == steps or any(s.strip() != s for s in steps)
    for s in steps:
        sp.check_step(s)


def test_voting_matches_counter_oracle() -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        ans = [str(x) if x >= 0 else None for x in rng.integers(-1, 4, rng.integers(1, 12))]
        w = rng.random(len(ans)).round(2).tolist()
        v = majority_vote(ans)
        c = Counter(a for a in ans if a is not None)
        if c:
            top = max(c.values())
            first = min(ans.index(a) for a in c if c[a] == top)
            assert (v.answer, v.index, v.count) == (ans[first], first, top)
        else:
            assert v.answer is None and v.index == -1
        wv = weighted_vote(ans, w)
        tot: dict[str, float] = {}
        for a, x in zip(ans, w):
            if a is not None:
                tot[a] = tot.get(a, 0.0) + x
        if tot:
            assert wv.weight == pytest.approx(max(tot.values()))
    cv = complexity_vote(["1", "2", "2", "1", "1"], [5, 1, 1, 4, 3], top=2)
    assert cv.answer == "1" and cv.count == 2
    assert majority_vote(["1.0", "1", "2"], normalize=lambda s: str(float(s))).answer == "1.0"
    assert majority_vote(["A", "b", "a"], equivalent=lambda x, y: x.lower() == y.lower()).count == 2
    batch = vote_batch([["x", "y", "y"], [], ["z"]])
    assert [b.answer for b in batch] == ["y", None, "z"] and [b.index for b in batch] == [1, -1, 0]
    with pytest.raises(InvalidArgumentError):
        weighted_vote(["a"], [1.0, 2.0])
    with pytest.raises(NonFiniteError):
        weighted_vote(["a"], [np.nan])
    with pytest.raises(InvalidArgumentError):
        complexity_vote(["a"], [1], top=0)
    with pytest.raises(InvalidTypeError):
        vote_batch([[1]])  # type: ignore[list-item]
    with pytest.raises(InvalidTypeError):
        vote_batch(["ab"])  # type: ignore[list-item]
    assert vote_batch([("a", "b", "b")])[0].answer == "b"
    assert extract_answer("so \\boxed{42} and \\boxed{7}") == "7"
    assert extract_answer("x\nThe answer is 12.") == "12"
    assert extract_answer("  \n last line ") == "last line"
    assert extract_answer("") is None


def test_preference_pairs_from_mcts_tree() -> None:
    t = DigitTask(8, length=4, seed=4)
    res = MCTS(t, t, simulations=24, expand=4).run_batch(t.problems)
    tree = res[0].tree
    pairs = preference_pairs(tree, t.problems, margin=0.3)
    q = tree.values()
    for p in pairs:
        assert p.margin >= 0.3 and p.chosen != p.rejected
        assert p.problem in t.problems
    # on the right path, the chosen step is the hidden digit far more often than the rejected one
    on = [p for p in pairs if t.hidden[p.problem].startswith("".join(p.prefix))]
    right = sum(t.hidden[p.problem][len(p.prefix)] == p.chosen for p in on)
    wrong = sum(t.hidden[p.problem][len(p.prefix)] == p.rejected for p in on)
    assert right >= 3 and right > 2 * wrong
    assert np.isfinite(q[0])
    assert preference_pairs(tree, margin=100.0) == []
    with pytest.raises(InvalidArgumentError):
        preference_pairs(tree, ["only one"])


def test_compute_optimal_allocation() -> None:
    bins = difficulty_bins([1.0, 0.9, 0.5, 0.0], n_bins=2)
    assert bins.tolist() == [0, 0, 1, 1]
    table = {
        0: {("best_of_n", 4): 0.9, ("beam", 16): 0.9, ("beam", 4): 0.8},
        1: {("best_of_n", 16): 0.2, ("beam", 16): 0.5, ("beam", 64): 0.7},
    }
    pol = ComputeOptimalPolicy(table)
    assert pol.choose(0, 16) == ("best_of_n", 4)
    assert pol.choose(1, 16) == ("beam", 16)
    assert pol.choose(1, 64) == ("beam", 64)
    with pytest.raises(InvalidArgumentError):
        pol.choose(1, 8)
    with pytest.raises(InvalidArgumentError):
        difficulty_bins([1.5])
    t = DigitTask(4, length=3)
    rates = predicted_pass_rates(BestOfN(t, t, n=8).run_batch(t.problems))
    assert rates.shape == (4,) and ((rates >= 0) & (rates <= 1)).all()
    factories = {
        "best_of_n": lambda b: BestOfN(t, t, n=b),
        "beam": lambda b: BeamSearch(t, t, beam_width=max(1, b // 4), expand=4),
    }
    res = run_compute_optimal(t.problems, bins, pol, factories, max_budget=16)
    assert len(res) == 4 and all(r.best is not None for r in res)
    assert len(res[0].candidates) == 4 and len(res[3].candidates) == 4


def test_render_html_svg_png_dot(tmp_path) -> None:
    t = DigitTask(1, length=3)
    r = MCTS(t, t, simulations=10, expand=3).run(t.problems[0])
    html = render_tree(r.tree, tmp_path / "t.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "N=10" in html
    assert render_tree(r.tree, tmp_path / "t.dot").read_text().startswith("digraph")
    png = render_tree(r.tree, tmp_path / "t.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InvalidArgumentError):
        render_tree(r.tree, tmp_path / "t.pdf")


class _BadProposer:
    def __init__(self, out):
        self.out = out

    def propose(self, states, n):
        return self.out(states, n)


def test_bad_inputs() -> None:
    t = DigitTask(2, length=3)
    with pytest.raises(InvalidArgumentError):
        BestOfN(t, t, n=0)
    with pytest.raises(InvalidArgumentError):
        MCTS(t, t, simulations=-3)
    with pytest.raises(InvalidArgumentError):
        MCTS(t, t, c=float("nan"))
    with pytest.raises(InvalidTypeError):
        BeamSearch(t, t, beam_width=2.5)
    with pytest.raises(InvalidArgumentError):
        BeamSearch(t, None)
    with pytest.raises(InvalidTypeError):
        BestOfN(t, t).run_batch("abc")
    with pytest.raises(InvalidTypeError):
        BestOfN(object(), t)
    empty = _BadProposer(lambda s, n: [[] for _ in s])
    with pytest.raises(InvalidArgumentError, match="empty proposal"):
        BestOfN(empty, t).run_batch(t.problems)
    short = _BadProposer(lambda s, n: [[Step("1")]])
    with pytest.raises(InvalidArgumentError, match="expected a list of 2"):
        BestOfN(short, t).run_batch(t.problems)
    delim = _BadProposer(lambda s, n: [[Step("a\n\nb")] for _ in s])
    with pytest.raises(InvalidArgumentError, match="delimiter"):
        BestOfN(delim, t).run_batch(t.problems)
    nanlp = _BadProposer(lambda s, n: [[Step("a", logprob=float("nan"))] for _ in s])
    with pytest.raises(NonFiniteError):
        MCTS(nanlp, t).run_batch(t.problems)

    class BadScorer:
        def score(self, states):
            return [[0.5] * (len(s.steps) + 1) for s in states]

    with pytest.raises(InvalidArgumentError, match="must be equal"):
        BeamSearch(t, BadScorer()).run_batch(t.problems)
    with pytest.raises(InvalidArgumentError):
        MCTS(t, t).run_batch(t.problems, tree=SearchTree(5))
    with pytest.raises(LimitExceededError, match="max_nodes"):
        MCTS(t, t, simulations=50, max_nodes=10).run_batch(t.problems)
    assert BestOfN(t, t).run_batch([]) == []
    assert State("p").steps == ()


def test_progress_bar_runs() -> None:
    t = DigitTask(2, length=3)
    res = MCTS(t, t, simulations=6, expand=2, progress=True).run_batch(t.problems)
    assert len(res) == 2
