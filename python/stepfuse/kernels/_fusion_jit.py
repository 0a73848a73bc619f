"""Triton kernels for GFD range fusion: ``@triton.jit`` functions only (launchers live in ``fusion.py``).

Design (one read of each logit row). The candidate ranges ``[lo, hi)`` are contiguous in the
byte-sorted order ``perm``, so a program streams its slice of sorted positions ``j`` block by block,
loading ``x = lm_logits[b, perm[j]] / T`` (the only read of each logit; ``perm`` is shared by all rows
and stays in L2; with ``perm=None`` the logits are already in sorted order and the read is a plain
coalesced stream). Per block it forms the block max ``bm`` and ``bs = Σ exp(x - bm)``, which updates

* the row's online LSE (natural log), and
* every candidate whose range covers the whole block, in O(1) each: it merges ``(bm, bs)``.

A candidate whose range only partly covers the block (at most two blocks per candidate: where its
range starts and ends) takes an exact masked LSE over the block with its own max. Work per row is
O(V + C·BLOCK) whatever the range widths, and no step subtracts two sums: prefix sums of
``exp(x - running_max)`` would compute a narrow range's mass as a difference of two large prefixes and
lose it to cancellation in fp32, and one shared max would underflow ranges far below it.

Cost of the gather: reading through ``perm`` touches a row's 32-byte sectors in random order.
DRAM still delivers each sector about once while the batch's rows fit in L2 (B·V·2 bytes: 19.5 MB
at B=64, V=152k bf16), but L2-to-SM traffic grows up to 16x for bf16. Logits already in sorted order
(``perm=None``, e.g. an LM head whose rows were permuted once by the byte order) make every read a
coalesced stream; that is the layout to use when bandwidth matters.

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
    SORTED: tl.constexpr,
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
        if SORTED:  # logits already in sorted order: a plain coalesced read
            tok = idx
        else:
            tok = tl.load(perm_ptr + idx, mask=valid, other=0).to(tl.int64)
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
    C_BLOCK: tl.constexpr,
    MODE: tl.constexpr,
    K: tl.constexpr,
):
    """Merge the split states of row ``b``; MODE 0: rec only, 1: LM only, 2: the weighted sum; K > 0: top-k."""
    b = tl.program_id(0)
    offs_c = tl.arange(0, C_BLOCK)
    cmask = offs_c < C
    # Merge the NSPLIT partial states one split at a time (registers stay O(C_BLOCK)).
    mrow = tl.max(tl.full([C_BLOCK], float("-inf"), tl.float32), axis=0)
    srow = tl.sum(tl.zeros([C_BLOCK], tl.float32), axis=0)
    mc = tl.full([C_BLOCK], float("-inf"), tl.float32)
    sc = tl.zeros([C_BLOCK], tl.float32)
    for sp in range(NSPLIT):
        ws = b * NSPLIT + sp
        mrow, srow = _merge_lse(mrow, srow, tl.load(row_m_ptr + ws), tl.load(row_s_ptr + ws))
        cm = tl.load(cand_m_ptr + ws * C_BLOCK + offs_c)
        cs = tl.load(cand_s_ptr + ws * C_BLOCK + offs_c)
        mc, sc = _merge_lse(mc, sc, cm, cs)
    row_lse = tl.where(mrow == float("-inf"), 0.0, mrow) + _log_or_neginf(srow)
    cand_lse = tl.where(mc == float("-inf"), 0.0, mc) + _log_or_neginf(sc)

    base = tl.load(base_ptr + b * stride_base + offs_c, mask=cmask, other=0.0).to(tl.float32)
    rec = tl.load(rec_ptr + b * stride_rec + offs_c, mask=cmask, other=0.0).to(tl.float32)
    # Guards keep -inf - -inf and 0 * -inf (a weight that rounds to 0 in fp32) from forming NaN.
    empty = cand_lse == float("-inf")
    row_safe = tl.where(row_lse == float("-inf"), 0.0, row_lse)
    lm = tl.where(empty, float("-inf"), base + (tl.where(empty, 0.0, cand_lse) - row_safe))
    if MODE == 0:
        fused = rec
    elif MODE == 1:
        fused = lm
    else:
        lm_ninf = lm == float("-inf")
        rec_ninf = rec == float("-inf")
        lm_term = tl.where(lm_ninf, float("-inf"), w_lm * tl.where(lm_ninf, 0.0, lm))
        rec_term = tl.where(rec_ninf, float("-inf"), w_rec * tl.where(rec_ninf, 0.0, rec))
        fused = rec_term + lm_term
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
