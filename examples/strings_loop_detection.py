"""Detect a decoding loop and near-duplicate drafts with stepfuse.strings.

Run: python examples/strings_loop_detection.py
"""

from __future__ import annotations

import numpy as np

from stepfuse import strings


def main() -> None:
    rng = np.random.default_rng(0)
    # A token stream that falls into a loop of period 37 with one sampling glitch.
    prefix = rng.integers(0, 50_000, 400)
    loop = rng.integers(0, 50_000, 37)
    tokens = np.concatenate([prefix, np.resize(loop, 300)])
    tokens[-20] = 7
    period = strings.find_repetition(tokens, window=64, max_mismatch=2)
    print(f"loop period: {period}")

    # Where does the last step (64 tokens) reappear with at most 4 substitutions?
    step = tokens[-64:]
    d = strings.hamming_distances(tokens[:-64], step, k=4)
    print(f"earlier near-copies of the last step at offsets: {np.flatnonzero(d <= 4)[:10].tolist()}")

    # Byte-level fuzzy match of two drafts, exact and approximate.
    a = b"Step 3: divide both sides by 4 to get x = 12."
    b = b"Step 3: divide both sides by 4 to get x = 13."
    print("byte distance:", int(strings.hamming_distances(a, b)[0]))
    print("approximate:", strings.hamming_distances_approx(a * 4, b, 0.5, seed=0)[0])


if __name__ == "__main__":
    main()
