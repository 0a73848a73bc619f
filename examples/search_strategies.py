"""Compare test-time search strategies on a toy task with a known answer, then render one MCTS tree.

The "model" proposes the next digit of a hidden code from a noisy prior; the "verifier" scores each
prefix (1 if right so far, plus noise). Swap in ``stepfuse.search.hf.HFProposer`` / ``HFScorer`` for
a real language model and process reward model.

    python examples/search_strategies.py [out.html]
"""

from __future__ import annotations

import math
import sys
import tempfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from stepfuse.search import MCTS, BeamSearch, BestFirst, BestOfN, State, Step, preference_pairs, render_tree

CODE_LEN = 5


def hidden(problem: str) -> str:
    rng = np.random.default_rng(zlib.crc32(problem.encode()))
    return "".join(map(str, rng.integers(0, 10, CODE_LEN)))


class ToyModel:
    """Proposer and scorer in one object: pure functions of the state, so runs are reproducible."""

    def propose(self, states: list[State], n: int) -> list[list[Step]]:
        out, seen = [], Counter()
        for st in states:
            prefix = "".join(st.steps)
            key = st.problem + "|" + prefix
            seen[key] += 1  # equal states in one call (e.g. best-of-N chains) still get fresh samples
            rng = np.random.default_rng([zlib.crc32(key.encode()), n, seen[key]])
            p = np.full(10, 0.6 / 9)
            p[int(hidden(st.problem)[len(prefix)])] = 0.4
            digits = rng.choice(10, size=n, p=p)
            out.append([Step(str(d), (int(d),), math.log(p[d]), len(prefix) + 1 == CODE_LEN) for d in digits])
        return out

    def score(self, states: list[State]) -> list[list[float]]:
        out = []
        for st in states:
            code, prefix, row = hidden(st.problem), "", []
            for s in st.steps:
                prefix += s
                noise = np.random.default_rng(zlib.crc32(("s|" + st.problem + prefix).encode())).normal()
                row.append(float(code.startswith(prefix)) + 0.3 * noise)
            out.append(row)
        return out


def main() -> None:
    problems = [f"code #{i}" for i in range(50)]
    m = ToyModel()
    strategies = {
        "best-of-16": BestOfN(m, m, n=16),
        "beam 4x4": BeamSearch(m, m, beam_width=4, expand=4),
        "best-first": BestFirst(m, m, expand=4, max_expansions=20),
        "MCTS 20 sims": MCTS(m, m, simulations=20, expand=4, leaf_batch=4),
    }
    print(f"{'strategy':<14} {'accuracy':>8} {'tokens/problem':>15}")
    for name, s in strategies.items():
        res = s.run_batch(problems)
        acc = np.mean([r.best is not None and "".join(r.best.steps) == hidden(p) for p, r in zip(problems, res)])
        toks = np.mean([r.usage.generated_tokens for r in res])
        print(f"{name:<14} {acc:>8.2f} {toks:>15.1f}")
    r = MCTS(m, m, simulations=30, expand=4).run(problems[0])
    pairs = preference_pairs(r.tree, margin=0.5)
    print(f"{len(pairs)} step-level preference pairs from one MCTS tree, e.g. {pairs[0] if pairs else None}")
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.gettempdir()) / "stepfuse_mcts.html"
    print("tree rendered to", render_tree(r.tree, out))


if __name__ == "__main__":
    main()
