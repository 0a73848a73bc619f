"""Fuse a recognizer's candidates with an LM over a different vocabulary, one pass over the LM logits.

A toy byte vocabulary is sorted lexicographically; each recognizer candidate leaves some trailing
bytes, and the LM tokens that extend those bytes form one contiguous range of the sorted order
(what ``ByteVocab.prefix_range`` returns). ``fused_range_logprobs`` turns the LM logits into the
byte-prefix log-probability of each range and mixes it with the recognizer score. Runs on CPU (the
torch reference) or on a GPU (the Triton kernel).
"""

from __future__ import annotations

import bisect

import torch

from stepfuse.kernels import fused_range_logprobs, fused_topk

lm_vocab = [b"a", b"an", b"and", b"ant", b"b", b"be", b"bee", b"c", b"cat", b" ", b"the"]
order = sorted(range(len(lm_vocab)), key=lambda t: lm_vocab[t])
perm = torch.tensor(order)  # sorted position -> LM token id
sorted_bytes = [lm_vocab[t] for t in order]


def prefix_range(prefix: bytes) -> tuple[int, int]:
    """Sorted positions [lo, hi) of the LM tokens that start with ``prefix``."""
    lo = bisect.bisect_left(sorted_bytes, prefix)
    hi = bisect.bisect_left(sorted_bytes, prefix + b"\xff")
    return lo, hi


# One beam, three recognizer candidates whose trailing bytes are "an", "be" and "x".
trailing = [b"an", b"be", b"x"]
ranges = torch.tensor([[prefix_range(t) for t in trailing]])  # [1, 3, 2]
lo, hi = ranges[..., 0], ranges[..., 1]
lm_logits = torch.randn(1, len(lm_vocab), generator=torch.Generator().manual_seed(0))
rec = torch.tensor([[-0.5, -1.2, -2.0]])
base = torch.zeros(1, 3)  # LM log-prob of the bytes already committed

fused = fused_range_logprobs(lm_logits, perm, lo, hi, base, rec, weight=0.3)
best = fused_topk(lm_logits, perm, lo, hi, base, rec, 0.3, 2)
for t, s in zip(trailing, fused[0].tolist()):
    print(f"candidate ending in {t!r:6}: fused log-prob {s:8.3f}")
print("top-2 candidates:", best.indices[0].tolist())
