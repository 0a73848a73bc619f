"""Synthetic step task with a known optimum for the search tests: each problem hides a digit string;
the proposer samples the next digit from a noisy prior (the right digit has probability ``q``); the
scorer returns, per step, 1 if the prefix so far is right else 0, plus Gaussian noise. Both are pure
functions of (seed, problem, prefix, occurrence), so results cannot depend on batch composition."""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Sequence

import numpy as np

from stepfuse.search import State, Step


def _h(*parts: object) -> int:
    return zlib.crc32("\x1f".join(map(str, parts)).encode())


class DigitTask:
    def __init__(self, n_problems: int, length: int = 5, seed: int = 0, q: float = 0.4, noise: float = 0.3):
        rng = np.random.default_rng(seed)
        self.length, self.seed, self.q, self.noise = length, seed, q, noise
        self.hidden = {
            f"task {seed}-{i}": "".join(map(str, rng.integers(0, 10, length))) for i in range(n_problems)
        }
        self.problems = list(self.hidden)
        self.propose_calls = 0
        self.score_calls = 0

    # Proposer
    def propose(self, states: Sequence[State], n: int) -> list[list[Step]]:
        self.propose_calls += 1
        occ: Counter[tuple[str, str]] = Counter()
        out = []
        for st in states:
            prefix = "".join(st.steps)
            key = (st.problem, prefix)
            k = occ[key]
            occ[key] += 1
            rng = np.random.default_rng([self.seed, _h(st.problem, prefix), k])
            right = int(self.hidden[st.problem][len(prefix)])
            p = np.full(10, (1 - self.q) / 9)
            p[right] = self.q
            digits = rng.choice(10, size=n, p=p)
            term = len(prefix) + 1 >= self.length
            out.append([Step(str(d), (int(d),), math.log(p[d]), term) for d in digits])
        return out

    # Scorer
    def score(self, states: Sequence[State]) -> list[list[float]]:
        self.score_calls += 1
        out = []
        for st in states:
            hid = self.hidden[st.problem]
            prefix = ""
            row = []
            for s in st.steps:
                prefix += s
                rng = np.random.default_rng([self.seed, _h("score", st.problem, prefix)])
                row.append(float(hid.startswith(prefix)) + self.noise * float(rng.standard_normal()))
            out.append(row)
        return out

    def correct(self, results) -> float:
        ok = [r.best is not None and "".join(r.best.steps) == self.hidden[p] for p, r in zip(self.problems, results)]
        return float(np.mean(ok))
