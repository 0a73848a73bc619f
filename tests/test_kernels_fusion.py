"""fused_range_logprobs / fused_topk: Triton (interpreter on CPU) vs the fp32 reference vs a brute-force oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _kernels_util import DEVICE, DTYPES, TOL, TRITON, close, fusion_oracle, needs_triton, torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stepfuse import errors
from stepfuse.kernels import TopK, fused_range_logprobs, fused_topk
from stepfuse.kernels.fusion import _range_config
from stepfuse.kernels.reference import fused_range_logprobs_ref, fused_topk_ref

NEG = float("-inf")


def make_case(b, v, c, *, seed=0, dtype=torch.float32, spread=3.0, max_width=None):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(b, v, generator=g) * spread).to(dtype)
    perm = torch.randperm(v, generator=g)
    lo = torch.randint(0, v + 1, (b, c), generator=g)
    width = torch.randint(-2, (max_width or v) + 1, (b, c), generator=g)
    hi = (lo + width).clamp(0, v)
    base = torch.randn(b, c, generator=g).to(dtype)
    rec = torch.randn(b, c, generator=g).log_softmax(-1).to(dtype)
    return [t.to(DEVICE) for t in (logits, perm, lo, hi, base, rec)]


# ---- the reference against the float64 oracle (runs with or without Triton)


@pytest.mark.parametrize(("b", "v", "c"), [(1, 1, 1), (2, 37, 5), (3, 300, 9)])
@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_reference_matches_oracle(b, v, c, weight):
    args = make_case(b, v, c, seed=v + c)
    ref = fused_range_logprobs_ref(*args, weight, 1.7)
    want = fusion_oracle(*args, weight, 1.7)
    np.testing.assert_allclose(ref.cpu().numpy(), want, rtol=1e-5, atol=1e-5)


def test_reference_keeps_ranges_far_below_the_max():
    # A range whose logits sit 200 nats under the row max: exact LSE, no underflow to -inf.
    v = 40
    logits = torch.zeros(1, v)
    logits[0, 10:20] = -200.0
    perm = torch.arange(v)
    lo, hi = torch.tensor([[10, 0]]), torch.tensor([[20, 40]])
    z = torch.zeros(1, 2)
    out = fused_range_logprobs_ref(logits, perm, lo, hi, z, z, 1.0)
    want = fusion_oracle(logits, perm, lo, hi, z, z, 1.0, 1.0)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6)
    assert math.isfinite(out[0, 0].item())


# ---- Triton against the fp32 reference


@needs_triton
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("b", "v", "c"), [(2, 37, 5), (2, 300, 7), (1, 1000, 12)])
def test_triton_matches_reference(dtype, b, v, c):
    args = make_case(b, v, c, seed=b * v + c, dtype=dtype)
    out = fused_range_logprobs(*args, 0.4, 0.8)
    ref = fused_range_logprobs_ref(*args, 0.4, 0.8)
    assert out.dtype == torch.float32 and out.shape == (b, c)
    close(out, ref, dtype)


def test_shapes_use_row_splits():
    # The shapes above run with the row split across programs (partial states merged).
    assert _range_config(2, 300, torch.device("cpu"))[2] == 2
    assert _range_config(1, 1000, torch.device("cpu"))[2] == 4


@needs_triton
def test_triton_path_is_the_one_running(monkeypatch):
    import stepfuse.kernels.fusion as fusion

    def boom(*a, **k):
        raise AssertionError("reference ran")

    monkeypatch.setattr(fusion, "fused_range_logprobs_ref", boom)
    args = make_case(2, 30, 3)
    fused_range_logprobs(*args, 0.5)
    monkeypatch.setenv("STEPFUSE_KERNELS", "reference")
    with pytest.raises(AssertionError, match="reference ran"):
        fused_range_logprobs(*args, 0.5)


@needs_triton
def test_empty_and_whole_vocabulary_ranges():
    b, v = 2, 300
    logits, perm, *_ = make_case(b, v, 1, seed=3)
    lo = torch.tensor([[5, 9, 0, 0, 299], [0, 17, 0, 300, 1]], device=DEVICE)
    hi = torch.tensor([[5, 3, 300, 300, 300], [300, 17, 1, 300, 300]], device=DEVICE)
    base = torch.full((b, 5), 0.5, device=DEVICE)
    rec = torch.zeros((b, 5), device=DEVICE)
    out = fused_range_logprobs(logits, perm, lo, hi, base, rec, 1.0)
    ref = fused_range_logprobs_ref(logits, perm, lo, hi, base, rec, 1.0)
    close(out, ref, torch.float32)
    assert torch.isneginf(out[0, :2]).all() and torch.isneginf(out[1, 1]) and torch.isneginf(out[1, 3])
    # The whole vocabulary has mass 1: the LM term is base + log 1.
    torch.testing.assert_close(out[0, 2].cpu(), torch.tensor(0.5), **TOL[torch.float32])
    torch.testing.assert_close(out[1, 0].cpu(), torch.tensor(0.5), **TOL[torch.float32])


@needs_triton
def test_rows_of_neg_inf_logits():
    b, v, c = 3, 300, 6
    logits, perm, lo, hi, base, rec = make_case(b, v, c, seed=5)
    logits[0] = NEG  # a row with no mass anywhere
    logits[1, perm[: v // 2]] = NEG  # half of the sorted order impossible
    lo[1] = torch.tensor([0, 0, 100, 150, 140, 10], device=DEVICE)
    hi[1] = torch.tensor([150, 300, 150, 300, 160, 11], device=DEVICE)
    for w in (0.5, 1.0):
        out = fused_range_logprobs(logits, perm, lo, hi, base, rec, w)
        ref = fused_range_logprobs_ref(logits, perm, lo, hi, base, rec, w)
        assert not torch.isnan(out).any()
        close(out, ref, torch.float32)
        assert torch.isneginf(out[0]).all()
        assert torch.isneginf(out[1, [0, 2, 5]]).all() and torch.isfinite(out[1, [1, 3, 4]]).all()
    # Weight 0 ignores the LM entirely, -inf rows included.
    out = fused_range_logprobs(logits, perm, lo, hi, base, rec, 0.0)
    assert torch.equal(out.cpu(), rec.float().cpu())


@needs_triton
def test_ranges_far_below_the_block_max_stay_exact():
    v = 300
    logits = torch.zeros(1, v, device=DEVICE)
    perm = torch.arange(v, device=DEVICE)
    logits[0, 10:20] = -200.0  # inside one block whose max is 0
    logits[0, 128:256] = -300.0  # a whole block far below the row max
    lo = torch.tensor([[10, 12, 128, 120]], device=DEVICE)
    hi = torch.tensor([[20, 13, 256, 260]], device=DEVICE)
    z = torch.zeros(1, 4, device=DEVICE)
    out = fused_range_logprobs(logits, perm, lo, hi, z, z, 1.0)
    want = fusion_oracle(logits, perm, lo, hi, z, z, 1.0, 1.0)
    np.testing.assert_allclose(out.cpu().numpy(), want, rtol=1e-5)


@needs_triton
@pytest.mark.parametrize("temperature", [0.25, 1.0, 4.0])
def test_temperature(temperature):
    args = make_case(2, 100, 4, seed=11)
    out = fused_range_logprobs(*args, 0.7, temperature)
    want = fusion_oracle(*args, 0.7, temperature)
    np.testing.assert_allclose(out.cpu().numpy(), want, rtol=1e-5, atol=1e-5)


# ---- top-k


def assert_topk_sets(ours: TopK, ref_fused, k, tol):
    """Descending values match; index sets match except for candidates tied with the k-th within tol."""
    ref_sorted = torch.sort(ref_fused.float().cpu(), dim=1, descending=True).values[:, :k]
    torch.testing.assert_close(ours.values.cpu(), ref_sorted, rtol=tol, atol=tol)
    for b in range(ref_fused.shape[0]):
        row = ref_fused[b].float().cpu()
        kth = ref_sorted[b, -1].item()
        picked = set(ours.indices[b].tolist())
        assert len(picked) == k
        sure = {i for i, x in enumerate(row.tolist()) if x > kth + tol}
        assert sure <= picked
        assert all(row[i].item() >= kth - tol or math.isinf(kth) for i in picked)


@needs_triton
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 3, 7])
def test_topk_matches_reference(dtype, k):
    args = make_case(3, 300, 7, seed=k, dtype=dtype)
    ours = fused_topk(*args, 0.4, k, 1.3)
    ref = fused_range_logprobs_ref(*args, 0.4, 1.3)
    assert ours.values.shape == (3, k) and ours.indices.dtype == torch.int64
    assert_topk_sets(ours, ref, k, TOL[dtype]["atol"])


@needs_triton
def test_topk_ties_at_the_boundary_go_to_lower_indices():
    args = make_case(2, 64, 8, seed=2)
    rec = torch.tensor([[0.0, -1.0, -1.0, -1.0, -2.0, -1.0, -3.0, -1.0]] * 2, device=DEVICE)
    args[5] = rec
    ours = fused_topk(*args, 0.0, 3)  # weight 0: exactly the recognizer scores, with ties at k
    ref = fused_topk_ref(*args, 0.0, 3)
    assert ours.indices.tolist() == [[0, 1, 2]] * 2 == ref.indices.tolist()
    assert torch.equal(ours.values.cpu(), ref.values.cpu())


@needs_triton
def test_topk_with_neg_inf_candidates():
    b, v, c = 1, 50, 5
    logits, perm, *_ = make_case(b, v, c, seed=4)
    lo = torch.tensor([[3, 0, 7, 9, 2]], device=DEVICE)
    hi = torch.tensor([[3, 50, 7, 9, 2]], device=DEVICE)  # only candidate 1 non-empty
    z = torch.zeros(b, c, device=DEVICE)
    ours = fused_topk(logits, perm, lo, hi, z, z, 1.0, 3)
    assert ours.indices.tolist() == [[1, 0, 2]]
    assert torch.isneginf(ours.values[0, 1:]).all() and abs(ours.values[0, 0].item()) < 1e-5


# ---- properties over small random shapes


@needs_triton
@settings(max_examples=40)
@given(
    b=st.integers(1, 3),
    v=st.integers(1, 150),
    c=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from(DTYPES),
    weight=st.sampled_from([0.0, 0.25, 1.0]),
    neg_inf_frac=st.sampled_from([0.0, 0.5, 1.0]),
    k=st.integers(1, 6),
)
def test_property_triton_matches_reference(b, v, c, seed, dtype, weight, neg_inf_frac, k):
    args = make_case(b, v, c, seed=seed, dtype=dtype, max_width=max(1, v // 3))
    if neg_inf_frac:
        g = torch.Generator().manual_seed(seed + 1)
        drop = torch.rand(b, v, generator=g) < neg_inf_frac
        args[0] = args[0].masked_fill(drop.to(DEVICE), NEG)
    out = fused_range_logprobs(*args, weight, 1.0)
    ref = fused_range_logprobs_ref(*args, weight, 1.0)
    assert not torch.isnan(out).any()
    close(out, ref, dtype)
    k = min(k, c)
    assert_topk_sets(fused_topk(*args, weight, k), ref, k, TOL[dtype]["atol"])


# ---- bad inputs raise stepfuse errors naming the argument


def good():
    return make_case(2, 20, 3, seed=1)


def call(**over):
    names = ["lm_logits", "perm", "lo", "hi", "base", "rec_logprobs"]
    kw = dict(zip(names, good()), weight=0.5)
    kw.update(over)
    return fused_range_logprobs(**kw)


@pytest.mark.parametrize(
    ("over", "cls", "word"),
    [
        ({"lm_logits": np.zeros((2, 20), np.float32)}, errors.InvalidTypeError, "lm_logits"),
        ({"lm_logits": torch.zeros(2, 20, dtype=torch.float64)}, errors.InvalidTypeError, "lm_logits"),
        ({"lm_logits": torch.zeros(20)}, errors.InvalidArgumentError, "lm_logits"),
        ({"lm_logits": torch.zeros(2, 0)}, errors.InvalidArgumentError, "lm_logits"),
        ({"perm": torch.arange(19)}, errors.InvalidArgumentError, "perm"),
        ({"perm": torch.arange(20.0)}, errors.InvalidTypeError, "perm"),
        ({"perm": torch.full((20,), 20)}, errors.OutOfRangeError, "perm"),
        ({"lo": torch.zeros(3, 3, dtype=torch.long)}, errors.InvalidArgumentError, "lo"),
        ({"lo": torch.full((2, 3), -1)}, errors.OutOfRangeError, "lo"),
        ({"hi": torch.full((2, 3), 21)}, errors.OutOfRangeError, "hi"),
        ({"hi": torch.zeros(2, 4, dtype=torch.long)}, errors.InvalidArgumentError, "hi"),
        ({"base": torch.zeros(2, 2)}, errors.InvalidArgumentError, "base"),
        ({"rec_logprobs": torch.zeros(2, 3, dtype=torch.int32)}, errors.InvalidTypeError, "rec_logprobs"),
        ({"weight": 1.5}, errors.InvalidArgumentError, "weight"),
        ({"weight": float("nan")}, errors.NonFiniteError, "weight"),
        ({"weight": "a"}, errors.InvalidTypeError, "weight"),
        ({"temperature": 0.0}, errors.InvalidArgumentError, "temperature"),
        ({"temperature": 1e-6}, errors.InvalidArgumentError, "temperature"),
        ({"temperature": float("inf")}, errors.NonFiniteError, "temperature"),
        ({"base": torch.zeros(2, 3, device="meta")}, errors.InvalidArgumentError, "device"),
    ],
)
def test_bad_inputs(over, cls, word):
    over = {k: (v.to(DEVICE) if isinstance(v, torch.Tensor) and v.device.type != "meta" else v) for k, v in over.items()}
    with pytest.raises(cls, match=word):
        call(**over)


def test_too_many_candidates_and_bad_k():
    logits, perm, *_ = good()
    c = 1025
    z = torch.zeros(2, c, device=DEVICE)
    zi = torch.zeros(2, c, dtype=torch.long, device=DEVICE)
    with pytest.raises(errors.LimitExceededError, match="C"):
        fused_range_logprobs(logits, perm, zi, zi, z, z, 0.5)
    args = good()
    for k in (0, 4):
        with pytest.raises(errors.InvalidArgumentError, match="k"):
            fused_topk(*args, 0.5, k)
    with pytest.raises(errors.InvalidTypeError, match="k"):
        fused_topk(*args, 0.5, 2.0)


def test_empty_batch_and_no_candidates():
    logits, perm, lo, hi, base, rec = good()
    out = fused_range_logprobs(logits[:0], perm, lo[:0], hi[:0], base[:0], rec[:0], 0.5)
    assert out.shape == (0, 3)
    out = fused_range_logprobs(logits, perm, lo[:, :0], hi[:, :0], base[:, :0], rec[:, :0], 0.5)
    assert out.shape == (2, 0)


@settings(max_examples=40)
@given(
    b=st.integers(0, 3),
    v=st.integers(0, 5),
    c=st.integers(0, 3),
    perm_shift=st.integers(-3, 3),
    lo_shift=st.integers(-3, 3),
    hi_shift=st.integers(-3, 8),
    weight=st.floats(allow_nan=True, allow_infinity=True),
    temperature=st.floats(allow_nan=True, allow_infinity=True),
)
def test_malformed_inputs_raise_only_stepfuse_errors(b, v, c, perm_shift, lo_shift, hi_shift, weight, temperature):
    logits = torch.randn(b, v, device=DEVICE)
    perm = torch.arange(v, device=DEVICE) + perm_shift
    lo = torch.full((b, c), lo_shift, device=DEVICE)
    hi = torch.full((b, c), hi_shift, device=DEVICE)
    z = torch.zeros(b, c, device=DEVICE)
    try:
        out = fused_range_logprobs(logits, perm, lo, hi, z, z, weight, temperature)
    except errors.StepfuseError:
        return
    assert out.shape == (b, c)


# ---- full-size shapes (GPU only)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("b", "v", "c"), [(8, 32000, 16), (64, 152064, 32)])
def test_full_size_gpu(dtype, b, v, c):
    args = make_case(b, v, c, seed=0, dtype=dtype, max_width=4000)
    out = fused_range_logprobs(*args, 0.3)
    close(out, fused_range_logprobs_ref(*args, 0.3), dtype)
    ours = fused_topk(*args, 0.3, 8)
    assert_topk_sets(ours, fused_range_logprobs_ref(*args, 0.3), 8, TOL[dtype]["atol"])


@needs_triton
def test_strided_inputs():
    # Views of larger buffers (row stride != V) and a non-unit column stride (copied) give the same result.
    logits, perm, lo, hi, base, rec = make_case(2, 100, 4, seed=8)
    wide = torch.randn(2, 230, device=DEVICE)
    wide[:, 10:110] = logits
    every_other = torch.randn(2, 200, device=DEVICE)
    every_other[:, ::2] = logits
    big_lo = torch.zeros(2, 9, dtype=torch.long, device=DEVICE)
    big_lo[:, 1:5] = lo
    want = fused_range_logprobs_ref(logits, perm, lo, hi, base, rec, 0.5)
    for view in (wide[:, 10:110], every_other[:, ::2]):
        close(fused_range_logprobs(view, perm, big_lo[:, 1:5], hi, base.t().contiguous().t(), rec, 0.5), want, torch.float32)


@needs_triton
@pytest.mark.parametrize("dtype", DTYPES)
def test_presorted_logits_without_perm(dtype):
    # perm=None: the logits' columns are already in sorted order (identity permutation).
    logits, perm, lo, hi, base, rec = make_case(2, 300, 6, seed=12, dtype=dtype)
    sorted_logits = logits[:, perm].contiguous()
    out = fused_range_logprobs(sorted_logits, None, lo, hi, base, rec, 0.4)
    close(out, fused_range_logprobs_ref(logits, perm, lo, hi, base, rec, 0.4), dtype)
    close(fused_range_logprobs_ref(sorted_logits, None, lo, hi, base, rec, 0.4), out, dtype)
    top = fused_topk(sorted_logits, None, lo, hi, base, rec, 0.4, 3)
    assert_topk_sets(top, out, 3, TOL[dtype]["atol"])
    with pytest.raises(errors.OutOfRangeError, match="hi"):
        fused_range_logprobs(sorted_logits, None, lo, hi + 400, base, rec, 0.4)


def test_backend_choice():
    args = make_case(2, 30, 3, seed=13)
    ref = fused_range_logprobs(*args, 0.5, backend="reference")
    torch.testing.assert_close(ref, fused_range_logprobs_ref(*args, 0.5))
    with pytest.raises(errors.InvalidArgumentError, match="backend"):
        fused_range_logprobs(*args, 0.5, backend="cuda")
    if TRITON:
        close(fused_range_logprobs(*args, 0.5, backend="triton"), ref, torch.float32)
        assert fused_topk(*args, 0.5, 2, backend="triton").indices.shape == (2, 2)
    else:
        with pytest.raises(errors.StepfuseError, match="triton"):
            fused_range_logprobs(*args, 0.5, backend="triton")
