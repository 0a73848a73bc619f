"""GPU benchmarks of the stepfuse Triton kernels (``python benches/gpu_kernels.py``); skips without CUDA.

* ``fused_range_logprobs``: achieved GB/s (logits + perm + per-candidate tensors, each read once)
  against the device's peak DRAM bandwidth, B in {8, 64}, V in {32k, 152k}, bf16 logits; once
  gathering through ``perm`` and once with the logits already in sorted order (``perm=None``).
* ``shared_prefix_attention`` (cascade decode): against torch SDPA over the KV expanded per beam and
  against a per-beam SDPA loop, P in {1k, 8k}, S = 128, B in {16, 64}, Hq = 32, Hkv = 8, D = 128.

Times are medians of ``triton.testing.do_bench``. The builders and baselines here are also used by
the harness entries in ``bench_kernels.py``.
"""

from __future__ import annotations

import sys
from typing import Any

try:
    import torch
except ImportError:  # pragma: no cover - the torch extra is not installed
    torch = None  # type: ignore[assignment]

CANDIDATES = 32
HQ, HKV, HEAD_DIM, SUFFIX = 32, 8, 128, 128


def gpu_available() -> bool:
    return torch is not None and torch.cuda.is_available()


def fusion_inputs(b: int, v: int, c: int = CANDIDATES, *, device: str = "cuda", dtype: Any = None, seed: int = 0):
    """Random GFD inputs: logits [b, v], a permutation, byte-prefix-like ranges (mostly narrow, some wide)."""
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(b, v, generator=g) * 4).to(dtype or torch.bfloat16)
    perm = torch.randperm(v, generator=g)
    lo = torch.randint(0, v, (b, c), generator=g)
    wide = torch.rand(b, c, generator=g) < 0.1
    width = torch.where(wide, torch.randint(0, v, (b, c), generator=g), torch.randint(0, 64, (b, c), generator=g))
    hi = (lo + width).clamp(max=v)
    base = torch.randn(b, c, generator=g)
    rec = torch.randn(b, c, generator=g).log_softmax(-1)
    return [t.to(device) for t in (logits, perm, lo, hi, base, rec)]


def naive_fusion(logits, perm, lo, hi, base, rec, weight: float, temperature: float = 1.0):
    """Baseline: per beam a log_softmax, per candidate a gather of its range and a logsumexp."""
    out = torch.empty(lo.shape, dtype=torch.float32, device=logits.device)
    lo_l, hi_l = lo.tolist(), hi.tolist()
    for b in range(logits.shape[0]):
        lp = torch.log_softmax(logits[b].float() / temperature, dim=-1)
        for c in range(lo.shape[1]):
            toks = perm[lo_l[b][c] : hi_l[b][c]]
            lm = base[b, c] + torch.logsumexp(lp[toks], dim=0) if len(toks) else torch.tensor(float("-inf"))
            out[b, c] = (1 - weight) * rec[b, c] + weight * lm
    return out


def fusion_bytes(b: int, v: int, c: int, elt: int) -> int:
    """Bytes the fused kernel must move: logits, perm, lo/hi (int64), base/rec (fp32), out (fp32)."""
    return b * v * elt + v * 4 + b * c * (8 + 8 + 4 + 4 + 4)


def attention_inputs(b: int, p: int, *, device: str = "cuda", dtype: Any = None, seed: int = 0):
    g = torch.Generator(device=device).manual_seed(seed)
    dt = dtype or torch.bfloat16

    def r(*shape):
        return torch.randn(*shape, generator=g, device=device, dtype=torch.float32).to(dt)

    q = r(b, HQ, HEAD_DIM)
    kp, vp = r(p, HKV, HEAD_DIM), r(p, HKV, HEAD_DIM)
    ks, vs = r(b, SUFFIX, HKV, HEAD_DIM), r(b, SUFFIX, HKV, HEAD_DIM)
    lens = torch.full((b,), SUFFIX, dtype=torch.int32, device=device)
    return q, kp, vp, ks, vs, lens


def expanded_kv(q, kp, vp, ks, vs, lens):
    """The non-cascade layout: every beam holds [prefix; suffix] with the KV heads repeated for GQA."""
    b = q.shape[0]
    group = q.shape[1] // kp.shape[1]
    k = torch.cat([kp[None].expand(b, -1, -1, -1), ks], dim=1).repeat_interleave(group, dim=2)
    v = torch.cat([vp[None].expand(b, -1, -1, -1), vs], dim=1).repeat_interleave(group, dim=2)
    n = k.shape[1]
    mask = torch.arange(n, device=q.device)[None, :] < (kp.shape[0] + lens.long())[:, None]  # [B, N]
    # SDPA layout [B, H, N, D]; the query is one token.
    return q[:, :, None, :], k.transpose(1, 2).contiguous(), v.transpose(1, 2).contiguous(), mask[:, None, None, :]


def sdpa_expanded(qe, ke, ve, mask, scale):
    return torch.nn.functional.scaled_dot_product_attention(qe, ke, ve, attn_mask=mask, scale=scale)


def per_beam_loop(q, kp, vp, ks, vs, lens, scale):
    """Baseline: one SDPA call per beam over its own [prefix; suffix] (prefix re-read per beam)."""
    group = q.shape[1] // kp.shape[1]
    outs = []
    for b, n in enumerate(lens.tolist()):
        k = torch.cat([kp, ks[b, :n]], dim=0).repeat_interleave(group, dim=1).transpose(0, 1)
        v = torch.cat([vp, vs[b, :n]], dim=0).repeat_interleave(group, dim=1).transpose(0, 1)
        outs.append(torch.nn.functional.scaled_dot_product_attention(q[b][:, None, :], k, v, scale=scale))
    return torch.stack(outs)[:, :, 0]


def _fusion_row(b: int, v: int, peak: float, presorted: bool) -> str:
    import triton.testing as tt

    from stepfuse.kernels import fused_range_logprobs

    logits, perm, *rest = fusion_inputs(b, v)
    if presorted:  # logits columns already in byte-sorted order: perm=None, coalesced reads
        logits, perm = logits[:, perm].contiguous(), None
    ms = tt.do_bench(lambda: fused_range_logprobs(logits, perm, *rest, 0.3, check_values=False), return_mode="median")
    gbs = fusion_bytes(b, v, CANDIDATES, 2) / (ms * 1e-3) / 1e9
    label = f"B={b} V={v} C={CANDIDATES} bf16 {'presorted' if presorted else 'perm'}"
    return f"{label:<40} {ms * 1e3:>8.1f}us {gbs:>8.0f} {gbs / peak:>7.0%}"


def _attention_row(b: int, p: int) -> str:
    import triton.testing as tt

    from stepfuse.kernels import shared_prefix_attention

    args = attention_inputs(b, p)
    scale = HEAD_DIM**-0.5
    ours = tt.do_bench(lambda: shared_prefix_attention(*args, scale, check_values=False), return_mode="median")
    exp = expanded_kv(*args)
    sdpa = tt.do_bench(lambda: sdpa_expanded(*exp, scale), return_mode="median")
    loop = tt.do_bench(lambda: per_beam_loop(*args, scale), return_mode="median")
    return (
        f"{f'P={p} S={SUFFIX} B={b}':<28} {ours * 1e3:>7.1f}us {sdpa * 1e3:>12.1f}us {sdpa / ours:>5.1f}x"
        f" {loop * 1e3:>8.1f}us {loop / ours:>5.1f}x"
    )


def main() -> int:
    if not gpu_available():
        print("gpu_kernels: skipped (needs a CUDA GPU)")
        return 0
    import triton.testing as tt

    peak = tt.get_dram_gbps()
    print(f"device: {torch.cuda.get_device_name()}  peak DRAM {peak:.0f} GB/s")
    print(f"{'fused_range_logprobs':<40} {'time':>10} {'GB/s':>8} {'of peak':>8}")
    for b in (8, 64):
        for v in (32_000, 152_064):
            for presorted in (False, True):
                print(_fusion_row(b, v, peak, presorted))
    print(f"\n{'shared_prefix_attention':<28} {'ours':>9} {'SDPA expanded':>14} {'ratio':>6} {'per-beam':>10} {'ratio':>6}")
    for p in (1024, 8192):
        for b in (16, 64):
            print(_attention_row(b, p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
