"""Fused GFD range fusion: ``fused_range_logprobs`` and ``fused_topk`` (Triton, with a torch fallback).

Generative Fusion Decoding (Hsu et al., 2024) scores a recognizer's candidate next tokens with an LM
whose tokenizer differs, through byte prefixes: the LM's probability that its next token extends a
candidate's trailing bytes is the softmax mass of a contiguous range of the byte-sorted LM
vocabulary (``ByteVocab.prefix_range``). These launchers validate their arguments, pick block sizes
from fixed tables and run the kernels of ``_fusion_jit`` (see there for the one-pass design), or the
fp32 reference of :mod:`stepfuse.kernels.reference` where Triton does not run
(:func:`stepfuse.kernels._common.use_triton`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stepfuse.errors import InvalidArgumentError, OutOfRangeError
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
from stepfuse.kernels.reference import TopK, fused_range_logprobs_ref, topk_ref

if TYPE_CHECKING:
    import torch

__all__ = ["TopK", "fused_range_logprobs", "fused_topk"]

MAX_CANDIDATES = 1024
"""Candidates per beam one program keeps in registers (C <= 1024)."""

# Fixed configs, no autotune: (largest V, BLOCK of sorted positions per step, num_warps).
_RANGE_CONFIGS: tuple[tuple[int, int, int], ...] = (
    (1 << 10, 128, 4),
    (1 << 14, 512, 4),
    (1 << 16, 1024, 4),
    (1 << 62, 2048, 8),
)
_MAX_SPLITS = 64
MIN_TEMPERATURE = 1e-3
MAX_TEMPERATURE = 1e3
"""Accepted temperatures: logits / T must stay finite in float32 (kernels pass T as an fp32 scalar)."""


def _range_config(batch: int, vocab: int, device: torch.device) -> tuple[int, int, int, int]:
    """(BLOCK, num_warps, nsplit, blocks_per_split) for a [batch, vocab] logits matrix."""
    block, warps = next((b, w) for vmax, b, w in _RANGE_CONFIGS if vocab <= vmax)
    nblocks = -(-vocab // block)
    want = -(-program_target(device) // max(batch, 1))
    nsplit = max(1, min(want, nblocks, _MAX_SPLITS))
    per = -(-nblocks // nsplit)
    return block, warps, -(-nblocks // per), per


class _Args:
    """Validated arguments of one fused call."""

    def __init__(
        self,
        lm_logits: object,
        perm: object,
        lo: object,
        hi: object,
        base: object,
        rec_logprobs: object,
        weight: object,
        temperature: object,
        check_values: bool,
    ) -> None:
        torch = torch_module()
        logits = check_float_tensor(lm_logits, "lm_logits", 2)
        b, v = logits.shape
        if v == 0:
            raise InvalidArgumentError("lm_logits: vocabulary size V must be >= 1, got 0")
        if perm is None:  # identity: lm_logits columns are already in byte-sorted order
            perm_t = torch.empty((0,), dtype=torch.int32, device=logits.device)
        else:
            perm_t = check_int_tensor(perm, "perm", 1)
            check_shape(perm_t, "perm", (v,), "[V]")
        lo_t = check_int_tensor(lo, "lo", 2)
        if lo_t.shape[0] != b:
            raise InvalidArgumentError(f"lo: shape must be [B, C] with B = {b}, got {tuple(lo_t.shape)}")
        c = lo_t.shape[1]
        check_limit(c, MAX_CANDIDATES, "lo: candidates per beam C")
        hi_t = check_int_tensor(hi, "hi", 2)
        check_shape(hi_t, "hi", (b, c), "[B, C]")
        base_t = check_float_tensor(base, "base", 2)
        check_shape(base_t, "base", (b, c), "[B, C]")
        rec_t = check_float_tensor(rec_logprobs, "rec_logprobs", 2)
        check_shape(rec_t, "rec_logprobs", (b, c), "[B, C]")
        check_device(logits, "lm_logits", perm=perm_t, lo=lo_t, hi=hi_t, base=base_t, rec_logprobs=rec_t)
        w = real_scalar(weight, "weight")
        if not 0.0 <= w <= 1.0:
            raise InvalidArgumentError(f"weight: must lie in [0, 1], got {w}")
        t = real_scalar(temperature, "temperature")
        if not MIN_TEMPERATURE <= t <= MAX_TEMPERATURE:
            raise InvalidArgumentError(
                f"temperature: must lie in [{MIN_TEMPERATURE:g}, {MAX_TEMPERATURE:g}] (fp32 logits / T), got {t}"
            )
        if check_values:
            checks = [
                ("perm", "[0, V)", ((perm_t < 0) | (perm_t >= v)).any()),
                ("lo", "[0, V]", ((lo_t < 0) | (lo_t > v)).any()),
                ("hi", "[0, V]", ((hi_t < 0) | (hi_t > v)).any()),
            ]
            flags = torch.stack([f for _, _, f in checks]).tolist()  # one device sync
            for (arg, bound, _), bad in zip(checks, flags):
                if bad:
                    raise OutOfRangeError(f"{arg}: values must lie in {bound} with V = {v}")
        self.logits, self.lo, self.hi = logits, lo_t, hi_t
        self.perm = None if perm is None else perm_t
        self.base, self.rec, self.weight, self.temperature = base_t, rec_t, w, t
        self.b, self.v, self.c = b, v, c


def _launch(a: _Args, k: int) -> torch.Tensor | TopK:
    """Run the two kernels; ``k == 0`` returns fused [B, C], else the top-k."""
    torch = torch_module()
    from stepfuse.kernels import _fusion_jit as jit

    dev = a.logits.device
    logits = a.logits if a.logits.stride(1) == 1 else a.logits.contiguous()  # rows must be unit-stride
    sorted_logits = a.perm is None
    perm = a.lo if a.perm is None else a.perm.to(torch.int32 if a.v < 2**31 else torch.int64).contiguous()
    lo = a.lo.contiguous()
    hi = a.hi.to(lo.dtype).contiguous()  # lo and hi share one row stride
    base = a.base.contiguous()
    rec = a.rec.contiguous()
    block, warps, nsplit, per = _range_config(a.b, a.v, dev)
    c_block = max(2, next_pow2(a.c))
    row_m = torch.empty((a.b, nsplit), dtype=torch.float32, device=dev)
    row_s = torch.empty_like(row_m)
    cand_m = torch.empty((a.b, nsplit, c_block), dtype=torch.float32, device=dev)
    cand_s = torch.empty_like(cand_m)
    jit._range_lse_partial_kernel[(a.b, nsplit)](
        logits, perm, lo, hi, row_m, row_s, cand_m, cand_s,
        logits.stride(0), lo.stride(0), a.v, a.c, a.temperature, per,
        NSPLIT=nsplit, BLOCK=block, C_BLOCK=c_block, SORTED=sorted_logits, num_warps=warps, **LAUNCH,
    )  # fmt: skip
    mode = 0 if a.weight == 0.0 else 1 if a.weight == 1.0 else 2
    out = torch.empty((a.b, a.c), dtype=torch.float32, device=dev)
    topv = torch.empty((a.b, k), dtype=torch.float32, device=dev)
    topi = torch.empty((a.b, k), dtype=torch.int64, device=dev)
    jit._range_combine_kernel[(a.b,)](
        row_m, row_s, cand_m, cand_s, base, rec, out, topv, topi,
        base.stride(0), rec.stride(0), a.c, 1.0 - a.weight, a.weight,
        NSPLIT=nsplit, C_BLOCK=c_block, MODE=mode, K=k, num_warps=4, **LAUNCH,
    )  # fmt: skip
    return out if k == 0 else TopK(topv, topi)


def fused_range_logprobs(
    lm_logits: torch.Tensor,
    perm: torch.Tensor | None,
    lo: torch.Tensor,
    hi: torch.Tensor,
    base: torch.Tensor,
    rec_logprobs: torch.Tensor,
    weight: float,
    temperature: float = 1.0,
    *,
    check_values: bool = True,
    backend: str = "auto",
) -> torch.Tensor:
    """GFD fused scores: recognizer log-probs mixed with LM byte-prefix range log-probs, one pass per row.

    Generative Fusion Decoding (Hsu et al., 2024), eq. for the fused step score:
    LM[b, c] = base[b, c] + log Σ_{j ∈ [lo[b,c], hi[b,c])} softmax(lm_logits[b] / T)[perm[j]],
    fused[b, c] = (1 - w)·rec_logprobs[b, c] + w·LM[b, c]; natural log. An empty range (lo >= hi)
    or a row of all -inf logits gives LM = -inf; w = 0 returns rec exactly and w = 1 returns LM.

    lm_logits: [B, V] float32/float16/bfloat16 (upcast to float32 on load); perm: [V] int, sorted
    position -> token id (a permutation of range(V), e.g. ByteVocab's sorted order), or None when
    lm_logits' columns are already in sorted order (e.g. the LM head's rows permuted once by that
    order: then every read is coalesced, the fastest path on a GPU); lo, hi: [B, C]
    int sorted-position bounds in [0, V] (``ByteVocab.prefix_range``); base, rec_logprobs: [B, C]
    float; weight in [0, 1]; temperature in [1e-3, 1e3]. All tensors on one device. Returns float32 [B, C].
    ``check_values`` checks perm/lo/hi bounds (one device sync; kernels clamp regardless, so bad
    values cannot fault). NaN/+inf inputs are not checked and propagate.
    ``backend``: "auto" (Triton on CUDA or under ``TRITON_INTERPRET=1``, else the fp32
    torch reference), "triton" or "reference" (see :func:`stepfuse.kernels._common.use_triton`).
    """
    a = _Args(lm_logits, perm, lo, hi, base, rec_logprobs, weight, temperature, check_values)
    if not use_triton(a.logits.device, backend) or a.b == 0 or a.c == 0:
        return fused_range_logprobs_ref(a.logits, a.perm, a.lo, a.hi, a.base, a.rec, a.weight, a.temperature)
    out = _launch(a, 0)
    assert not isinstance(out, TopK)
    return out


def fused_topk(
    lm_logits: torch.Tensor,
    perm: torch.Tensor | None,
    lo: torch.Tensor,
    hi: torch.Tensor,
    base: torch.Tensor,
    rec_logprobs: torch.Tensor,
    weight: float,
    k: int,
    temperature: float = 1.0,
    *,
    check_values: bool = True,
    backend: str = "auto",
) -> TopK:
    """The ``k`` best GFD fused candidates per beam, computed in the same pass as :func:`fused_range_logprobs`.

    Same arguments and scores as :func:`fused_range_logprobs`, plus ``k`` in [1, C]. Returns
    ``TopK(values float32 [B, k], indices int64 [B, k])`` in descending order; equal scores are
    ordered by the lower candidate index (as ``torch.sort(..., stable=True)``), and -inf scores are
    returned when fewer than k candidates are finite.
    ``backend``: "auto" (Triton on CUDA or under ``TRITON_INTERPRET=1``, else the fp32
    torch reference), "triton" or "reference" (see :func:`stepfuse.kernels._common.use_triton`).
    """
    a = _Args(lm_logits, perm, lo, hi, base, rec_logprobs, weight, temperature, check_values)
    if isinstance(k, bool) or not isinstance(k, int):
        from stepfuse.errors import InvalidTypeError

        raise InvalidTypeError(f"k: expected an int, got {type(k).__name__}")
    if not 1 <= k <= a.c:
        raise InvalidArgumentError(f"k: must lie in [1, C] with C = {a.c}, got {k}")
    if not use_triton(a.logits.device, backend) or a.b == 0:
        fused = fused_range_logprobs_ref(a.logits, a.perm, a.lo, a.hi, a.base, a.rec, a.weight, a.temperature)
        return topk_ref(fused, k)
    out = _launch(a, k)
    assert isinstance(out, TopK)
    return out
