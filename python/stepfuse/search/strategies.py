"""Search strategies over reasoning steps. Python orchestrates batched model calls; the tree work
(selection, backup, pruning, frontier, voting) runs in the Rust ``SearchTree``.

Every strategy makes at most one proposer call and one scorer call per iteration, over every
frontier node of every problem in the batch, and returns one :class:`SearchResult` per problem.
With a deterministic proposer and scorer (a function of the state), a problem's result is the same
whether it runs alone or in a batch of any size.

Papers: best-of-N and weighted best-of-N, step-level beam search with lookahead, DVTS (Snell et al.
2024; Beeching et al. 2024); step beam search SBS(B1, B2) and MCTS with a value model (AlphaMath,
Chen et al. 2024); best-first search (Tree-PLV, He et al. 2024).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from stepfuse._core import SearchTree
from stepfuse.errors import InvalidArgumentError, InvalidTypeError
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
    check_aggregation,
    validate_proposals,
    validate_scores,
)
from stepfuse.search.voting import extract_answer, vote_batch


def _positive(name: str, v: Any, allow_zero: bool = False) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise InvalidTypeError(f"{name}: must be an int, got {type(v).__name__}")
    if v < 0 or (v == 0 and not allow_zero):
        raise InvalidArgumentError(f"{name}: must be {'>= 0' if allow_zero else '>= 1'}, got {v}")
    return int(v)


def _group_softmax(logp: np.ndarray, offsets: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of ``logp / temperature`` within each CSR group (all -inf group: uniform)."""
    starts = offsets[:-1]
    counts = np.diff(offsets)
    lp = logp / temperature
    m = np.maximum.reduceat(lp, starts)
    dead = ~np.isfinite(m)
    m[dead] = 0.0
    rep = np.repeat(m, counts)
    lp = np.where(np.repeat(dead, counts), 0.0, lp)
    e = np.exp(lp - rep)
    s = np.add.reduceat(e, starts)
    return e / np.repeat(s, counts)


class _Ctx:
    """One batch's forest, problems and per-problem usage."""

    def __init__(self, problems: Sequence[str], seed: int, max_nodes: int, tree: SearchTree | None) -> None:
        if isinstance(problems, str) or not isinstance(problems, Sequence):
            raise InvalidTypeError("problems: must be a sequence of str")
        for i, p in enumerate(problems):
            if not isinstance(p, str):
                raise InvalidTypeError(f"problems[{i}]: must be str, got {type(p).__name__}")
        self.problems = list(problems)
        if tree is None:
            tree = SearchTree(len(self.problems), seed=seed, max_nodes=max_nodes)
        elif not isinstance(tree, SearchTree):
            raise InvalidTypeError(f"tree: must be a SearchTree, got {type(tree).__name__}")
        elif len(tree.roots) != len(self.problems):
            raise InvalidArgumentError(f"tree: has {len(tree.roots)} roots for {len(self.problems)} problems")
        self.tree = tree
        self.roots = tree.roots
        self.usage = [Usage() for _ in self.problems]
        self.score_cache: dict[int, float] = {}

    def states(self, nodes: np.ndarray) -> list[State]:
        probs = self.tree.problem(nodes)
        return [State(self.problems[p], tuple(self.tree.path_texts(n))) for n, p in zip(nodes.tolist(), probs)]

    def tokens(self, nodes: np.ndarray) -> list[int]:
        """Tokens of each node's steps (payload = tokens of the step, set at expansion)."""
        t = self.tree
        return [int(np.maximum(t.payloads(t.path(n)[1:]), 0).sum()) for n in nodes.tolist()]

    def count_calls(self, nodes: np.ndarray, field: str) -> np.ndarray:
        probs = self.tree.problem(nodes)
        for p in np.unique(probs).tolist():
            u = self.usage[p]
            setattr(u, field, getattr(u, field) + 1)
        return probs


class Strategy:
    """Shared machinery: batched proposal + expansion, batched scoring, rollouts, result assembly."""

    def __init__(
        self,
        proposer: Proposer,
        scorer: Scorer | None,
        *,
        splitter: StepSplitter | None = None,
        aggregation: str = "last",
        max_depth: int = 16,
        seed: int = 0,
        max_nodes: int = 1 << 22,
        answer: Callable[[str], str | None] = extract_answer,
        progress: bool = False,
        rollout_proposer: Proposer | None = None,
    ) -> None:
        if rollout_proposer is not None and not hasattr(rollout_proposer, "propose"):
            raise InvalidTypeError("rollout_proposer: must have a propose(states, n) method")
        if not hasattr(proposer, "propose"):
            raise InvalidTypeError("proposer: must have a propose(states, n) method")
        if scorer is not None and not hasattr(scorer, "score"):
            raise InvalidTypeError("scorer: must have a score(states) method")
        check_aggregation(aggregation)
        self.proposer = proposer
        self.scorer = scorer
        self.splitter = splitter or StepSplitter()
        self.aggregation = aggregation
        self.max_depth = _positive("max_depth", max_depth)
        self.seed = _positive("seed", seed, allow_zero=True)
        self.max_nodes = _positive("max_nodes", max_nodes)
        self.answer = answer
        self.progress = progress
        self.rollout_proposer = rollout_proposer

    def run(self, problem: str, **kw: Any) -> SearchResult:
        """Search one problem (``run_batch([problem])[0]``)."""
        if not isinstance(problem, str):
            raise InvalidTypeError(f"problem: must be str, got {type(problem).__name__}")
        return self.run_batch([problem], **kw)[0]

    def run_batch(self, problems: Sequence[str], **kw: Any) -> list[SearchResult]:  # pragma: no cover
        raise NotImplementedError

    # ---- batched building blocks -------------------------------------------------------------

    def _bar(self, total: int, desc: str) -> Any:
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, leave=False)

    def _propose(
        self, ctx: _Ctx, nodes: np.ndarray, n: int, *, dedup: bool = False, temperature: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """One proposer call for ``nodes``; expands them. Returns (children, CSR offsets)."""
        states = ctx.states(nodes)
        props = validate_proposals(self.proposer.propose(states, n), len(states), n, self.splitter)
        probs = ctx.count_calls(nodes, "proposer_calls")
        for p, steps in zip(probs.tolist(), props):
            ctx.usage[p].generated_tokens += sum(s.num_tokens for s in steps)
            ctx.usage[p].proposed_steps += len(steps)
        if dedup:
            props = [_dedup(p) for p in props]
        counts = np.fromiter((len(p) for p in props), dtype=np.int64, count=len(props))
        offsets = np.zeros(len(props) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        flat = [s for p in props for s in p]
        ntok = np.fromiter((s.num_tokens for s in flat), dtype=np.int64, count=len(flat))
        logp = np.fromiter((s.logprob for s in flat), dtype=np.float64, count=len(flat))
        priors = _group_softmax(logp, offsets, temperature)
        depth = np.repeat(ctx.tree.depths(nodes), counts) + 1
        term = np.fromiter((s.terminal for s in flat), dtype=bool, count=len(flat)) | (depth >= self.max_depth)
        kids = ctx.tree.expand(nodes, offsets, priors, terminal=term, payload=ntok, text=[s.text for s in flat])
        return kids, offsets

    def _score_states(self, ctx: _Ctx, nodes: np.ndarray, states: list[State]) -> np.ndarray:
        """One scorer call; aggregated value per state (states without steps get 0, unscored)."""
        out = np.zeros(len(states), dtype=np.float64)
        idx = [i for i, s in enumerate(states) if s.steps]
        if not idx or self.scorer is None:
            return out
        sub = [states[i] for i in idx]
        scores = validate_scores(self.scorer.score(sub), sub)
        out[idx] = aggregate(scores, self.aggregation)
        ctx.count_calls(nodes[idx], "scorer_calls")
        probs = ctx.tree.problem(nodes[idx])
        for p in probs.tolist():
            ctx.usage[p].scored_states += 1
        return out

    def _score(self, ctx: _Ctx, nodes: np.ndarray) -> np.ndarray:
        states = ctx.states(nodes)
        vals = self._score_states(ctx, nodes, states)
        self._count_scored_tokens(ctx, nodes, [0] * len(nodes))
        for n, v in zip(nodes.tolist(), vals.tolist()):
            ctx.score_cache[n] = v
        return vals

    def _count_scored_tokens(self, ctx: _Ctx, nodes: np.ndarray, extra: list[int]) -> None:
        if self.scorer is None or len(nodes) == 0:
            return
        probs = ctx.tree.problem(nodes)
        for p, t, e in zip(probs.tolist(), ctx.tokens(nodes), extra):
            ctx.usage[p].scored_tokens += t + e

    def _rollout(self, ctx: _Ctx, nodes: np.ndarray, depth: int) -> np.ndarray:
        """Value after extending each node by up to ``depth`` single-sample steps (rollout steps are
        not kept in the tree); one proposer call per rollout step, one scorer call at the end.
        Rollouts use ``rollout_proposer`` when given (e.g. a greedy one, as in Snell et al.'s
        lookahead), else the main proposer."""
        rollout = self.rollout_proposer or self.proposer
        states = ctx.states(nodes)
        done = ctx.tree.terminal(nodes).copy()
        extra = [0] * len(nodes)
        probs = ctx.tree.problem(nodes)
        base_depth = ctx.tree.depths(nodes)
        for d in range(depth):
            live = [i for i in range(len(states)) if not done[i] and base_depth[i] + d < self.max_depth]
            if not live:
                break
            props = validate_proposals(rollout.propose([states[i] for i in live], 1), len(live), 1, self.splitter)
            for p in np.unique(probs[live]).tolist():
                ctx.usage[p].proposer_calls += 1
            for i, ps in zip(live, props):
                s = ps[0]
                states[i] = State(states[i].problem, (*states[i].steps, s.text))
                extra[i] += s.num_tokens
                ctx.usage[probs[i]].generated_tokens += s.num_tokens
                ctx.usage[probs[i]].proposed_steps += 1
                done[i] = s.terminal
        vals = self._score_states(ctx, nodes, states)
        self._count_scored_tokens(ctx, nodes, extra)
        return vals

    def _candidates(self, ctx: _Ctx, nodes: np.ndarray, scores: np.ndarray) -> list[list[Candidate]]:
        """Candidates per problem, best first (ties broken by the tree's seeded keys)."""
        out: list[list[Candidate]] = [[] for _ in ctx.problems]
        if len(nodes) == 0:
            return out
        order = ctx.tree.top_k(nodes, scores, len(nodes))
        term = ctx.tree.terminal(nodes)
        probs = ctx.tree.problem(nodes)
        for i in order.tolist():
            n = int(nodes[i])
            steps = tuple(ctx.tree.path_texts(n))
            out[probs[i]].append(
                Candidate(steps, float(scores[i]), n, bool(term[i]), self.answer(self.splitter.join(steps)))
            )
        return out

    def _results(self, ctx: _Ctx, cands: list[list[Candidate]], best: list[Candidate | None]) -> list[SearchResult]:
        return [
            SearchResult(b, c, ctx.tree, u, int(r)) for b, c, u, r in zip(best, cands, ctx.usage, ctx.roots.tolist())
        ]


def _dedup(steps: list[Step]) -> list[Step]:
    """Merge identical sibling steps (first kept; log-probabilities combined by logsumexp)."""
    seen: dict[str, int] = {}
    out: list[Step] = []
    for s in steps:
        j = seen.get(s.text)
        if j is None:
            seen[s.text] = len(out)
            out.append(s)
        else:
            o = out[j]
            out[j] = Step(o.text, o.token_ids, float(np.logaddexp(o.logprob, s.logprob)), o.terminal or s.terminal)
    return out


class BestOfN(Strategy):
    """Sample ``n`` full solutions per problem and pick by score (Snell et al. §5 "best-of-N").

    ``weighted=True`` sums scores per extracted answer and returns the best-scored solution of the
    winning answer ("best-of-N weighted"). Without a scorer every solution scores 0 and the first wins.
    """

    def __init__(self, proposer: Proposer, scorer: Scorer | None = None, *, n: int = 8, weighted: bool = False, **kw: Any):
        super().__init__(proposer, scorer, **kw)
        self.n = _positive("n", n)
        self.weighted = weighted

    def run_batch(self, problems: Sequence[str], **kw: Any) -> list[SearchResult]:
        ctx = _Ctx(problems, self.seed, self.max_nodes, None)
        if not ctx.problems:
            return []
        kids, _ = self._propose(ctx, ctx.roots, self.n)
        leaves = kids.copy()
        while True:
            live = ~ctx.tree.terminal(leaves)
            if not live.any():
                break
            new, _ = self._propose(ctx, leaves[live], 1)
            leaves[live] = new
        scores = self._score(ctx, leaves)
        cands = self._candidates(ctx, leaves, scores)
        if not self.weighted:
            best = [c[0] if c else None for c in cands]
        else:
            votes = vote_batch([[c.answer for c in cs] for cs in cands], weights=[[c.score for c in cs] for cs in cands])
            best = []
            for cs, v in zip(cands, votes):
                best.append(cs[v.index] if v.index >= 0 else (cs[0] if cs else None))
        return self._results(ctx, cands, best)


class BeamSearch(Strategy):
    """Step-level beam search: expand each of ``beam_width`` beams by ``expand`` steps, score, keep the
    best ``beam_width`` per problem (AlphaMath SBS(B1=beam_width, B2=expand); Snell et al.'s beam
    search with N = beam_width·expand, M = expand). The first step samples N steps from the root.
    ``lookahead=k`` scores each candidate after a k-step rollout (Snell et al. §5 lookahead search).
    """

    def __init__(
        self,
        proposer: Proposer,
        scorer: Scorer,
        *,
        beam_width: int = 4,
        expand: int = 4,
        lookahead: int = 0,
        **kw: Any,
    ) -> None:
        if scorer is None:
            raise InvalidArgumentError("scorer: beam search needs a scorer")
        super().__init__(proposer, scorer, **kw)
        self.beam_width = _positive("beam_width", beam_width)
        self.expand = _positive("expand", expand)
        self.lookahead = _positive("lookahead", lookahead, allow_zero=True)

    def _first(self) -> tuple[int, int]:
        """(root samples, beams kept per group at the first step)."""
        return self.beam_width * self.expand, self.beam_width

    def _value(self, ctx: _Ctx, nodes: np.ndarray) -> np.ndarray:
        if self.lookahead == 0:
            return self._score(ctx, nodes)
        return self._rollout(ctx, nodes, self.lookahead)

    def run_batch(self, problems: Sequence[str], **kw: Any) -> list[SearchResult]:
        ctx = _Ctx(problems, self.seed, self.max_nodes, None)
        if not ctx.problems:
            return []
        first_n, _ = self._first()
        beams = ctx.roots.copy()
        fin_nodes: list[np.ndarray] = []
        fin_scores: list[np.ndarray] = []
        first = True
        beam_groups = np.zeros(0, dtype=np.int64)
        bar = self._bar(self.max_depth, type(self).__name__)
        while len(beams):
            kids, offsets = self._propose(ctx, beams, first_n if first else self.expand)
            scores = self._value(ctx, kids)
            if first:
                groups = self._first_groups(ctx, kids, offsets)
                keep = self._keep_first()
            else:
                groups = np.repeat(beam_groups, np.diff(offsets))
                keep = self._keep()
            pos = ctx.tree.top_k(kids, scores, keep, groups=groups)
            kept, ks, kg = kids[pos], scores[pos], groups[pos]
            term = ctx.tree.terminal(kept)
            fin_nodes.append(kept[term])
            fin_scores.append(ks[term])
            beams = kept[~term]
            beam_groups = kg[~term]
            first = False
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        nodes = np.concatenate(fin_nodes) if fin_nodes else np.zeros(0, np.int64)
        scores = np.concatenate(fin_scores) if fin_scores else np.zeros(0)
        cands = self._candidates(ctx, nodes, scores)
        return self._results(ctx, cands, [c[0] if c else None for c in cands])

    def _first_groups(self, ctx: _Ctx, kids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        return ctx.tree.problem(kids)

    def _keep_first(self) -> int:
        return self.beam_width

    def _keep(self) -> int:
        return self.beam_width


class DVTS(BeamSearch):
    """Diverse verifier tree search (Beeching et al. 2024): ``n // m`` independent subtrees per problem,
    each greedily keeping its best step among ``m`` expansions, for a total of ``n`` candidates per step."""

    def __init__(self, proposer: Proposer, scorer: Scorer, *, n: int = 16, m: int = 4, lookahead: int = 0, **kw: Any):
        n = _positive("n", n)
        m = _positive("m", m)
        if n < m:
            raise InvalidArgumentError(f"n: must be >= m ({m}), got {n}")
        super().__init__(proposer, scorer, beam_width=n // m, expand=m, lookahead=lookahead, **kw)

    def _first(self) -> tuple[int, int]:
        return self.beam_width, 1

    def _first_groups(self, ctx: _Ctx, kids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        probs = ctx.tree.problem(kids)
        within = np.arange(len(kids)) - np.repeat(offsets[:-1], np.diff(offsets))
        return probs * self.beam_width + within

    def _keep_first(self) -> int:
        return 1

    def _keep(self) -> int:
        return 1


class BestFirst(Strategy):
    """Best-first search: pop the best-scored partial solution, expand it by ``expand`` steps, score
    and push the children, until ``n_solutions`` finished or ``max_expansions`` used (Tree-PLV)."""

    def __init__(
        self,
        proposer: Proposer,
        scorer: Scorer,
        *,
        expand: int = 4,
        max_expansions: int = 16,
        pop: int = 1,
        n_solutions: int = 1,
        dedup: bool = True,
        **kw: Any,
    ) -> None:
        if scorer is None:
            raise InvalidArgumentError("scorer: best-first search needs a scorer")
        super().__init__(proposer, scorer, **kw)
        self.expand = _positive("expand", expand)
        self.max_expansions = _positive("max_expansions", max_expansions)
        self.pop = _positive("pop", pop)
        self.n_solutions = _positive("n_solutions", n_solutions)
        self.dedup = dedup

    def run_batch(self, problems: Sequence[str], **kw: Any) -> list[SearchResult]:
        ctx = _Ctx(problems, self.seed, self.max_nodes, None)
        P = len(ctx.problems)
        if not P:
            return []
        tree = ctx.tree
        used = np.zeros(P, dtype=np.int64)
        finished: list[list[int]] = [[] for _ in range(P)]
        active = np.ones(P, dtype=bool)
        to_expand = ctx.roots.copy()
        bar = self._bar(self.max_expansions, "BestFirst")
        while True:
            if len(to_expand):
                kids, _ = self._propose(ctx, to_expand, self.expand, dedup=self.dedup)
                np.add.at(used, tree.problem(to_expand), 1)
                tree.push(kids, self._score(ctx, kids))
                if bar is not None:
                    bar.update(1)
            active &= used < self.max_expansions
            active &= np.array([len(f) < self.n_solutions for f in finished], dtype=bool)
            if not active.any():
                break
            roots = ctx.roots[active]
            k = np.minimum(self.pop, self.max_expansions - used[active])
            popped = []
            for kk in np.unique(k).tolist():
                sel = roots[k == kk]
                nodes, off = tree.pop_best(kk, roots=sel)
                popped.append(nodes)
                empty = sel[np.diff(off) == 0]
                active[tree.problem(empty)] = False
            nodes = np.concatenate(popped)
            term = tree.terminal(nodes)
            for n in nodes[term].tolist():
                finished[tree.problem([n])[0]].append(n)
            to_expand = nodes[~term]
            if not len(to_expand) and not active.any():
                break
        if bar is not None:
            bar.close()
        nodes_l: list[int] = [n for f in finished for n in f]
        for p in range(P):
            if not finished[p]:  # no finished solution: report the best open node
                best, _ = tree.pop_best(1, roots=ctx.roots[p : p + 1])
                nodes_l.extend(best.tolist())
        nodes = np.asarray(nodes_l, dtype=np.int64)
        scores = np.asarray([ctx.score_cache.get(n, 0.0) for n in nodes_l], dtype=np.float64)
        cands = self._candidates(ctx, nodes, scores)
        return self._results(ctx, cands, [c[0] if c else None for c in cands])


class MCTS(Strategy):
    """Monte Carlo tree search with PUCT (AlphaMath): prior from the step log-probability, value from
    the scorer (optionally after a ``rollout_depth``-step rollout), ``leaf_batch`` leaves selected per
    problem per iteration under virtual loss, all scored in one batched call.

    ``run_batch(problems, max_iterations=k)`` stops after k select/expand/backup iterations (a
    checkpoint: ``result.tree.to_json()`` or pickle); ``run_batch(problems, tree=checkpoint)``
    resumes it. ``simulations`` counts the root's visits, so the resumed search equals the
    uninterrupted one.
    """

    def __init__(
        self,
        proposer: Proposer,
        scorer: Scorer,
        *,
        simulations: int = 64,
        expand: int = 4,
        leaf_batch: int = 1,
        c: float = 1.0,
        policy: str = "puct",
        virtual_loss: float = 1.0,
        fpu: float = 0.0,
        rollout_depth: int = 0,
        prior_temperature: float = 1.0,
        dedup: bool = True,
        **kw: Any,
    ) -> None:
        if scorer is None:
            raise InvalidArgumentError("scorer: MCTS needs a scorer (the value model)")
        super().__init__(proposer, scorer, **kw)
        self.simulations = _positive("simulations", simulations)
        self.expand = _positive("expand", expand)
        self.leaf_batch = _positive("leaf_batch", leaf_batch)
        self.rollout_depth = _positive("rollout_depth", rollout_depth, allow_zero=True)
        if policy not in ("puct", "uct"):
            raise InvalidArgumentError(f"policy: must be 'puct' or 'uct', got {policy!r}")
        for name, v in (("c", c), ("virtual_loss", virtual_loss), ("prior_temperature", prior_temperature)):
            if not np.isfinite(v) or v < 0 or (name == "prior_temperature" and v == 0):
                raise InvalidArgumentError(f"{name}: must be finite and {'> 0' if name == 'prior_temperature' else '>= 0'}, got {v}")
        if not np.isfinite(fpu):
            raise InvalidArgumentError(f"fpu: must be finite, got {fpu}")
        self.c, self.policy, self.virtual_loss, self.fpu = float(c), policy, float(virtual_loss), float(fpu)
        self.prior_temperature = float(prior_temperature)
        self.dedup = dedup

    def run_batch(
        self,
        problems: Sequence[str],
        tree: SearchTree | None = None,
        max_iterations: int | None = None,
        **kw: Any,
    ) -> list[SearchResult]:
        """Search every problem; optionally resume from ``tree`` or stop after ``max_iterations``."""
        if max_iterations is not None:
            _positive("max_iterations", max_iterations, allow_zero=True)
        ctx = _Ctx(problems, self.seed, self.max_nodes, tree)
        P = len(ctx.problems)
        if not P:
            return []
        t = ctx.tree
        remaining = self.simulations - t.visits(ctx.roots)
        bar = self._bar(int(max(remaining.max(), 0)), "MCTS")
        iteration = 0
        while (remaining > 0).any() and (max_iterations is None or iteration < max_iterations):
            iteration += 1
            act = np.flatnonzero(remaining > 0)
            n_of = np.minimum(self.leaf_batch, remaining[act])
            parts = []
            for n in np.unique(n_of).tolist():
                leaves, _ = t.select(
                    n, roots=ctx.roots[act[n_of == n]], policy=self.policy, c=self.c,
                    virtual_loss=self.virtual_loss, fpu=self.fpu,
                )  # fmt: skip
                parts.append(leaves)
            leaves = np.concatenate(parts)
            term = t.terminal(leaves)
            values = np.zeros(len(leaves), dtype=np.float64)
            cached = np.array([bool(term[i]) and int(n) in ctx.score_cache for i, n in enumerate(leaves.tolist())], bool)
            if cached.any():
                values[cached] = [ctx.score_cache[int(n)] for n in leaves[cached].tolist()]
            fresh = np.flatnonzero(~cached)
            if len(fresh):
                if self.rollout_depth:
                    values[fresh] = self._rollout(ctx, leaves[fresh], self.rollout_depth)
                    for n, v in zip(leaves[fresh][term[fresh]].tolist(), values[fresh][term[fresh]].tolist()):
                        ctx.score_cache[n] = v
                else:
                    values[fresh] = self._score(ctx, leaves[fresh])
            grow = leaves[~term]
            if len(grow):
                self._propose(ctx, grow, self.expand, dedup=self.dedup, temperature=self.prior_temperature)
            t.backup(leaves, values)
            done = np.bincount(t.problem(leaves), minlength=P)
            remaining -= done
            if bar is not None:
                bar.update(int(done.max()))
        if bar is not None:
            bar.close()
        return self._finish(ctx)

    def _finish(self, ctx: _Ctx) -> list[SearchResult]:
        t = ctx.tree
        term = t.terminal()
        visits = t.visits()
        nodes = np.flatnonzero(term & (visits > 0))
        means = t.values(nodes) if len(nodes) else np.zeros(0)
        cands = self._candidates(ctx, nodes, means)
        best: list[Candidate | None] = []
        for p, root in enumerate(ctx.roots.tolist()):
            leaf = t.best_leaf(root, by="visits")
            match = [c for c in cands[p] if c.node == leaf]
            if match:
                best.append(match[0])
            elif cands[p]:
                best.append(cands[p][0])
            else:
                v = float(t.values([leaf])[0]) if visits[leaf] else 0.0
                steps = tuple(t.path_texts(leaf))
                best.append(Candidate(steps, v, leaf, False, self.answer(self.splitter.join(steps))))
        return self._results(ctx, cands, best)
