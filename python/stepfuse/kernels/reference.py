"""fp32 torch references for every stepfuse kernel; also the fallback without Triton or a GPU.

Each function here is the specification its Triton kernel is tested against: plain torch ops in
float32, natural-log log-sum-exp, ``-inf`` meaning "no mass". They take the same arguments as the
public launchers in :mod:`stepfuse.kernels.fusion` and :mod:`stepfuse.kernels.attention` but do no
validation (the launchers validate, then dispatch here or to Triton).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import torch

__all__ = [
    "TopK",
    "attention_state_ref",
    "combine_terms",
    "fused_range_logprobs_ref",
    "fused_topk_ref",
    "merge_attention_states_ref",
    "range_logsumexp_ref",
    "shared_prefix_attention_ref",
    "topk_ref",
]

_NEG_INF = float("-inf")


class TopK(NamedTuple):
    """The ``k`` best fused scores per beam (descending, ties by lower candidate index) and their indices."""

    values: torch.Tensor
    indices: torch.Tensor


def _safe_max(m: torch.Tensor) -> torch.Tensor:
    """``m`` with -inf (an empty or all -inf set) replaced by 0, so ``x - m`` never forms ``-inf - -inf``."""
    import torch

    return torch.where(torch.isneginf(m), torch.zeros_like(m), m)


def range_logsumexp_ref(
    x: torch.Tensor, perm: torch.Tensor | None, lo: torch.Tensor, hi: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row LSE and per-range LSE over sorted positions: ``log Σ_{j∈[lo,hi)} exp(x[b, perm[j]])``.

    Exact segment decomposition: the 2C endpoints of a row cut the sorted positions into at most
    2C+1 disjoint segments; each segment's LSE uses its own max (no cancellation, no underflow), and
    a range's LSE is the LSE of the segments it covers. O(B·V + B·C²) time, O(B·V) memory.

    x: float32 [B, V]; perm: int [V] (sorted position -> token id), or None when x is already in
    sorted order; lo, hi: int [B, C].
    Returns (row_lse [B], range_lse [B, C]) in float32; empty ranges (lo >= hi) give -inf.
    """
    import torch

    b, v = x.shape
    c = lo.shape[1]
    xs = x.clone() if perm is None else x.index_select(1, perm.long())  # [B, V] in sorted order
    lo = lo.long().clamp(0, v)
    hi = hi.long().clamp(0, v)
    hi = torch.maximum(hi, lo)  # empty ranges become [lo, lo)
    ends = torch.sort(torch.cat([lo, hi], dim=1), dim=1).values  # [B, 2C]
    # Segment id of sorted position j = number of endpoints <= j: a running count of endpoint marks.
    marks = torch.zeros((b, v + 1), dtype=torch.int64, device=x.device)
    marks.scatter_add_(1, ends, torch.ones_like(ends))
    seg = marks[:, :v].cumsum_(1)  # [B, V] in [0, 2C]
    nseg = 2 * c + 1
    seg_max = torch.full((b, nseg), _NEG_INF, dtype=torch.float32, device=x.device)
    seg_max.scatter_reduce_(1, seg, xs, reduce="amax", include_self=True)
    m = _safe_max(seg_max)
    xs.sub_(m.gather(1, seg)).exp_()
    seg_sum = torch.zeros((b, nseg), dtype=torch.float32, device=x.device)
    seg_sum.scatter_add_(1, seg, xs)
    seg_lse = m + torch.log(seg_sum)  # [B, 2C+1]; empty segments give -inf
    zero = torch.zeros((b, 1), dtype=ends.dtype, device=x.device)
    full = torch.full((b, 1), v, dtype=ends.dtype, device=x.device)
    starts = torch.cat([zero, ends], dim=1)  # segment k = [starts[k], stops[k])
    stops = torch.cat([ends, full], dim=1)
    inside = (starts[:, None, :] >= lo[:, :, None]) & (stops[:, None, :] <= hi[:, :, None])  # [B, C, 2C+1]
    cand = torch.where(inside, seg_lse[:, None, :], torch.full_like(seg_lse[:, None, :], _NEG_INF))
    range_lse = torch.logsumexp(cand, dim=2)
    row_lse = torch.logsumexp(seg_lse, dim=1)
    return row_lse, range_lse


def combine_terms(
    row_lse: torch.Tensor,
    range_lse: torch.Tensor,
    base: torch.Tensor,
    rec_logprobs: torch.Tensor,
    weight: float,
) -> torch.Tensor:
    """``(1-w)·rec + w·(base + range_lse - row_lse)``; an empty range or an all -inf row gives an LM term of -inf.

    A zero weight drops the LM term entirely (so -inf LM terms cannot make ``0·-inf = NaN``), and
    likewise ``w = 1`` drops the recognizer term.
    """
    import torch

    neg = torch.full_like(range_lse, _NEG_INF)
    lm = torch.where(torch.isneginf(range_lse), neg, base.float() + (range_lse - row_lse[:, None]))
    rec = rec_logprobs.float()
    if weight == 0.0:
        return rec.clone()
    if weight == 1.0:
        return lm
    # A -inf term stays -inf even when its weight is tiny (0 * -inf would be NaN).
    lm_term = torch.where(torch.isneginf(lm), neg, weight * lm)
    rec_term = torch.where(torch.isneginf(rec), torch.full_like(rec, _NEG_INF), (1.0 - weight) * rec)
    return rec_term + lm_term


def fused_range_logprobs_ref(
    lm_logits: torch.Tensor,
    perm: torch.Tensor | None,
    lo: torch.Tensor,
    hi: torch.Tensor,
    base: torch.Tensor,
    rec_logprobs: torch.Tensor,
    weight: float,
    temperature: float = 1.0,
) -> torch.Tensor:
    """fp32 reference of :func:`stepfuse.kernels.fused_range_logprobs` (GFD byte-prefix fusion).

    fused[b, c] = (1-w)·rec[b, c] + w·(base[b, c] + log Σ_{j∈[lo,hi)} softmax(lm_logits[b] / T)[perm[j]]).
    Shapes: lm_logits [B, V] float; perm [V] int or None (identity); lo, hi, base, rec_logprobs [B, C]. Returns float32 [B, C].
    """
    x = lm_logits.float() / temperature
    row_lse, range_lse = range_logsumexp_ref(x, perm, lo, hi)
    return combine_terms(row_lse, range_lse, base, rec_logprobs, weight)


def topk_ref(fused: torch.Tensor, k: int) -> TopK:
    """Top-k along the last axis, descending, ties broken by the lower index (a stable sort)."""
    import torch

    order = torch.sort(fused, dim=1, descending=True, stable=True)
    return TopK(order.values[:, :k].contiguous(), order.indices[:, :k].contiguous())


def fused_topk_ref(
    lm_logits: torch.Tensor,
    perm: torch.Tensor | None,
    lo: torch.Tensor,
    hi: torch.Tensor,
    base: torch.Tensor,
    rec_logprobs: torch.Tensor,
    weight: float,
    k: int,
    temperature: float = 1.0,
) -> TopK:
    """fp32 reference of :func:`stepfuse.kernels.fused_topk`: the ``k`` best fused candidates per beam."""
    fused = fused_range_logprobs_ref(lm_logits, perm, lo, hi, base, rec_logprobs, weight, temperature)
    return topk_ref(fused, k)


def merge_attention_states_ref(
    o1: torch.Tensor, lse1: torch.Tensor, o2: torch.Tensor, lse2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge two partial softmax-attention states over disjoint key sets (natural-log LSE).

    o = (e^{lse1}·o1 + e^{lse2}·o2) / (e^{lse1} + e^{lse2}), lse = log(e^{lse1} + e^{lse2})
    (FlashInfer's "attention state" merge, Ye et al. 2024). A state with lse = -inf (no keys) is the
    identity; two empty states merge to o = 0, lse = -inf. o*: [..., D]; lse*: [...]. Returns fp32.
    """
    import torch

    l1 = lse1.float()
    l2 = lse2.float()
    m = _safe_max(torch.maximum(l1, l2))
    w1 = torch.exp(l1 - m)
    w2 = torch.exp(l2 - m)
    tot = w1 + w2
    zero = torch.zeros((), dtype=torch.float32, device=o1.device)
    a = torch.where((w1 > 0)[..., None], w1[..., None] * o1.float(), zero)
    b = torch.where((w2 > 0)[..., None], w2[..., None] * o2.float(), zero)
    safe_tot = torch.where(tot > 0, tot, torch.ones_like(tot))
    o = (a + b) / safe_tot[..., None]
    lse = torch.where(tot > 0, m + torch.log(safe_tot), torch.full_like(tot, _NEG_INF))
    return o, lse


def attention_state_ref(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention of q [B, H, D] over k, v [B, N, H, D] where mask [B, N] holds; returns (o, lse) fp32.

    Rows with no valid key give o = 0 and lse = -inf.
    """
    import torch

    s = torch.einsum("bhd,bnhd->bhn", q.float(), k.float()) * scale
    s = torch.where(mask[:, None, :], s, torch.full_like(s, _NEG_INF))
    lse = torch.logsumexp(s, dim=2)  # [B, H]
    p = torch.exp(s - _safe_max(lse)[..., None])
    o = torch.einsum("bhn,bnhd->bhd", p, v.float())
    return o, lse


def shared_prefix_attention_ref(
    q: torch.Tensor,
    k_prefix: torch.Tensor,
    v_prefix: torch.Tensor,
    k_suffix: torch.Tensor,
    v_suffix: torch.Tensor,
    suffix_lens: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """fp32 reference of :func:`stepfuse.kernels.shared_prefix_attention` (cascade decode attention).

    out[b, h] = softmax(scale · q[b, h] · [K_prefix; K_suffix[b, :len_b]]ᵀ) · [V_prefix; V_suffix[b, :len_b]]
    computed directly over the concatenated keys, with GQA (query head h reads KV head h // (Hq / Hkv)).
    q [B, Hq, D]; k/v_prefix [P, Hkv, D]; k/v_suffix [B, S, Hkv, D]; suffix_lens [B]. Returns q.dtype [B, Hq, D].
    """
    import torch

    bsz, hq, _ = q.shape
    p = k_prefix.shape[0]
    s = k_suffix.shape[1]
    group = hq // k_prefix.shape[1]
    kp = k_prefix.float().repeat_interleave(group, dim=1)[None].expand(bsz, -1, -1, -1)
    vp = v_prefix.float().repeat_interleave(group, dim=1)[None].expand(bsz, -1, -1, -1)
    ks = k_suffix.float().repeat_interleave(group, dim=2)
    vs = v_suffix.float().repeat_interleave(group, dim=2)
    k = torch.cat([kp, ks], dim=1)
    v = torch.cat([vp, vs], dim=1)
    lens = suffix_lens.to(q.device).long().clamp(0, s)
    pos = torch.arange(p + s, device=q.device)
    mask = (pos[None, :] < p) | (pos[None, :] < p + lens[:, None])
    o, _ = attention_state_ref(q, k, v, mask, scale)
    return o.to(q.dtype)
