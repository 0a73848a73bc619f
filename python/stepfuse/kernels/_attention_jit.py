"""Triton kernels for shared-prefix (cascade) decode attention: ``@triton.jit`` functions only.

Cascade inference (FlashInfer, Ye et al. 2024): at a decode step every beam's query attends to one
shared prefix and to its own suffix. Softmax attention over a union of disjoint key sets is the
LSE-weighted merge of the attention over each set, so

* ``_prefix_state_kernel`` treats the B·G query heads that share a KV head (G = Hq / Hkv) as the
  rows of one tile and reads each prefix K/V block once for all of them (not once per beam), with
  the prefix optionally split into chunks across programs (flash-decoding) for occupancy;
* ``_suffix_state_kernel`` handles beam b's own suffix keys (``suffix_lens[b]`` of them) for the G
  query heads of one KV head;
* ``_merge_states_kernel`` / ``_merge2_kernel`` merge the partial states (o, lse) by LSE.

States are (o normalised over its own keys, lse natural log); a state with no keys is (0, -inf).
Inputs are upcast to float32 right after loading; ``DOT_PREC`` is "ieee" for fp32 inputs (exact to
fp32 tolerance) and "tf32" for fp16/bf16 inputs (whose values tf32 holds exactly).
"""

from __future__ import annotations

import os

import triton
import triton.language as tl

# Triton decides at decoration time whether these functions are interpreted.
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"


@triton.jit
def _log_or_neginf(s):
    pos = s > 0
    return tl.where(pos, tl.log(tl.where(pos, s, 1.0)), float("-inf"))


@triton.jit
def _attend(
    q,
    k_ptr,
    v_ptr,
    stride_kn,
    stride_vn,
    n_lo,
    n_hi,
    scale,
    offs_d,
    dmask,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    """Online-softmax attention of the q tile [ROWS, D] over keys [n_lo, n_hi); returns (acc, m, l)."""
    m_i = tl.full([BLOCK_ROWS], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_ROWS], tl.float32)
    acc = tl.zeros([BLOCK_ROWS, BLOCK_D], tl.float32)
    offs_n = tl.arange(0, BLOCK_N)
    for n0 in range(n_lo, n_hi, BLOCK_N):
        n = n0 + offs_n
        nmask = n < n_hi
        kt = tl.load(
            k_ptr + n[None, :].to(tl.int64) * stride_kn + offs_d[:, None],
            mask=dmask[:, None] & nmask[None, :],
            other=0.0,
        ).to(tl.float32)
        s = tl.dot(q, kt, input_precision=DOT_PREC) * scale
        s = tl.where(nmask[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.exp(m_i - m_safe)
        p = tl.exp(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, axis=1)
        v = tl.load(
            v_ptr + n[:, None].to(tl.int64) * stride_vn + offs_d[None, :],
            mask=nmask[:, None] & dmask[None, :],
            other=0.0,
        ).to(tl.float32)
        acc = acc * alpha[:, None] + tl.dot(p, v, input_precision=DOT_PREC)
        m_i = m_new
    return acc, m_i, l_i


@triton.jit
def _finish_state(acc, m_i, l_i):
    """(acc, m, l) -> (o, lse): o = acc / l, lse = m + log l; no keys gives (0, -inf)."""
    has = l_i > 0
    o = acc / tl.where(has, l_i, 1.0)[:, None]
    m_safe = tl.where(m_i == float("-inf"), 0.0, m_i)
    lse = m_safe + _log_or_neginf(l_i)
    return o, lse


@triton.jit
def _prefix_state_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    o_ptr,
    lse_ptr,
    stride_qb,
    stride_qh,
    stride_kp,
    stride_kh,
    stride_vp,
    stride_vh,
    stride_os,
    stride_ob,
    stride_oh,
    stride_ls,
    stride_lb,
    B,
    P,
    D,
    GROUP,
    keys_per_split,
    scale,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    """Program (kv head h, row tile, prefix split): rows are (beam, query head in h's group) pairs."""
    h = tl.program_id(0)
    tile = tl.program_id(1)
    sp = tl.program_id(2)
    rows = tile * BLOCK_M + tl.arange(0, BLOCK_M)
    rmask = rows < B * GROUP
    b = rows // GROUP
    hq = h * GROUP + rows % GROUP
    offs_d = tl.arange(0, BLOCK_D)
    dmask = offs_d < D
    q = tl.load(
        q_ptr + b[:, None].to(tl.int64) * stride_qb + hq[:, None] * stride_qh + offs_d[None, :],
        mask=rmask[:, None] & dmask[None, :],
        other=0.0,
    ).to(tl.float32)
    n_lo = sp * keys_per_split
    n_hi = tl.minimum(n_lo + keys_per_split, P)
    acc, m_i, l_i = _attend(
        q,
        k_ptr + h * stride_kh,
        v_ptr + h * stride_vh,
        stride_kp,
        stride_vp,
        n_lo,
        n_hi,
        scale,
        offs_d,
        dmask,
        BLOCK_M,
        BLOCK_N,
        BLOCK_D,
        DOT_PREC,
    )
    o, lse = _finish_state(acc, m_i, l_i)
    tl.store(
        o_ptr + sp * stride_os + b[:, None] * stride_ob + hq[:, None] * stride_oh + offs_d[None, :],
        o,
        mask=rmask[:, None] & dmask[None, :],
    )
    tl.store(lse_ptr + sp * stride_ls + b * stride_lb + hq, lse, mask=rmask)


@triton.jit
def _suffix_state_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    lens_ptr,
    o_ptr,
    lse_ptr,
    stride_qb,
    stride_qh,
    stride_kb,
    stride_ks,
    stride_kh,
    stride_vb,
    stride_vs,
    stride_vh,
    stride_ob,
    stride_oh,
    stride_lb,
    S,
    D,
    GROUP,
    scale,
    BLOCK_G: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    """Program (beam b, kv head h): the G query heads of h over beam b's first suffix_lens[b] keys."""
    b = tl.program_id(0)
    h = tl.program_id(1)
    g = tl.arange(0, BLOCK_G)
    gmask = g < GROUP
    hq = h * GROUP + g
    offs_d = tl.arange(0, BLOCK_D)
    dmask = offs_d < D
    q = tl.load(
        q_ptr + b.to(tl.int64) * stride_qb + hq[:, None] * stride_qh + offs_d[None, :],
        mask=gmask[:, None] & dmask[None, :],
        other=0.0,
    ).to(tl.float32)
    n = tl.load(lens_ptr + b).to(tl.int32)
    n = tl.minimum(tl.maximum(n, 0), S)
    acc, m_i, l_i = _attend(
        q,
        k_ptr + b.to(tl.int64) * stride_kb + h * stride_kh,
        v_ptr + b.to(tl.int64) * stride_vb + h * stride_vh,
        stride_ks,
        stride_vs,
        0,
        n,
        scale,
        offs_d,
        dmask,
        BLOCK_G,
        BLOCK_N,
        BLOCK_D,
        DOT_PREC,
    )
    o, lse = _finish_state(acc, m_i, l_i)
    tl.store(
        o_ptr + b * stride_ob + hq[:, None] * stride_oh + offs_d[None, :],
        o,
        mask=gmask[:, None] & dmask[None, :],
    )
    tl.store(lse_ptr + b * stride_lb + hq, lse, mask=gmask)


@triton.jit
def _merge_states_kernel(
    o_ptr,
    lse_ptr,
    out_ptr,
    out_lse_ptr,
    N,
    R,
    D,
    stride_on,
    stride_ln,
    BLOCK_R: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """Merge N states stacked as o [N, R, D], lse [N, R] (row-contiguous) into out [R, D], out_lse [R]."""
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    rmask = rows < R
    offs_d = tl.arange(0, BLOCK_D)
    mask2 = rmask[:, None] & (offs_d[None, :] < D)
    m = tl.full([BLOCK_R], float("-inf"), tl.float32)
    for i in range(0, N):
        m = tl.maximum(m, tl.load(lse_ptr + i * stride_ln + rows, mask=rmask, other=float("-inf")))
    m_safe = tl.where(m == float("-inf"), 0.0, m)
    tot = tl.zeros([BLOCK_R], tl.float32)
    acc = tl.zeros([BLOCK_R, BLOCK_D], tl.float32)
    for i in range(0, N):
        w = tl.exp(tl.load(lse_ptr + i * stride_ln + rows, mask=rmask, other=float("-inf")) - m_safe)
        o = tl.load(o_ptr + i * stride_on + rows[:, None] * D + offs_d[None, :], mask=mask2, other=0.0)
        acc += tl.where(w[:, None] > 0, w[:, None] * o.to(tl.float32), 0.0)
        tot += w
    out = acc / tl.where(tot > 0, tot, 1.0)[:, None]
    tl.store(out_ptr + rows[:, None] * D + offs_d[None, :], out, mask=mask2)
    tl.store(out_lse_ptr + rows, m_safe + _log_or_neginf(tot), mask=rmask)


@triton.jit
def _merge2_kernel(
    o1_ptr,
    lse1_ptr,
    o2_ptr,
    lse2_ptr,
    out_ptr,
    out_lse_ptr,
    R,
    D,
    BLOCK_R: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """Merge two states o* [R, D], lse* [R] (row-contiguous) by LSE; an empty (-inf) state is the identity."""
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    rmask = rows < R
    offs_d = tl.arange(0, BLOCK_D)
    mask2 = rmask[:, None] & (offs_d[None, :] < D)
    l1 = tl.load(lse1_ptr + rows, mask=rmask, other=float("-inf")).to(tl.float32)
    l2 = tl.load(lse2_ptr + rows, mask=rmask, other=float("-inf")).to(tl.float32)
    m = tl.maximum(l1, l2)
    m_safe = tl.where(m == float("-inf"), 0.0, m)
    w1 = tl.exp(l1 - m_safe)
    w2 = tl.exp(l2 - m_safe)
    o1 = tl.load(o1_ptr + rows[:, None] * D + offs_d[None, :], mask=mask2, other=0.0).to(tl.float32)
    o2 = tl.load(o2_ptr + rows[:, None] * D + offs_d[None, :], mask=mask2, other=0.0).to(tl.float32)
    acc = tl.where(w1[:, None] > 0, w1[:, None] * o1, 0.0) + tl.where(w2[:, None] > 0, w2[:, None] * o2, 0.0)
    tot = w1 + w2
    out = acc / tl.where(tot > 0, tot, 1.0)[:, None]
    tl.store(out_ptr + rows[:, None] * D + offs_d[None, :], out, mask=mask2)
    tl.store(out_lse_ptr + rows, m_safe + _log_or_neginf(tot), mask=rmask)
