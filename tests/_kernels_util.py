"""Helpers shared by the kernel tests: device choice, per-dtype tolerances, brute-force oracles."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

if not torch.cuda.is_available():
    # Triton fixes interpretation when a kernel is defined: set this before the kernel modules load.
    os.environ.setdefault("TRITON_INTERPRET", "1")

from stepfuse.kernels._common import use_triton  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
TRITON = use_triton(DEVICE)
needs_triton = pytest.mark.skipif(
    not TRITON, reason="Triton path inactive (needs triton and CUDA, or TRITON_INTERPRET=1 before import)"
)

# Triton vs the fp32 reference, per input dtype (both upcast the same 16-bit values, so these bound
# fp32 reassociation and, for attention, the 16-bit output rounding).
TOL = {
    torch.float32: {"rtol": 1e-5, "atol": 1e-5},
    torch.float16: {"rtol": 1e-3, "atol": 1e-3},
    torch.bfloat16: {"rtol": 1e-2, "atol": 1e-2},
}
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def close(actual, expected, dtype) -> None:
    torch.testing.assert_close(actual.float().cpu(), expected.float().cpu(), **TOL[dtype])


def fusion_oracle(logits, perm, lo, hi, base, rec, weight, temperature) -> np.ndarray:
    """Brute force in float64: per beam log-softmax, per candidate a loop over its tokens."""
    x = logits.double().cpu().numpy() / temperature
    perm = perm.cpu().numpy()
    lo, hi = lo.cpu().numpy(), hi.cpu().numpy()
    base, rec = base.double().cpu().numpy(), rec.double().cpu().numpy()
    b_, c_ = lo.shape
    out = np.empty((b_, c_))
    for b in range(b_):
        m = x[b].max()
        row = -math.inf if m == -math.inf else m + math.log(sum(math.exp(v - m) for v in x[b]))
        for c in range(c_):
            vals = [x[b, perm[j]] for j in range(max(lo[b, c], 0), min(hi[b, c], len(perm)))]
            mv = max(vals, default=-math.inf)
            if mv == -math.inf:
                lm = -math.inf
            else:
                lm = base[b, c] + mv + math.log(sum(math.exp(v - mv) for v in vals)) - row
            if weight == 0.0:
                out[b, c] = rec[b, c]
            elif weight == 1.0:
                out[b, c] = lm
            else:
                out[b, c] = (1 - weight) * rec[b, c] + weight * lm
    return out


def attention_oracle(q, kp, vp, ks, vs, lens, scale) -> np.ndarray:
    """Brute force in float64: for each beam and query head, softmax over [prefix; own suffix]."""
    q, kp, vp = q.double().cpu().numpy(), kp.double().cpu().numpy(), vp.double().cpu().numpy()
    ks, vs, lens = ks.double().cpu().numpy(), vs.double().cpu().numpy(), lens.cpu().numpy()
    b_, hq, d = q.shape
    group = hq // kp.shape[1]
    out = np.zeros((b_, hq, d))
    for b in range(b_):
        for h in range(hq):
            kv = h // group
            keys = np.concatenate([kp[:, kv], ks[b, : lens[b], kv]])
            vals = np.concatenate([vp[:, kv], vs[b, : lens[b], kv]])
            if len(keys) == 0:
                continue
            s = keys @ q[b, h] * scale
            w = np.exp(s - s.max())
            out[b, h] = (w / w.sum()) @ vals
    return out
