"""shared_prefix_attention / merge_attention_states: Triton (interpreter on CPU) vs fp32 reference vs oracle."""

from __future__ import annotations

import numpy as np
import pytest
from _kernels_util import DEVICE, DTYPES, TRITON, attention_oracle, close, needs_triton, torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stepfuse import errors
from stepfuse.kernels import merge_attention_states, shared_prefix_attention
from stepfuse.kernels.reference import (
    attention_state_ref,
    merge_attention_states_ref,
    shared_prefix_attention_ref,
)

NEG = float("-inf")


def make_case(b, hq, hkv, d, p, s, *, seed=0, dtype=torch.float32, lens=None):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g).to(dtype).to(DEVICE)

    q, kp, vp = r(b, hq, d), r(p, hkv, d), r(p, hkv, d)
    ks, vs = r(b, s, hkv, d), r(b, s, hkv, d)
    if lens is None:
        lens = torch.randint(0, s + 1, (b,), generator=g)
    return [q, kp, vp, ks, vs, torch.as_tensor(lens).to(DEVICE)]


# ---- reference against the float64 oracle


@pytest.mark.parametrize(("hq", "hkv"), [(2, 2), (4, 1), (8, 1)])
def test_reference_matches_oracle(hq, hkv):
    args = make_case(3, hq, hkv, 8, 5, 4, seed=hq, lens=[0, 2, 4])
    out = shared_prefix_attention_ref(*args, 0.3)
    np.testing.assert_allclose(out.cpu().numpy(), attention_oracle(*args, 0.3), rtol=1e-5, atol=1e-6)


def test_reference_merge_equals_attention_over_the_union():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 8, generator=g)
    k = torch.randn(2, 10, 3, 8, generator=g)
    v = torch.randn(2, 10, 3, 8, generator=g)
    ones = torch.ones(2, 10, dtype=torch.bool)
    first = torch.arange(10) < 4
    o, lse = attention_state_ref(q, k, v, ones, 0.5)
    o1, l1 = attention_state_ref(q, k, v, first.expand(2, 10), 0.5)
    o2, l2 = attention_state_ref(q, k, v, (~first).expand(2, 10), 0.5)
    om, lm = merge_attention_states_ref(o1, l1, o2, l2)
    torch.testing.assert_close(om, o, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(lm, lse, rtol=1e-5, atol=1e-6)


# ---- Triton against the fp32 reference


@needs_triton
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("hq", "hkv"), [(2, 2), (8, 2), (8, 1)])  # GQA ratios 1, 4, 8
@pytest.mark.parametrize(("p", "s"), [(1, 5), (150, 9)])
def test_triton_matches_reference(dtype, hq, hkv, p, s):
    args = make_case(3, hq, hkv, 16, p, s, seed=p + hq, dtype=dtype, lens=[0, s, s // 2])
    out = shared_prefix_attention(*args, 0.25)
    assert out.dtype == dtype and out.shape == (3, hq, 16)
    close(out, shared_prefix_attention_ref(*args, 0.25), dtype)


@needs_triton
def test_suffix_lens_zero_is_prefix_only_attention():
    q, kp, vp, ks, vs, _ = make_case(2, 4, 2, 16, 40, 6, seed=1)
    lens = torch.zeros(2, dtype=torch.long, device=DEVICE)
    out = shared_prefix_attention(q, kp, vp, ks, vs, lens, 0.2)
    # Garbage in the unused suffix slots must not matter.
    ks2, vs2 = ks.clone().fill_(1e4), vs.clone().fill_(float("nan"))
    out2 = shared_prefix_attention(q, kp, vp, ks2, vs2, lens, 0.2)
    torch.testing.assert_close(out, out2)
    np.testing.assert_allclose(
        out.cpu().numpy(), attention_oracle(q, kp, vp, ks, vs, lens, 0.2), rtol=1e-5, atol=1e-6
    )


@needs_triton
def test_prefix_of_one_key_and_odd_head_dim():
    args = make_case(2, 4, 4, 20, 1, 3, seed=2, lens=[3, 1])
    out = shared_prefix_attention(*args, 20**-0.5)
    np.testing.assert_allclose(out.cpu().numpy(), attention_oracle(*args, 20**-0.5), rtol=1e-5, atol=1e-6)


@needs_triton
def test_no_keys_at_all_gives_zeros():
    args = make_case(2, 2, 1, 16, 0, 3, seed=3, lens=[0, 2])
    out = shared_prefix_attention(*args, 0.5)
    assert torch.equal(out[0].cpu(), torch.zeros(2, 16)) and not torch.isnan(out).any()
    close(out, shared_prefix_attention_ref(*args, 0.5), torch.float32)


@needs_triton
def test_prefix_split_across_programs():
    # 2 KV heads x 1 row tile < 4 interpreter programs: the prefix is split and partial states merged.
    args = make_case(2, 4, 2, 16, 300, 4, seed=4)
    close(shared_prefix_attention(*args, 0.3), shared_prefix_attention_ref(*args, 0.3), torch.float32)


@needs_triton
@settings(max_examples=40)
@given(
    b=st.integers(1, 3),
    hkv=st.integers(1, 2),
    ratio=st.sampled_from([1, 2, 4, 8]),
    d=st.integers(1, 24),
    p=st.integers(0, 80),
    s=st.integers(0, 6),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from(DTYPES),
)
def test_property_triton_matches_reference(b, hkv, ratio, d, p, s, seed, dtype):
    args = make_case(b, hkv * ratio, hkv, d, p, s, seed=seed, dtype=dtype)
    out = shared_prefix_attention(*args, d**-0.5)
    assert not torch.isnan(out).any()
    close(out, shared_prefix_attention_ref(*args, d**-0.5), dtype)


# ---- merge_attention_states


@needs_triton
@pytest.mark.parametrize("dtype", DTYPES)
def test_merge_matches_reference(dtype):
    g = torch.Generator().manual_seed(5)
    o1, o2 = (torch.randn(3, 4, 24, generator=g).to(dtype).to(DEVICE) for _ in range(2))
    l1, l2 = (torch.randn(3, 4, generator=g).mul(5).to(DEVICE) for _ in range(2))
    o, lse = merge_attention_states(o1, l1, o2, l2)
    ro, rl = merge_attention_states_ref(o1, l1, o2, l2)
    assert o.dtype == torch.float32 and o.shape == (3, 4, 24) and lse.shape == (3, 4)
    close(o, ro, dtype)
    close(lse, rl, dtype)


@needs_triton
def test_merge_with_an_empty_state_is_the_identity():
    g = torch.Generator().manual_seed(6)
    o1 = torch.randn(5, 16, generator=g).to(DEVICE)
    l1 = torch.randn(5, generator=g).to(DEVICE)
    empty_o = torch.full((5, 16), float("nan"), device=DEVICE)  # ignored: its lse is -inf
    empty_l = torch.full((5,), NEG, device=DEVICE)
    for o, lse in (merge_attention_states(o1, l1, empty_o, empty_l), merge_attention_states(empty_o, empty_l, o1, l1)):
        torch.testing.assert_close(o, o1)
        torch.testing.assert_close(lse, l1)
    o, lse = merge_attention_states(empty_o, empty_l, empty_o, empty_l)
    assert torch.equal(o.cpu(), torch.zeros(5, 16)) and torch.isneginf(lse).all()
    ro, rl = merge_attention_states_ref(empty_o, empty_l, empty_o, empty_l)
    assert torch.equal(ro.cpu(), torch.zeros(5, 16)) and torch.isneginf(rl).all()


@needs_triton
def test_merge_extreme_lse_gap():
    o1 = torch.ones(2, 16, device=DEVICE)
    o2 = torch.full((2, 16), 3.0, device=DEVICE)
    l1 = torch.tensor([0.0, -1e4], device=DEVICE)
    l2 = torch.tensor([-1e4, 0.0], device=DEVICE)
    o, lse = merge_attention_states(o1, l1, o2, l2)
    assert torch.equal(o[0].cpu(), torch.ones(16)) and torch.equal(o[1].cpu(), torch.full((16,), 3.0))
    torch.testing.assert_close(lse.cpu(), torch.zeros(2))


# ---- bad inputs


def call(**over):
    names = ["q", "k_prefix", "v_prefix", "k_suffix", "v_suffix", "suffix_lens"]
    kw = dict(zip(names, make_case(2, 4, 2, 8, 5, 3, lens=[1, 3])), scale=0.5)
    kw.update(over)
    return shared_prefix_attention(**kw)


@pytest.mark.parametrize(
    ("over", "cls", "word"),
    [
        ({"q": np.zeros((2, 4, 8), np.float32)}, errors.InvalidTypeError, "q"),
        ({"q": torch.zeros(2, 4, 8, dtype=torch.float64)}, errors.InvalidTypeError, "q"),
        ({"q": torch.zeros(2, 3, 8)}, errors.InvalidArgumentError, "multiple"),
        ({"q": torch.zeros(2, 4, 8, dtype=torch.float16)}, errors.InvalidTypeError, "k_prefix"),
        ({"k_prefix": torch.zeros(5, 2, 7)}, errors.InvalidArgumentError, "k_prefix"),
        ({"v_prefix": torch.zeros(4, 2, 8)}, errors.InvalidArgumentError, "v_prefix"),
        ({"k_suffix": torch.zeros(3, 3, 2, 8)}, errors.InvalidArgumentError, "k_suffix"),
        ({"v_suffix": torch.zeros(2, 3, 2)}, errors.InvalidArgumentError, "v_suffix"),
        ({"suffix_lens": torch.zeros(2)}, errors.InvalidTypeError, "suffix_lens"),
        ({"suffix_lens": torch.tensor([0, 4])}, errors.OutOfRangeError, "suffix_lens"),
        ({"suffix_lens": torch.tensor([-1, 0])}, errors.OutOfRangeError, "suffix_lens"),
        ({"scale": float("nan")}, errors.NonFiniteError, "scale"),
        ({"q": torch.zeros(2, 4, 512), "k_prefix": torch.zeros(5, 2, 512)}, errors.LimitExceededError, "D"),
        ({"suffix_lens": torch.zeros(2, dtype=torch.long, device="meta")}, errors.InvalidArgumentError, "device"),
    ],
)
def test_bad_inputs(over, cls, word):
    over = {k: (v.to(DEVICE) if isinstance(v, torch.Tensor) and v.device.type != "meta" else v) for k, v in over.items()}
    with pytest.raises(cls, match=word):
        call(**over)


def test_merge_bad_inputs():
    o = torch.zeros(3, 4, 8, device=DEVICE)
    lse = torch.zeros(3, 4, device=DEVICE)
    with pytest.raises(errors.InvalidArgumentError, match="o2"):
        merge_attention_states(o, lse, o[:2], lse)
    with pytest.raises(errors.InvalidArgumentError, match="lse2"):
        merge_attention_states(o, lse, o, lse[:, :3])
    with pytest.raises(errors.InvalidTypeError, match="lse1"):
        merge_attention_states(o, [0.0], o, lse)
    with pytest.raises(errors.InvalidTypeError, match="o1"):
        merge_attention_states(o.long(), lse, o, lse)


@settings(max_examples=30)
@given(
    shapes=st.lists(st.lists(st.integers(0, 3), min_size=0, max_size=4), min_size=6, max_size=6),
    lens_dtype=st.sampled_from([torch.int64, torch.int32, torch.float32]),
    scale=st.floats(allow_nan=True, allow_infinity=True),
)
def test_malformed_inputs_raise_only_stepfuse_errors(shapes, lens_dtype, scale):
    tensors = [torch.zeros(tuple(sh), device=DEVICE) for sh in shapes[:5]]
    lens = torch.zeros(tuple(shapes[5]), dtype=lens_dtype, device=DEVICE)
    try:
        shared_prefix_attention(*tensors, lens, scale)
    except errors.StepfuseError:
        pass


# ---- full-size shapes (GPU only)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("b", "p", "hq", "hkv"), [(16, 1024, 32, 8), (64, 8192, 32, 4)])
def test_full_size_gpu(dtype, b, p, hq, hkv):
    args = make_case(b, hq, hkv, 128, p, 128, seed=0, dtype=dtype)
    close(shared_prefix_attention(*args, 128**-0.5), shared_prefix_attention_ref(*args, 128**-0.5), dtype)


@needs_triton
def test_strided_inputs():
    q, kp, vp, ks, vs, lens = make_case(2, 4, 2, 16, 30, 5, seed=9, lens=[2, 5])
    want = shared_prefix_attention_ref(q, kp, vp, ks, vs, lens, 0.3)
    big_k = torch.randn(30, 2, 40, device=DEVICE)
    big_k[:, :, 8:24] = kp
    big_s = torch.randn(2, 9, 2, 16, device=DEVICE)
    big_s[:, 2:7] = vs
    qt = q.transpose(1, 2).contiguous().transpose(1, 2)  # head dim not unit-stride: copied
    out = shared_prefix_attention(qt, big_k[:, :, 8:24], vp, ks, big_s[:, 2:7], lens, 0.3)
    close(out, want, torch.float32)


def test_backend_choice():
    args = make_case(2, 4, 2, 16, 10, 3, seed=14)
    ref = shared_prefix_attention(*args, 0.3, backend="reference")
    torch.testing.assert_close(ref, shared_prefix_attention_ref(*args, 0.3))
    with pytest.raises(errors.InvalidArgumentError, match="backend"):
        shared_prefix_attention(*args, 0.3, backend="gpu")
    o = torch.zeros(2, 16, device=DEVICE)
    lse = torch.zeros(2, device=DEVICE)
    with pytest.raises(errors.InvalidArgumentError, match="backend"):
        merge_attention_states(o, lse, o, lse, backend="x")
    if TRITON:
        close(shared_prefix_attention(*args, 0.3, backend="triton"), ref, torch.float32)
        close(merge_attention_states(o, lse, o, lse, backend="triton")[0], o, torch.float32)
