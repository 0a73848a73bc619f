"""Benchmarks of stepfuse.kernels: CPU entries for the torch reference, GPU entries for the Triton kernels.

CPU: the fp32 reference of ``fused_range_logprobs`` (the fallback FusionDecoder uses on CPU) against
the naive per-beam log_softmax + per-candidate gather/logsumexp. GPU (skipped without CUDA): the
Triton kernels against the same baselines run on the GPU, and cascade attention against torch SDPA
over the expanded KV and a per-beam loop; ``benches/gpu_kernels.py`` adds GB/s against peak.
"""

from __future__ import annotations

from gpu_kernels import (
    CANDIDATES,
    HEAD_DIM,
    attention_inputs,
    expanded_kv,
    fusion_bytes,
    fusion_inputs,
    naive_fusion,
    per_beam_loop,
    sdpa_expanded,
)

from harness import Case, bench


def _one_thread(fn):
    """Run ``fn`` with one intra-op thread (restored after): steadier CPU timings on a shared machine."""
    import torch

    def run():
        prev = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn()
        finally:
            torch.set_num_threads(prev)

    return run


def _cpu_fusion_case(b: int, v: int) -> Case:
    import torch

    from stepfuse.kernels.reference import fused_range_logprobs_ref

    args = fusion_inputs(b, v, device="cpu", dtype=torch.float32)
    return Case(
        ours=_one_thread(lambda: fused_range_logprobs_ref(*args, 0.3)),
        baselines={"per-beam log_softmax+gather": _one_thread(lambda: naive_fusion(*args, 0.3))},
        info={"shape": f"B={b} V={v} C={CANDIDATES} fp32, 1 torch thread"},
        per=b * CANDIDATES,
        repeats=5,
    )


@bench("kernels/fused-range-ref-cpu-B8-V32k", target=">= 1x naive (exact, vectorised)")
def _() -> Case:
    return _cpu_fusion_case(8, 32_000)


@bench("kernels/fused-range-ref-cpu-B32-V32k", target=">= 1x naive (exact, vectorised)")
def _() -> Case:
    return _cpu_fusion_case(32, 32_000)


def _synced(fn):
    import torch

    def run():
        out = fn()
        torch.cuda.synchronize()
        return out

    return run


@bench("kernels/fused-range-gpu-B64-V152k", target=">= 80% of peak DRAM bandwidth", gpu=True)
def _() -> Case:
    import triton.testing as tt

    from stepfuse.kernels import fused_range_logprobs
    from stepfuse.kernels.reference import fused_range_logprobs_ref

    b, v = 64, 152_064
    args = fusion_inputs(b, v)
    ours = _synced(lambda: fused_range_logprobs(*args, 0.3, check_values=False))
    ms = tt.do_bench(lambda: fused_range_logprobs(*args, 0.3, check_values=False), return_mode="median")
    gbs = fusion_bytes(b, v, CANDIDATES, 2) / (ms * 1e-3) / 1e9
    return Case(
        ours=ours,
        baselines={
            "torch reference (GPU)": _synced(lambda: fused_range_logprobs_ref(*args, 0.3)),
            "per-beam log_softmax+gather": _synced(lambda: naive_fusion(*args, 0.3)),
        },
        info={"GB/s": round(gbs), "of peak": f"{gbs / tt.get_dram_gbps():.0%}"},
    )


def _attention_case(b: int, p: int) -> Case:
    from stepfuse.kernels import shared_prefix_attention

    args = attention_inputs(b, p)
    scale = HEAD_DIM**-0.5
    exp = expanded_kv(*args)
    return Case(
        ours=_synced(lambda: shared_prefix_attention(*args, scale, check_values=False)),
        baselines={
            "SDPA over expanded KV": _synced(lambda: sdpa_expanded(*exp, scale)),
            "per-beam SDPA loop": _synced(lambda: per_beam_loop(*args, scale)),
        },
        info={"shape": f"B={b} P={p} S=128 Hq=32 Hkv=8 D=128 bf16"},
    )


@bench("kernels/cascade-attn-gpu-B16-P1k", target="> SDPA expanded", gpu=True)
def _() -> Case:
    return _attention_case(16, 1024)


@bench("kernels/cascade-attn-gpu-B64-P8k", target="> SDPA expanded", gpu=True)
def _() -> Case:
    return _attention_case(64, 8192)
