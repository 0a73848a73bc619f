"""Superposed Decoding: oracle equality, greedy equivalence, n-gram filter property, batching, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from stepfuse import NGramLM, errors  # noqa: E402
from stepfuse.superposed import (  # noqa: E402
    NGRAM_FALLBACK_PENALTY,
    SuperposedResult,
    _draft_perplexity,
    superposed_generate,
)

V = 48


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models: intra-op threads only add contention on a shared machine (10x slower here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _gpt2(dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(
        vocab_size=V, n_positions=64, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=1
    )
    return transformers.GPT2LMHeadModel(cfg).to(dtype).eval()


def _llama(dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(
        vocab_size=V,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=None,
    )
    return transformers.LlamaForCausalLM(cfg).to(dtype).eval()


MODELS = {"gpt2": _gpt2, "llama": _llama}
_CACHE: dict[tuple, object] = {}


def model(name: str, dtype=torch.float32):
    key = (name, dtype)
    if key not in _CACHE:
        _CACHE[key] = MODELS[name](dtype)
    return _CACHE[key]


def _ngram(order=3, weights=None, vocab_size=V, corpus_seed=0, n=40):
    """The real n-gram filter: interpolated MLE over a small random corpus (ids 2..19)."""
    return NGramLM.train(
        _corpus(corpus_seed, n=n), order, smoothing="interpolated_mle", weights=weights, vocab_size=vocab_size
    )


class CountingScorer:
    """Wraps a scorer and counts its ``score`` calls."""

    def __init__(self, inner):
        self.inner = inner
        self.order = inner.order
        self.calls = 0

    def score(self, contexts, tokens):
        self.calls += 1
        return self.inner.score(contexts, tokens)


class NoMass:
    """A protocol-only scorer (not an NGramLM) that gives every token zero mass."""

    order = 2

    def score(self, contexts, tokens):
        return np.full(np.shape(tokens), -np.inf, dtype=np.float32)


def _allowed_only(allowed, seed=0):
    """An NGramLM trained only on ``allowed`` tokens (unigram weight > 0): mass iff the token is allowed."""
    rng = np.random.default_rng(seed)
    sents = [rng.choice(sorted(allowed), size=8) for _ in range(30)]
    return NGramLM.train(sents, 2, smoothing="interpolated_mle", vocab_size=V)


def _corpus(seed=0, n=40, length=12):
    rng = np.random.default_rng(seed)
    return [rng.integers(2, 20, size=length) for _ in range(n)]


# --------------------------------------------------------------------------------------------------
# brute-force oracle: one prompt, no KV cache, dense (k x V)·(V x d) superposition as the paper writes it


def oracle(mdl, prompt, k, T, m, alpha, ngram, temperature, eos):
    emb = mdl.get_input_embeddings().weight
    with torch.no_grad():
        base = emb[torch.tensor(prompt)]
        inputs = [base]
        drafts = [([], 0.0, "alive")]  # (tokens, cum, state)
        for t in range(T):
            x = torch.cat(inputs, dim=0).unsqueeze(0)
            logits = mdl(inputs_embeds=x).logits[0, -1].double()
            logp = torch.log_softmax(logits / temperature, dim=-1)
            top = torch.argsort(logp, descending=True, stable=True)[:m].tolist()
            cands = []  # (tier, score, index, tokens, state)
            idx = 0
            for toks, cum, state in drafts:
                for y in top:
                    lm = float(logp[y])
                    if state == "alive" and math.isfinite(lm):
                        tier, s = 2, lm
                        if ngram is not None and alpha > 0:
                            ctx = (prompt + toks)[-max(ngram.order - 1, 1) :]
                            nv = getattr(ngram, "vocab_size", V)
                            ctx = [c if c < nv else ngram.unk_id for c in ctx]
                            yq = y if y < nv else ngram.unk_id
                            ng = float(ngram.score(np.array([ctx]), np.array([[yq]]))[0, 0])
                            if ng > -math.inf:
                                s = (1 - alpha) * lm + alpha * ng
                            else:
                                tier, s = 1, (1 - alpha) * lm - NGRAM_FALLBACK_PENALTY
                        st_ = "fin" if eos is not None and y in eos else "alive"
                        cands.append((tier, cum + s, idx, [*toks, y], st_))
                    idx += 1
                if state == "fin":
                    cands.append((2, cum, idx, toks, "fin"))
                idx += 1
            cands.sort(key=lambda c: (-c[0], -c[1], c[2]))
            drafts = [(c[3], c[1], c[4]) for c in cands[:k]]
            alive = [(toks, cum) for toks, cum, s in drafts if s == "alive"]
            if not alive or t == T - 1:
                break
            w = torch.softmax(torch.tensor([c for _, c in alive], dtype=torch.float64), 0)
            mix = torch.zeros(emb.shape[0], dtype=emb.dtype)
            for wi, (toks, _) in zip(w, alive):
                mix[toks[-1]] += wi.to(emb.dtype)
            inputs.append((mix @ emb).unsqueeze(0))  # the reference's dense superposition
        out = []
        for toks, cum, _ in drafts:
            full = torch.tensor([prompt + toks])
            lp = torch.log_softmax(mdl(full).logits[0].double(), -1)
            nll = -sum(float(lp[len(prompt) - 1 + i, y]) for i, y in enumerate(toks))
            out.append((toks, cum, math.exp(nll / len(toks))))
    out.sort(key=lambda d: d[2])
    return out


def _check_against_oracle(res, b, expected, tol=1e-6):
    assert [list(d) for d in res.drafts[b]] == [e[0] for e in expected]
    np.testing.assert_allclose(res.scores[b], [e[1] for e in expected], rtol=tol, atol=tol)
    np.testing.assert_allclose(res.perplexities[b], [e[2] for e in expected], rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["gpt2", "llama"])
@pytest.mark.parametrize(
    ("k", "m", "T", "alpha", "use_ngram", "eos", "temp"),
    [
        (3, 9, 6, 0.54, True, None, 0.5),
        (2, 3, 5, 0.0, False, [3], 1.0),
        (4, 5, 4, 1.0, True, [2, 3], 1.0),
        (3, 2, 5, 0.3, True, None, 0.06),
    ],
)
def test_matches_dense_oracle(name, k, m, T, alpha, use_ngram, eos, temp):
    mdl = model(name, torch.float64)
    ng = _ngram(3, weights=[0.0, 0.5, 0.5]) if use_ngram else None
    prompts = [[5, 6, 7, 8], [9, 3, 11, 4, 2, 17]]
    for p in prompts:
        res = superposed_generate(
            mdl,
            [p],
            k=k,
            max_new_tokens=T,
            top_m=m,
            alpha=alpha,
            ngram=ng,
            temperature=temp,
            eos_token_id=eos,
        )
        _check_against_oracle(res, 0, oracle(mdl, p, k, T, m, alpha, ng, temp, eos))


@settings(max_examples=40)
@given(
    k=st.integers(1, 4),
    m=st.integers(1, 6),
    T=st.integers(1, 5),
    alpha=st.sampled_from([0.0, 0.25, 0.54, 1.0]),
    eos=st.sampled_from([None, 2, 5]),
    prompt=st.lists(st.integers(0, V - 1), min_size=1, max_size=6),
    temp=st.sampled_from([0.06, 1.0]),
    ng_vocab=st.sampled_from([V, 20]),
    name=st.sampled_from(["gpt2", "llama"]),
)
def test_matches_dense_oracle_property(k, m, T, alpha, eos, prompt, temp, ng_vocab, name):
    mdl = model(name, torch.float64)
    ng = _ngram(4, weights=[0.0, 0.2, 0.3, 0.5], vocab_size=ng_vocab, corpus_seed=1, n=20)
    e = None if eos is None else [eos]
    res = superposed_generate(
        mdl, [prompt], k=k, max_new_tokens=T, top_m=m, alpha=alpha, ngram=ng, temperature=temp, eos_token_id=e
    )
    _check_against_oracle(res, 0, oracle(mdl, prompt, k, T, m, alpha, ng, temp, e), tol=1e-5)


# --------------------------------------------------------------------------------------------------
# behaviour


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_k1_without_ngram_is_greedy(name):
    mdl = model(name)
    rng = np.random.default_rng(3)
    for L in (1, 4, 9):
        ids = torch.tensor(rng.integers(0, V, size=(1, L)))
        res = superposed_generate(mdl, ids, k=1, max_new_tokens=8, temperature=0.7)
        ref = mdl.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=8,
            eos_token_id=None,
            pad_token_id=0,
        )
        assert res.drafts[0] == [ref[0, L:].tolist()]


def test_k1_with_eos_stops_like_greedy():
    mdl = model("gpt2")
    ids = torch.tensor([[5, 6, 7]])
    ref = mdl.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        max_new_tokens=8,
        eos_token_id=None,
        pad_token_id=0,
    )
    gen = ref[0, 3:].tolist()
    eos = gen[3]  # pretend the fourth greedy token is eos
    res = superposed_generate(mdl, ids, k=1, max_new_tokens=8, eos_token_id=eos)
    assert res.drafts[0] == [gen[: gen.index(eos) + 1]]


@pytest.mark.parametrize("name", ["gpt2", "llama"])
@pytest.mark.parametrize("k", [2, 3, 5])
def test_drafts_are_distinct_and_ranked_by_perplexity(name, k):
    mdl = model(name)
    ids = torch.tensor([[4, 8, 15, 16], [23, 42, 7, 1]])
    res = superposed_generate(mdl, ids, k=k, max_new_tokens=6, ngram=_ngram(3), eos_token_id=1)
    assert isinstance(res, SuperposedResult)
    for b in range(2):
        drafts = [tuple(d) for d in res.drafts[b]]
        assert len(drafts) == k
        assert len(set(drafts)) == k
        assert res.perplexities[b] == sorted(res.perplexities[b])
        assert all(math.isfinite(s) for s in res.scores[b])


def test_zero_mass_token_never_chosen_while_mass_exists():
    mdl = model("gpt2")
    ids = torch.tensor([[5, 6, 7], [30, 31, 32]])
    allowed = {9, 13, 21, 40}
    res = superposed_generate(mdl, ids, k=3, max_new_tokens=6, top_m=V, ngram=_allowed_only(allowed))
    for b in range(2):
        for d in res.drafts[b]:
            assert set(d) <= allowed
    # fewer allowed tokens than drafts: the zero-mass tokens fill the remaining slots at step 1 only,
    # after that every draft can be extended by the allowed token, so every later token is allowed
    res = superposed_generate(mdl, ids, k=3, max_new_tokens=5, top_m=V, ngram=_allowed_only({9}))
    for b in range(2):
        assert sum(d[0] == 9 for d in res.drafts[b]) == 1
        for d in res.drafts[b]:
            assert set(d[1:]) == {9}


def test_all_zero_mass_falls_back_to_lm():
    mdl = model("llama", torch.float64)
    ids = torch.tensor([[5, 6, 7]])
    # (1-α)·log_softmax(z/τ) - penalty = log_softmax(z·(1-α)/τ) + a per-step constant, and a constant
    # shared by all candidates of a prompt changes neither the selection nor the softmax weights
    plain = superposed_generate(mdl, ids, k=3, max_new_tokens=5, temperature=0.5 / (1 - 0.54))
    nomass = superposed_generate(mdl, ids, k=3, max_new_tokens=5, temperature=0.5, ngram=NoMass())
    assert plain.drafts == nomass.drafts
    np.testing.assert_allclose(plain.perplexities, nomass.perplexities, rtol=1e-9)


def test_one_batched_ngram_call_per_step():
    mdl = model("gpt2")
    ng = CountingScorer(_ngram(3))
    superposed_generate(mdl, torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]]), k=3, max_new_tokens=7, ngram=ng)
    assert ng.calls == 7


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_padded_batch_equals_each_prompt_alone(name):
    mdl = model(name, torch.float64)
    prompts = [[5, 6, 7], [9, 3, 11, 4, 2, 17, 12], [40], [20, 21, 22, 23, 24]]
    L = max(map(len, prompts))
    ids = torch.tensor([[0] * (L - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (L - len(p)) + [1] * len(p) for p in prompts])
    ng = _ngram(3)
    kw = dict(k=3, max_new_tokens=6, ngram=ng, eos_token_id=[2], temperature=0.5)
    batch = superposed_generate(mdl, ids, attention_mask=mask, **kw)
    for b, p in enumerate(prompts):
        alone = superposed_generate(mdl, torch.tensor([p]), **kw)
        assert batch.drafts[b] == alone.drafts[0]
        np.testing.assert_allclose(batch.scores[b], alone.scores[0], rtol=1e-9)
        np.testing.assert_allclose(batch.perplexities[b], alone.perplexities[0], rtol=1e-9)


_NG3 = _ngram(3)


@settings(max_examples=20)
@given(
    name=st.sampled_from(["gpt2", "llama"]),
    prompts=st.lists(st.lists(st.integers(0, V - 1), min_size=1, max_size=7), min_size=1, max_size=4),
    k=st.integers(1, 4),
    T=st.integers(0, 5),
    eos=st.sampled_from([None, 3]),
)
def test_padded_batch_equals_each_prompt_alone_property(name, prompts, k, T, eos):
    mdl = model(name, torch.float64)
    L = max(map(len, prompts))
    ids = [[7] * (L - len(p)) + p for p in prompts]
    mask = [[0] * (L - len(p)) + [1] * len(p) for p in prompts]
    kw = dict(k=k, max_new_tokens=T, ngram=_NG3, eos_token_id=eos, temperature=0.5)
    batch = superposed_generate(mdl, ids, attention_mask=mask, **kw)
    for b, p in enumerate(prompts):
        alone = superposed_generate(mdl, [p], **kw)
        assert batch.drafts[b] == alone.drafts[0]
        np.testing.assert_allclose(batch.scores[b], alone.scores[0], rtol=1e-9)


def test_perplexity_cached_prompt_equals_recompute():
    mdl = model("llama")
    ids = torch.tensor([[0, 0, 5, 6, 7], [8, 9, 10, 11, 12]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    plen = mask.sum(1)
    tokens = torch.tensor([[[3, 4, 1, -1], [7, 7, 7, 7]], [[2, -1, -1, -1], [9, 10, 11, 12]]])
    out = mdl(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp_min(0))
    first = torch.log_softmax(out.logits[:, -1].float(), -1)
    cached = _draft_perplexity(torch, mdl, ids, mask, plen, first, tokens, out.cache)
    recomputed = _draft_perplexity(torch, mdl, ids, mask, plen, first, tokens, None)
    torch.testing.assert_close(cached, recomputed, rtol=1e-5, atol=1e-5)
    assert cached.shape == (2, 2)


def test_inputs_as_lists_and_zero_new_tokens():
    mdl = model("gpt2")
    res = superposed_generate(mdl, [[1, 2, 3]], k=3, max_new_tokens=0)
    assert res == SuperposedResult([[[]]], [[0.0]], [[1.0]])
    a = superposed_generate(mdl, np.array([[1, 2, 3]], dtype=np.int32), k=2, max_new_tokens=3, seed=5)
    b = superposed_generate(mdl, torch.tensor([[1, 2, 3]]), k=2, max_new_tokens=3)
    assert a == b


def test_default_top_m_is_capped_at_the_vocabulary():
    res = superposed_generate(model("llama"), [[1, 2, 3]], k=8, max_new_tokens=3)  # k*k = 64 > V
    assert len(res.drafts[0]) == 8
    assert len(set(map(tuple, res.drafts[0]))) == 8


def test_top_m_smaller_than_k_gives_fewer_drafts():
    mdl = model("gpt2")
    res = superposed_generate(mdl, [[1, 2, 3]], k=4, top_m=2, max_new_tokens=1)
    assert len(res.drafts[0]) == 2


# --------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    ("kwargs", "cls"),
    [
        ({"k": 0}, errors.InvalidArgumentError),
        ({"k": 1.5}, errors.InvalidTypeError),
        ({"k": True}, errors.InvalidTypeError),
        ({"max_new_tokens": -1}, errors.InvalidArgumentError),
        ({"alpha": 1.5}, errors.InvalidArgumentError),
        ({"alpha": -0.1}, errors.InvalidArgumentError),
        ({"alpha": float("nan")}, errors.InvalidArgumentError),
        ({"alpha": "x"}, errors.InvalidTypeError),
        ({"temperature": 0.0}, errors.InvalidArgumentError),
        ({"temperature": float("inf")}, errors.InvalidArgumentError),
        ({"top_m": 0}, errors.InvalidArgumentError),
        ({"top_m": V + 1}, errors.InvalidArgumentError),
        ({"eos_token_id": -3}, errors.InvalidArgumentError),
        ({"ngram": object()}, errors.InvalidTypeError),
        ({"attention_mask": [[1, 1]]}, errors.InvalidArgumentError),
        ({"attention_mask": [[1, 0, 1]]}, errors.InvalidArgumentError),
        ({"attention_mask": [[0, 0, 0]]}, errors.InvalidArgumentError),
        ({"attention_mask": [[0, 2, 1]]}, errors.InvalidArgumentError),
        ({"input_ids": [[1, 2, V]]}, errors.OutOfRangeError),
        ({"input_ids": [[1, -2, 3]]}, errors.OutOfRangeError),
        ({"input_ids": [1, 2, 3]}, errors.InvalidArgumentError),
        ({"input_ids": [[1, 2, 3], [4]]}, errors.InvalidArgumentError),
        ({"input_ids": [["a", "b"]]}, errors.InvalidTypeError),
        ({"eos_token_id": "x"}, errors.InvalidTypeError),
        ({"seed": -1}, errors.InvalidArgumentError),
        ({"input_ids": [[1.0, 2.0, 3.0]]}, errors.InvalidTypeError),
        ({"input_ids": np.zeros((1, 0), dtype=np.int64)}, errors.InvalidArgumentError),
    ],
)
def test_bad_input_raises_stepfuse_errors(kwargs, cls):
    mdl = model("gpt2")
    args = {"input_ids": [[1, 2, 3]], "max_new_tokens": 2, **kwargs}
    ids = args.pop("input_ids")
    with pytest.raises(cls):
        superposed_generate(mdl, ids, **args)


def test_bad_model_type():
    with pytest.raises(errors.InvalidTypeError):
        superposed_generate(object(), [[1, 2]], max_new_tokens=2)


def test_padding_token_values_are_ignored():
    mdl = model("gpt2")
    a = superposed_generate(mdl, [[-5, 3, 4]], attention_mask=[[0, 1, 1]], k=2, max_new_tokens=3)
    b = superposed_generate(mdl, [[3, 4]], k=2, max_new_tokens=3)
    assert a.drafts == b.drafts


def test_training_mode_model_is_decoded_in_eval_mode_and_restored():
    mdl = _gpt2(seed=1)
    ref = superposed_generate(mdl, [[1, 2, 3]], k=2, max_new_tokens=4)
    mdl.train()
    got = superposed_generate(mdl, [[1, 2, 3]], k=2, max_new_tokens=4)
    assert mdl.training
    assert got == ref


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    cpu = _llama(torch.float64, seed=2)
    gpu = _llama(torch.float64, seed=2).cuda()
    ids = torch.tensor([[0, 0, 5, 6, 7], [8, 9, 10, 11, 12]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    kw = dict(k=3, max_new_tokens=6, ngram=_ngram(3), eos_token_id=[2], attention_mask=mask, temperature=0.5)
    a = superposed_generate(cpu, ids, **kw)
    b = superposed_generate(gpu, ids.cuda(), **kw)
    assert a.drafts == b.drafts
    np.testing.assert_allclose(a.perplexities, b.perplexities, rtol=1e-6)


def test_one_forward_per_step_with_one_sequence_per_prompt():
    mdl = _gpt2(seed=3)
    calls = []

    def hook(module, args, kwargs):
        x = kwargs.get("input_ids")
        e = kwargs.get("inputs_embeds")
        calls.append(("ids", tuple(x.shape)) if x is not None else ("embeds", tuple(e.shape)))

    rows = []
    h1 = mdl.register_forward_pre_hook(hook, with_kwargs=True)
    h2 = mdl.get_input_embeddings().register_forward_hook(lambda mod, a, out: rows.append(tuple(a[0].shape)))
    try:
        B, L, T, k = 3, 5, 6, 3
        superposed_generate(mdl, torch.randint(0, V, (B, L)), k=k, max_new_tokens=T, ngram=_ngram(3))
    finally:
        h1.remove()
        h2.remove()
    # prefill, T-1 superposed steps of ONE sequence per prompt, one batched perplexity forward
    assert calls == [("ids", (B, L))] + [("embeds", (B, 1, 32))] * (T - 1) + [("ids", (B * k, T - 1))]
    # the superposed input gathers k embedding rows per prompt (no vocabulary-sized product)
    assert rows.count((B, k)) == T - 1


_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.lists(st.integers(-2, 60), max_size=3),
)


@settings(max_examples=60)
@given(
    k=_junk,
    max_new_tokens=_junk,
    top_m=_junk,
    alpha=_junk,
    temperature=_junk,
    eos=_junk,
    ids=st.one_of(_junk, st.lists(st.lists(st.integers(-2, 60), max_size=4), max_size=3)),
)
def test_malformed_arguments_raise_only_stepfuse_errors(
    k, max_new_tokens, top_m, alpha, temperature, eos, ids
):
    kw = dict(k=k, max_new_tokens=max_new_tokens, top_m=top_m, alpha=alpha, temperature=temperature)
    try:
        res = superposed_generate(model("gpt2"), ids, eos_token_id=eos, **kw)
    except errors.StepfuseError:
        return
    assert isinstance(res, SuperposedResult)


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_bfloat16_model_runs(name):
    mdl = model(name, torch.bfloat16)
    res = superposed_generate(
        mdl, [[0, 4, 5, 6], [7, 8, 9, 10]], attention_mask=[[0, 1, 1, 1], [1] * 4], k=3, max_new_tokens=4
    )
    for b in range(2):
        assert len(set(map(tuple, res.drafts[b]))) == 3
        assert all(math.isfinite(p) for p in res.perplexities[b])
