"""Compile every Triton kernel for a GPU target without a GPU: ``python -m stepfuse.kernels.aot_check``.

The interpreter (``TRITON_INTERPRET=1``) runs kernels on the CPU but accepts programs the GPU compiler
rejects (loop-carried type changes, dot shapes, shared-memory overflow). This compiles each kernel,
with the configurations the launchers use, through Triton's full pipeline down to a cubin for
``--arch`` (default sm_90), using the ptxas Triton ships. Run it with ``TRITON_INTERPRET`` unset.
Prints one line per kernel; exits 1 if any fails.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import time
from typing import Any

__all__ = ["compile_all"]

_F32 = "*fp32"


def _compile(fn: Any, types: dict[str, str], consts: dict[str, Any], arch: int, warps: int) -> int:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    names = list(inspect.signature(fn.fn).parameters)
    sig = {n: types.get(n, "constexpr") for n in names}
    src = ASTSource(fn=fn, signature=sig, constexprs=consts)
    k = triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": warps, "enable_fp_fusion": True})
    return int(k.metadata.shared)


def _cases(quick: bool) -> list[tuple[str, Any, dict[str, str], dict[str, Any], int]]:
    from stepfuse.kernels import _attention_jit as aj
    from stepfuse.kernels import _fusion_jit as fj
    from stepfuse.kernels.attention import attention_config

    i32 = "i32"
    cases: list[tuple[str, Any, dict[str, str], dict[str, Any], int]] = []
    part = dict(
        logits_ptr="*bf16", perm_ptr="*i32", lo_ptr="*i64", hi_ptr="*i64", row_m_ptr=_F32, row_s_ptr=_F32,
        cand_m_ptr=_F32, cand_s_ptr=_F32, stride_lb=i32, stride_rb=i32, V=i32, C=i32, temperature="fp32",
        blocks_per_split=i32,
    )  # fmt: skip
    for sorted_logits in (False,) if quick else (False, True):
        consts: dict[str, Any] = {"NSPLIT": 4, "BLOCK": 2048, "C_BLOCK": 32, "SORTED": sorted_logits}
        cases.append((f"range partial sorted={sorted_logits}", fj._range_lse_partial_kernel, part, consts, 8))
    comb = dict(
        row_m_ptr=_F32, row_s_ptr=_F32, cand_m_ptr=_F32, cand_s_ptr=_F32, base_ptr=_F32, rec_ptr="*fp16",
        out_ptr=_F32, topv_ptr=_F32, topi_ptr="*i64", stride_base=i32, stride_rec=i32, C=i32, w_rec="fp32",
        w_lm="fp32",
    )  # fmt: skip
    for mode, k in ((2, 4),) if quick else ((0, 0), (1, 0), (2, 0), (2, 4)):
        consts = {"NSPLIT": 4, "C_BLOCK": 32, "MODE": mode, "K": k}
        cases.append((f"range combine mode={mode} k={k}", fj._range_combine_kernel, comb, consts, 4))
    dtypes = (("*bf16", "tf32"),) if quick else (("*bf16", "tf32"), ("*fp16", "tf32"), ("*fp32", "ieee"))
    for dt, prec in dtypes:
        pre = {n: i32 for n in (
            "stride_qb stride_qh stride_kp stride_kh stride_vp stride_vh stride_os stride_ob stride_oh "
            "stride_ls stride_lb B P D GROUP keys_per_split"
        ).split()}  # fmt: skip
        pre.update(q_ptr=dt, k_ptr=dt, v_ptr=dt, o_ptr=_F32, lse_ptr=_F32, scale="fp32")
        block_m, block_n = attention_config(dt == "*fp32", 128, 1 << 12)
        consts = {"BLOCK_M": block_m, "BLOCK_N": block_n, "BLOCK_D": 128, "DOT_PREC": prec}
        cases.append((f"prefix state {dt[1:]}", aj._prefix_state_kernel, pre, consts, 4))
        suf = {n: i32 for n in (
            "stride_qb stride_qh stride_kb stride_ks stride_kh stride_vb stride_vs stride_vh stride_ob "
            "stride_oh stride_lb S D GROUP"
        ).split()}  # fmt: skip
        suf.update(q_ptr=dt, k_ptr=dt, v_ptr=dt, lens_ptr="*i64", o_ptr=_F32, lse_ptr=_F32, scale="fp32")
        consts = {"BLOCK_G": 16, "BLOCK_N": block_n, "BLOCK_D": 128, "DOT_PREC": prec}
        cases.append((f"suffix state {dt[1:]}", aj._suffix_state_kernel, suf, consts, 4))
    merge_n = dict(o_ptr=_F32, lse_ptr=_F32, out_ptr=_F32, out_lse_ptr=_F32, N=i32, R=i32, D=i32, stride_on=i32,
                   stride_ln=i32)  # fmt: skip
    cases.append(("merge N states", aj._merge_states_kernel, merge_n, {"BLOCK_R": 16, "BLOCK_D": 128}, 4))
    merge2 = dict(o1_ptr="*bf16", lse1_ptr=_F32, o2_ptr="*bf16", lse2_ptr=_F32, out_ptr=_F32, out_lse_ptr=_F32,
                  R=i32, D=i32)  # fmt: skip
    cases.append(("merge 2 states", aj._merge2_kernel, merge2, {"BLOCK_R": 16, "BLOCK_D": 128}, 4))
    return cases


def compile_all(arch: int = 90, quick: bool = False) -> int:
    """Compile the kernels for sm_``arch``; prints a line each and returns the number of failures."""
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        print("aot_check: unset TRITON_INTERPRET (interpreted kernels cannot be compiled)")
        return 1
    fails = 0
    for name, fn, types, consts, warps in _cases(quick):
        t0 = time.perf_counter()
        try:
            smem = _compile(fn, types, consts, arch, warps)
            print(f"ok    {name:<34} {time.perf_counter() - t0:6.1f}s  shared memory {smem} B")
        except Exception as e:  # report every kernel, then fail
            fails += 1
            print(f"FAIL  {name:<34} {type(e).__name__}: {str(e)[:2000]}")
    return fails


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--arch", type=int, default=90, help="CUDA compute capability, e.g. 80, 90")
    ap.add_argument("--quick", action="store_true", help="one configuration per kernel")
    args = ap.parse_args(argv)
    return 1 if compile_all(args.arch, args.quick) else 0


if __name__ == "__main__":
    sys.exit(main())
