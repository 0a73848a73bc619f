"""Triton kernels for GFD range fusion: ``@triton.jit`` functions only (launchers live in ``fusion.py``).

Design (one read of each logit row). The candidate ranges ``[lo, hi)`` are contiguous in the
byte-sorted order ``perm``, so a program streams its slice of sorted positions ``j`` block by block,
loading ``x = lm_logits[b, perm[j]] / T`` (the only read of each logit; ``perm`` is shared by all rows
and stays in L2). Per block it forms the block max ``bm`` and ``bs = Σ exp(x - bm)``, which updates

* the row's online LSE (natural log), and
* every candidate whose range covers the whole block, in O(1) each: it merges ``(bm, bs)``.

A candidate whose range only partly covers the block (at most two blocks per candidate: where its
range starts and ends) takes an exact masked LSE over the block with its own max. Work per row is
O(V + C·BLOCK) whatever the range widths, and no step subtracts two sums: prefix sums of
``exp(x - running_max)`` would compute a narrow range's mass as a difference of two large prefixes and
lose it to cancellation in fp32, and one shared max would underflow ranges far below it.

Rows are split across ``NSPLIT`` programs (grid ``(B, NSPLIT)``) so small batches still fill the
GPU; each writes partial ``(max, sum)`` states that ``_range_combine_kernel`` merges, then applies
``base``, the row normaliser, the weighted sum with the recognizer, and optionally the top-k.
"""

from __future__ import annotations

import os

import triton
import triton.language as tl

# Triton decides at decoration time whether these functions are interpreted.
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"


@triton.jit
def _merge_lse(m1, s1, m2, s2):
    """Merge two (max, sum-of-exp-relative-to-max) states; -inf maxima (empty states) merge cleanly."""
    m = tl.maximum(m1, m2)
    m_safe = tl.where(m == float("-inf"), 0.0, m)
    s = s1 * tl.exp(m1 - m_safe) + s2 * tl.exp(m2 - m_safe)
    return m, s


@triton.jit
def _log_or_neginf(s):
    """log(s) for s > 0, else -inf (without evaluating log(0), which the interpreter warns about)."""
    pos = s > 0
    return tl.where(pos, tl.log(tl.where(pos, s, 1.0)), float("-inf"))


@triton.jit
def _range_lse_partial_kernel(
    logits_ptr,
    perm_ptr,
    lo_ptr,
    hi_ptr,
    row_m_ptr,
    row_s_ptr,
    cand_m_ptr,
    cand_s_ptr,
    stride_lb,
    stride_rb,
    V,
    C,
    temperature,
    blocks_per_split,
    NSPLIT: tl.constexpr,
    BLOCK: tl.constexpr,
    C_BLOCK: tl.constexpr,
):
    b = tl.program_id(0)
    sp = tl.program_id(1)
    offs_c = tl.arange(0, C_BLOCK)
    cmask = offs_c < C
    lo = tl.load(lo_ptr + b * stride_rb + offs_c, mask=cmask, other=0).to(tl.int64)
    hi = tl.load(hi_ptr + b * stride_rb + offs_c, mask=cmask, other=0).to(tl.int64)
    lo = tl.minimum(tl.maximum(lo, 0), V)
    hi = tl.minimum(tl.maximum(hi, 0), V)
    nonempty = cmask & (hi > lo)

    row_m = tl.max(tl.full([C_BLOCK], float("-inf"), tl.float32), axis=0)
    row_s = tl.sum(tl.zeros([C_BLOCK], tl.float32), axis=0)
    cm = tl.full([C_BLOCK], float("-inf"), tl.float32)
    cs = tl.zeros([C_BLOCK], tl.float32)
    offs = tl.arange(0, BLOCK)
    row_ptr = logits_ptr + b.to(tl.int64) * stride_lb
    for i in range(0, blocks_per_split):
        j0 = (sp * blocks_per_split + i).to(tl.int64) * BLOCK
        idx = j0 + offs
        valid = idx < V
        tok = tl.load(perm_ptr + idx, mask=valid, other=0)
        x = tl.load(row_ptr + tok, mask=valid, other=float("-inf")).to(tl.float32) / temperature
        bm = tl.max(x, axis=0)
        bm_safe = tl.where(bm == float("-inf"), 0.0, bm)
        bs = tl.sum(tl.exp(x - bm_safe), axis=0)
        row_m, row_s = _merge_lse(row_m, row_s, bm, bs)

        j1 = tl.minimum(j0 + BLOCK, V)
        full = nonempty & (lo <= j0) & (hi >= j1)
        part = nonempty & (lo < j1) & (hi > j0) & (~full)
        fm, fs = _merge_lse(cm, cs, bm, bs)
        cm = tl.where(full, fm, cm)
        cs = tl.where(full, fs, cs)
        # Exact masked LSE for each candidate whose range starts or ends inside this block.
        while tl.sum(part.to(tl.int32), axis=0) > 0:
            c = tl.min(tl.where(part, offs_c, C_BLOCK), axis=0)
            sel = offs_c == c
            lo_c = tl.sum(tl.where(sel, lo, 0), axis=0)
            hi_c = tl.sum(tl.where(sel, hi, 0), axis=0)
            xm = tl.where((idx >= lo_c) & (idx < hi_c), x, float("-inf"))
            pm = tl.max(xm, axis=0)
            pm_safe = tl.where(pm == float("-inf"), 0.0, pm)
            ps = tl.sum(tl.exp(xm - pm_safe), axis=0)
            pmv, psv = _merge_lse(cm, cs, pm, ps)
            cm = tl.where(sel, pmv, cm)
            cs = tl.where(sel, psv, cs)
            part = part & (~sel)

    ws = b * NSPLIT + sp
    tl.store(row_m_ptr + ws, row_m)
    tl.store(row_s_ptr + ws, row_s)
    tl.store(cand_m_ptr + ws * C_BLOCK + offs_c, cm)
    tl.store(cand_s_ptr + ws * C_BLOCK + offs_c, cs)


@triton.jit
def _range_combine_kernel(
    row_m_ptr,
    row_s_ptr,
    cand_m_ptr,
    cand_s_ptr,
    base_ptr,
    rec_ptr,
    out_ptr,
    topv_ptr,
    topi_ptr,
    stride_base,
    stride_rec,
    C,
    w_rec,
    w_lm,
    NSPLIT: tl.constexpr,
    S_BLOCK: tl.constexpr,
    C_BLOCK: tl.constexpr,
    MODE: tl.constexpr,
    K: tl.constexpr,
):
    """Merge the split states of row ``b``; MODE 0: rec only, 1: LM only, 2: the weighted sum; K > 0: top-k."""
    b = tl.program_id(0)
    offs_s = tl.arange(0, S_BLOCK)
    offs_c = tl.arange(0, C_BLOCK)
    smask = offs_s < NSPLIT
    cmask = offs_c < C
    ws = b * NSPLIT + offs_s
    rm = tl.load(row_m_ptr + ws, mask=smask, other=float("-inf"))
    rs = tl.load(row_s_ptr + ws, mask=smask, other=0.0)
    mrow = tl.max(rm, axis=0)
    mrow_safe = tl.where(mrow == float("-inf"), 0.0, mrow)
    row_lse = mrow_safe + _log_or_neginf(tl.sum(rs * tl.exp(rm - mrow_safe), axis=0))

    ptr2 = ws[:, None] * C_BLOCK + offs_c[None, :]
    m2 = smask[:, None] & (offs_c[None, :] < C_BLOCK)
    cm = tl.load(cand_m_ptr + ptr2, mask=m2, other=float("-inf"))
    cs = tl.load(cand_s_ptr + ptr2, mask=m2, other=0.0)
    mc = tl.max(cm, axis=0)
    mc_safe = tl.where(mc == float("-inf"), 0.0, mc)
    cand_lse = mc_safe + _log_or_neginf(tl.sum(cs * tl.exp(cm - mc_safe[None, :]), axis=0))

    base = tl.load(base_ptr + b * stride_base + offs_c, mask=cmask, other=0.0).to(tl.float32)
    rec = tl.load(rec_ptr + b * stride_rec + offs_c, mask=cmask, other=0.0).to(tl.float32)
    lm = tl.where(cand_lse == float("-inf"), float("-inf"), base + (cand_lse - row_lse))
    if MODE == 0:
        fused = rec
    elif MODE == 1:
        fused = lm
    else:
        fused = w_rec * rec + w_lm * lm
    if K == 0:
        tl.store(out_ptr + b * C + offs_c, fused, mask=cmask)
    else:
        # k rounds of argmax; ties go to the lower candidate index (as a stable descending sort).
        avail = cmask
        for i in range(K):
            vals = tl.where(avail, fused, float("-inf"))
            mx = tl.max(vals, axis=0)
            pick = tl.min(tl.where(avail & (vals == mx), offs_c, C_BLOCK), axis=0)
            first = tl.min(tl.where(avail, offs_c, C_BLOCK), axis=0)
            pick = tl.where(pick == C_BLOCK, first, pick)  # NaN scores: keep going in index order
            sel = offs_c == pick
            tl.store(topv_ptr + b * K + i, tl.sum(tl.where(sel, fused, 0.0), axis=0))
            tl.store(topi_ptr + b * K + i, pick.to(tl.int64))
            avail = avail & (~sel)
