"""Shared-prefix (cascade) decode attention and the attention-state merge (Triton, with a torch fallback).

At a decode step of beam search / multi-draft decoding, B beams share one prompt's KV cache (the
prefix, P keys) and each has its own short suffix (up to S keys). Non-cascade decode reads the prefix
once per beam; here it is read once per KV head for all beams, and the two partial attentions are
merged by their log-sum-exp (FlashInfer cascade attention, Ye et al. 2024). See ``_attention_jit``
for the kernels and :mod:`stepfuse.kernels.reference` for the fp32 references used where Triton does
not run (:func:`stepfuse.kernels._common.use_triton`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stepfuse.errors import InvalidArgumentError, InvalidTypeError, OutOfRangeError
from stepfuse.kernels._common import (
    LAUNCH,
    check_device,
    check_float_tensor,
    check_int_tensor,
    check_limit,
    check_shape,
    next_pow2,
    program_target,
    real_scalar,
    torch_module,
    use_triton,
)
from stepfuse.kernels.reference import merge_attention_states_ref, shared_prefix_attention_ref

if TYPE_CHECKING:
    import torch

__all__ = ["merge_attention_states", "shared_prefix_attention"]

MAX_HEAD_DIM = 256
_MAX_SPLITS = 32
_MERGE_ROWS = 16


# Fixed configs, no autotune: (BLOCK_M cap, BLOCK_N) by (fp32 inputs?, BLOCK_D > 128?). fp32 tiles are
# smaller so that the dot operands fit the shared memory of sm_80 (163 KB) as well as sm_90.
_ATTN_CONFIGS: dict[tuple[bool, bool], tuple[int, int]] = {
    (False, False): (64, 64),
    (False, True): (64, 32),
    (True, False): (32, 32),
    (True, True): (16, 16),
}


def attention_config(fp32: bool, block_d: int, rows: int) -> tuple[int, int]:
    """(BLOCK_M, BLOCK_N) for ``rows`` query rows per KV head (tl.dot needs tiles of >= 16)."""
    cap, block_n = _ATTN_CONFIGS[(fp32, block_d > 128)]
    return min(cap, max(16, next_pow2(rows))), block_n


def _dot_precision(dtype: torch.dtype) -> str:
    torch = torch_module()
    return "ieee" if dtype == torch.float32 else "tf32"


def _unit_stride(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself when its last dim is unit-stride (what the kernels index), else a contiguous copy."""
    return t if t.stride(-1) == 1 else t.contiguous()


def shared_prefix_attention(
    q: torch.Tensor,
    k_prefix: torch.Tensor,
    v_prefix: torch.Tensor,
    k_suffix: torch.Tensor,
    v_suffix: torch.Tensor,
    suffix_lens: torch.Tensor,
    scale: float,
    *,
    check_values: bool = True,
    backend: str = "auto",
) -> torch.Tensor:
    """Decode attention of B beams over a shared prefix plus per-beam suffixes, the prefix read once.

    Cascade attention (FlashInfer, Ye et al. 2024): out = merge(Attn(q, prefix), Attn(q, suffix_b)) with
    Attn(q, K, V) = softmax(scale·q·Kᵀ)·V and states merged by LSE (:func:`merge_attention_states`).
    GQA: query head h reads KV head h // (Hq / Hkv). Beam b sees the first ``suffix_lens[b]`` suffix keys.

    q: [B, Hq, D]; k_prefix, v_prefix: [P, Hkv, D]; k_suffix, v_suffix: [B, S, Hkv, D] (all one float
    dtype: float32/float16/bfloat16, one device, Hq a multiple of Hkv, D <= 256); suffix_lens: [B] int
    in [0, S] (checked when ``check_values``, one device sync; kernels clamp regardless); scale: finite.
    Returns [B, Hq, D] in q's dtype. A beam with no keys at all (P = 0 and length 0) gets zeros.
    ``backend``: "auto" (Triton on CUDA or under ``TRITON_INTERPRET=1``, else the fp32
    torch reference), "triton" or "reference" (see :func:`stepfuse.kernels._common.use_triton`).
    """
    torch = torch_module()
    q = check_float_tensor(q, "q", 3)
    b, hq, d = q.shape
    kp = check_float_tensor(k_prefix, "k_prefix", 3)
    p, hkv = kp.shape[0], kp.shape[1]
    if hkv == 0 or d == 0:
        raise InvalidArgumentError(f"k_prefix: Hkv and D must be >= 1, got shape {tuple(kp.shape)}")
    check_limit(d, MAX_HEAD_DIM, "q: head dim D")
    check_shape(kp, "k_prefix", (p, hkv, d), "[P, Hkv, D]")
    if hq % hkv != 0:
        raise InvalidArgumentError(f"q: query heads Hq = {hq} must be a multiple of KV heads Hkv = {hkv}")
    vp = check_float_tensor(v_prefix, "v_prefix", 3)
    check_shape(vp, "v_prefix", (p, hkv, d), "[P, Hkv, D]")
    ks = check_float_tensor(k_suffix, "k_suffix", 4)
    s = ks.shape[1]
    check_shape(ks, "k_suffix", (b, s, hkv, d), "[B, S, Hkv, D]")
    vs = check_float_tensor(v_suffix, "v_suffix", 4)
    check_shape(vs, "v_suffix", (b, s, hkv, d), "[B, S, Hkv, D]")
    lens = check_int_tensor(suffix_lens, "suffix_lens", 1)
    check_shape(lens, "suffix_lens", (b,), "[B]")
    for arg, t in (("k_prefix", kp), ("v_prefix", vp), ("k_suffix", ks), ("v_suffix", vs)):
        if t.dtype != q.dtype:
            raise InvalidTypeError(f"{arg}: dtype must equal q's ({q.dtype}), got {t.dtype}")
    check_device(q, "q", k_prefix=kp, v_prefix=vp, k_suffix=ks, v_suffix=vs, suffix_lens=lens)
    sc = real_scalar(scale, "scale")
    if check_values and b and bool(((lens < 0) | (lens > s)).any()):
        raise OutOfRangeError(f"suffix_lens: values must lie in [0, S] with S = {s}")
    triton_path = use_triton(q.device, backend)
    if b == 0 or hq == 0:
        return torch.zeros((b, hq, d), dtype=q.dtype, device=q.device)
    if not triton_path:
        return shared_prefix_attention_ref(q, kp, vp, ks, vs, lens, sc)

    q, kp, vp, ks, vs = (_unit_stride(t) for t in (q, kp, vp, ks, vs))
    from stepfuse.kernels import _attention_jit as jit

    dev = q.device
    group = hq // hkv
    block_d = max(16, next_pow2(d))
    block_m, block_n = attention_config(q.dtype == torch.float32, block_d, b * group)
    tiles = -(-(b * group) // block_m)
    kblocks = max(1, -(-p // block_n))
    nsplit = max(1, min(-(-program_target(dev) // (hkv * tiles)), kblocks, _MAX_SPLITS))
    per = -(-kblocks // nsplit) * block_n
    nsplit = max(1, -(-p // per))
    prec = _dot_precision(q.dtype)
    o_ws = torch.empty((nsplit + 1, b, hq, d), dtype=torch.float32, device=dev)
    l_ws = torch.empty((nsplit + 1, b, hq), dtype=torch.float32, device=dev)
    jit._prefix_state_kernel[(hkv, tiles, nsplit)](
        q, kp, vp, o_ws, l_ws,
        q.stride(0), q.stride(1), kp.stride(0), kp.stride(1), vp.stride(0), vp.stride(1),
        o_ws.stride(0), o_ws.stride(1), o_ws.stride(2), l_ws.stride(0), l_ws.stride(1),
        b, p, d, group, per, sc,
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d, DOT_PREC=prec, num_warps=4, **LAUNCH,
    )  # fmt: skip
    o_suf, l_suf = o_ws[nsplit], l_ws[nsplit]
    jit._suffix_state_kernel[(b, hkv)](
        q, ks, vs, lens, o_suf, l_suf,
        q.stride(0), q.stride(1), ks.stride(0), ks.stride(1), ks.stride(2),
        vs.stride(0), vs.stride(1), vs.stride(2), o_suf.stride(0), o_suf.stride(1), l_suf.stride(0),
        s, d, group, sc,
        BLOCK_G=max(16, next_pow2(group)), BLOCK_N=block_n, BLOCK_D=block_d, DOT_PREC=prec, num_warps=4, **LAUNCH,
    )  # fmt: skip
    rows = b * hq
    out = torch.empty((b, hq, d), dtype=torch.float32, device=dev)
    out_lse = torch.empty((b, hq), dtype=torch.float32, device=dev)
    jit._merge_states_kernel[(-(-rows // _MERGE_ROWS),)](
        o_ws, l_ws, out, out_lse, nsplit + 1, rows, d, o_ws.stride(0), l_ws.stride(0),
        BLOCK_R=_MERGE_ROWS, BLOCK_D=block_d, num_warps=4, **LAUNCH,
    )  # fmt: skip
    return out if q.dtype == torch.float32 else out.to(q.dtype)


def merge_attention_states(
    o1: torch.Tensor, lse1: torch.Tensor, o2: torch.Tensor, lse2: torch.Tensor, *, backend: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge two partial attention states over disjoint key sets into the state over their union.

    FlashInfer's attention-state merge (Ye et al. 2024): with natural-log LSEs,
    o = (e^{lse1}·o1 + e^{lse2}·o2) / (e^{lse1} + e^{lse2}), lse = log(e^{lse1} + e^{lse2}).
    A state with lse = -inf (no keys) is the identity; two such states give o = 0, lse = -inf (no NaN).

    o1, o2: [..., D] float32/float16/bfloat16, same shape; lse1, lse2: [...] (o1.shape[:-1]) float.
    Returns (o float32 [..., D], lse float32 [...]).
    ``backend``: "auto" (Triton on CUDA or under ``TRITON_INTERPRET=1``, else the fp32
    torch reference), "triton" or "reference" (see :func:`stepfuse.kernels._common.use_triton`).
    """
    torch = torch_module()
    for arg, t in (("o1", o1), ("o2", o2), ("lse1", lse1), ("lse2", lse2)):
        if not isinstance(t, torch.Tensor):
            raise InvalidTypeError(f"{arg}: expected a torch.Tensor, got {type(t).__name__}")
    if o1.dim() < 1:
        raise InvalidArgumentError("o1: must have at least 1 dimension [..., D]")
    a1 = check_float_tensor(o1, "o1", o1.dim())
    a2 = check_float_tensor(o2, "o2", o1.dim())
    check_shape(a2, "o2", tuple(a1.shape), "o1.shape")
    lead = tuple(a1.shape[:-1])
    m1 = check_float_tensor(lse1, "lse1", len(lead))
    m2 = check_float_tensor(lse2, "lse2", len(lead))
    check_shape(m1, "lse1", lead, "o1.shape[:-1]")
    check_shape(m2, "lse2", lead, "o1.shape[:-1]")
    check_device(a1, "o1", o2=a2, lse1=m1, lse2=m2)
    d = a1.shape[-1]
    check_limit(d, 1 << 14, "o1: head dim D")
    rows = m1.numel()
    if not use_triton(a1.device, backend) or rows == 0 or d == 0:
        return merge_attention_states_ref(a1, m1, a2, m2)
    from stepfuse.kernels import _attention_jit as jit

    f1 = a1.reshape(rows, d).contiguous()
    f2 = a2.reshape(rows, d).contiguous()
    g1 = m1.reshape(rows).contiguous()
    g2 = m2.reshape(rows).contiguous()
    out = torch.empty((rows, d), dtype=torch.float32, device=a1.device)
    out_lse = torch.empty((rows,), dtype=torch.float32, device=a1.device)
    block_d = max(16, next_pow2(d))
    block_r = max(1, min(_MERGE_ROWS, 4096 // block_d))
    jit._merge2_kernel[(-(-rows // block_r),)](
        f1, g1, f2, g2, out, out_lse, rows, d, BLOCK_R=block_r, BLOCK_D=block_d, num_warps=4, **LAUNCH
    )
    return out.reshape(a1.shape), out_lse.reshape(lead)
