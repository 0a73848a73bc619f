"""FusionDecoder: weight 0 is the recognizer's own beam search; an LM corrects an ambiguous recognizer; tiny
random HF models on both sides with different real tokenizers run end to end; the HF LM's KV cache is exact."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepfuse.errors import InvalidArgumentError
from stepfuse.fusion.decoder import FusionDecoder
from stepfuse.fusion.lms import CallableLM
from stepfuse.fusion.recognizers import CallableRecognizer
from stepfuse.vocab import ByteVocab

# ---- a brute-force beam search oracle (HF generate semantics), independent of the decoder -------------------


def oracle_beam(fn, prompt, eos, beams, max_len):
    """HF-style beam search: 2B kept per step, finished among top B, stop when the pool is full and the best
    running score / length cannot beat the worst finished. Returns (tokens, normalized score) of the best."""
    running = [([], 0.0)]
    done = []
    for t in range(1, max_len + 1):
        lp = np.asarray(fn(None, [prompt + s for s, _ in running]), dtype=np.float64)
        cands = []
        for bi, (_s, sc) in enumerate(running):
            for v in range(lp.shape[1]):
                if np.isfinite(lp[bi, v]):
                    cands.append((sc + lp[bi, v], bi, v))
        cands.sort(key=lambda c: (-c[0], c[1], c[2]))
        cands = cands[: 2 * beams]
        nxt = []
        for rank, (sc, bi, v) in enumerate(cands):
            seq = [*running[bi][0], v]
            if v == eos or t >= max_len:
                if rank < beams:
                    done.append((sc / t, seq))
            elif len(nxt) < beams:
                nxt.append((seq, sc))
        done.sort(key=lambda d: -d[0])
        done = done[:beams]
        if not nxt:
            break
        running = nxt
        if len(done) >= beams and not running[0][1] / t > done[-1][0]:
            break
    return done[0][1], done[0][0]


def random_model(vocab_size, seed, eos, peaky=2.0):
    """A deterministic random 'recognizer': log-probs depend on the whole prefix (hash-seeded)."""

    def fn(_inputs, prefixes):
        out = []
        for p in prefixes:
            rng = np.random.default_rng([seed, len(p), *[int(x) for x in p]])
            z = rng.normal(size=vocab_size) * peaky
            z[eos] += 0.3 * len(p)  # EOS gets likelier with length
            out.append(z - np.log(np.exp(z - z.max()).sum()) - z.max())
        return np.asarray(out, dtype=np.float32)

    return fn


@settings(max_examples=25)
@given(seed=st.integers(0, 10_000), beams=st.integers(1, 4), max_len=st.integers(1, 7))
def test_weight_zero_equals_oracle_beam_search(seed, beams, max_len):
    v, eos = 7, 0
    fn = random_model(v, seed, eos)
    tb = [b""] + [bytes([97 + i]) for i in range(v - 1)]
    rec = CallableRecognizer(fn, tb, eos_id=eos, prompt_ids=[v])
    dec = FusionDecoder(rec, None, weight=0.0, beam_size=beams, max_len=max_len)
    r = dec.decode(None)
    want, score = oracle_beam(fn, [v], eos, beams, max_len)
    assert r.tokens == want
    assert math.isclose(r.score, score, rel_tol=1e-5, abs_tol=1e-5)
    # an LM with weight 0 changes nothing
    lmv = ByteVocab([bytes([97 + i]) for i in range(v - 1)])
    lm = CallableLM(lambda ctxs: np.full((len(ctxs), v - 1), -np.log(v - 1), dtype=np.float32), lmv)
    r2 = FusionDecoder(rec, lm, weight=0.0, beam_size=beams, max_len=max_len).decode(None)
    assert r2.tokens == r.tokens and lm.calls == 0


# ---- an ambiguous recognizer corrected by an LM that knows the text ----------------------------------------

WORDS = [b" the", b" sun", b" son", b" rose", b" rows", b" of", b" god", b" good"]


def ambiguous_recognizer(truth: list[int], confusions: dict[int, int], eos: int):
    """Proposes the true word, but prefers its homophone (confusions[w]) slightly."""

    def fn(_inputs, prefixes):
        out = []
        for p in prefixes:
            t = len(p) - 1
            z = np.full(len(WORDS) + 1, -8.0)
            if t < len(truth):
                w = truth[t]
                z[w] = -0.9
                if w in confusions:
                    z[confusions[w]] = -0.6
            else:
                z[eos] = -0.01
            out.append(z - np.log(np.exp(z).sum()))
        return np.asarray(out, dtype=np.float32)

    return fn


def char_lm_knowing(text: bytes):
    """A byte-level LM (256 ids) that strongly predicts the next byte of ``text`` after any prefix of it."""
    vocab = ByteVocab([bytes([i]) for i in range(256)])

    def fn(ctxs):
        out = np.full((len(ctxs), 256), -12.0, dtype=np.float32)
        for r, c in enumerate(ctxs):
            seen = bytes(c[1:])  # drop the BOS placeholder
            if text.startswith(seen) and len(seen) < len(text):
                out[r, text[len(seen)]] = 0.0
            else:
                out[r, :] = -np.log(256.0)
        return out - np.log(np.exp(out.astype(np.float64)).sum(axis=1, keepdims=True)).astype(np.float32)

    return CallableLM(fn, vocab, prefix_ids=[0])


def test_lm_corrects_ambiguous_recognizer():
    eos = len(WORDS)
    truth = [0, 1, 3, 0, 2, 5, 6]  # " the sun rose the son of god"
    conf = {1: 2, 2: 1, 3: 4, 6: 7}
    fn = ambiguous_recognizer(truth, conf, eos)
    rec = CallableRecognizer(fn, [*WORDS, b""], eos_id=eos, prompt_ids=[99])
    text = b"".join(WORDS[i] for i in truth)
    alone = FusionDecoder(rec, None, weight=0.0, beam_size=3).decode(None)
    assert alone.text != text.decode()
    lm = char_lm_knowing(text)
    fused = FusionDecoder(rec, lm, weight=0.3, beam_size=3).decode(None)
    assert fused.text == text.decode()
    assert fused.n_best[0].text == fused.text and len(fused.n_best) >= 1
    # one LM call per step, never more
    assert 0 < fused.lm_calls <= fused.steps


def test_lm_prompt_and_byte_normalization_run():
    eos = len(WORDS)
    truth = [0, 1, 3]
    fn = ambiguous_recognizer(truth, {1: 2}, eos)
    rec = CallableRecognizer(fn, [*WORDS, b""], eos_id=eos, prompt_ids=[99])
    text = b" in the beginning" + b"".join(WORDS[i] for i in truth)
    lm = char_lm_knowing(text)
    r = FusionDecoder(
        rec, lm, weight=0.3, beam_size=2, normalize="byte", lm_prompt=" in the beginning"
    ).decode(None)
    assert r.text == " the sun rose"
    batch = FusionDecoder(rec, lm, weight=0.3, beam_size=2).decode_batch([None, None], lm_prompts=["", ""])
    assert len(batch) == 2 and batch[0].text == batch[1].text


@pytest.mark.parametrize(
    "kw",
    [
        {"weight": -0.1},
        {"weight": 1.5},
        {"beam_size": 0},
        {"normalize": "word"},
        {"lm_temperature": 0.0},
        {"max_len": 0},
        {"n_candidates": 0},
    ],
)
def test_bad_arguments(kw):
    rec = CallableRecognizer(lambda _x, p: np.zeros((len(p), 2)), [b"", b"a"], eos_id=0, prompt_ids=[1])
    lm = char_lm_knowing(b"a")
    args = {"weight": 0.1, **kw}
    with pytest.raises(InvalidArgumentError):
        FusionDecoder(rec, lm, **args)
    with pytest.raises(InvalidArgumentError):
        FusionDecoder(rec, None, weight=0.5)


# ---- tiny random HF models on both sides, different real tokenizers ---------------------------------------


@pytest.fixture(scope="module")
def torch_mods():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest on a busy machine
    yield torch, transformers
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def lm_tokenizer():
    from stepfuse.fusion.demo_lm import train_bpe

    text = [
        "In the beginning God created the heaven and the earth.",
        "And the earth was without form, and void.",
    ]
    return train_bpe(text * 3, vocab_size=300)


@pytest.fixture(scope="module")
def tiny_gpt2(torch_mods, lm_tokenizer):
    _torch, transformers = torch_mods
    cfg = transformers.GPT2Config(
        vocab_size=lm_tokenizer.get_vocab_size() + 1,
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=lm_tokenizer.get_vocab_size(),
        eos_token_id=lm_tokenizer.get_vocab_size(),
    )
    return transformers.GPT2LMHeadModel(cfg).eval()


def test_hf_lm_prefix_cache_is_exact(torch_mods, tiny_gpt2, lm_tokenizer):
    torch, _ = torch_mods
    from stepfuse.fusion.lms import HFCausalLM

    bos = tiny_gpt2.config.bos_token_id
    cached = HFCausalLM(tiny_gpt2, lm_tokenizer, prefix_ids=[bos])
    plain = HFCausalLM(tiny_gpt2, lm_tokenizer, prefix_ids=[bos], use_cache=False)
    rng = np.random.default_rng(0)
    ctxs = [[bos, *rng.integers(0, 300, size=3).tolist()] for _ in range(3)]
    for _step in range(4):
        # grow some contexts by 1-2 tokens, branch others, as beams do
        new = []
        for c in ctxs:
            new.append(c + rng.integers(0, 300, size=int(rng.integers(1, 3))).tolist())
            new.append([*c[:-1], int(rng.integers(0, 300))])
        ctxs = new[:5]
        a = cached.next_logprobs(ctxs)
        b = plain.next_logprobs(ctxs)
        assert a.shape == (len(ctxs), tiny_gpt2.config.vocab_size)
        assert torch.allclose(a, b, atol=2e-5), (a - b).abs().max()
    assert cached.tokens_computed < plain.tokens_computed


def test_tiny_whisper_with_tiny_gpt2_end_to_end(torch_mods, tiny_gpt2, lm_tokenizer):
    _torch, transformers = torch_mods
    from stepfuse.fusion.lms import HFCausalLM
    from stepfuse.fusion.recognizers import whisper_recognizer

    cfg = transformers.WhisperConfig(
        vocab_size=51864,
        num_mel_bins=80,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=1500,
        max_target_positions=64,
        decoder_start_token_id=50257,
        eos_token_id=50256,
        pad_token_id=50256,
        bos_token_id=50256,
    )
    model = transformers.WhisperForConditionalGeneration(cfg).eval()
    gc = model.generation_config
    gc.decoder_start_token_id, gc.eos_token_id, gc.no_timestamps_token_id = 50257, 50256, 50362
    gc.is_multilingual = False
    rec = whisper_recognizer(model)  # the bundled Whisper tokenizer (GPT-2 BPE), different from the LM's
    lm = HFCausalLM(tiny_gpt2, lm_tokenizer, prefix_ids=[tiny_gpt2.config.bos_token_id])
    audio = np.random.default_rng(1).normal(size=16000).astype(np.float32) * 0.1
    base = FusionDecoder(rec, None, weight=0.0, beam_size=3, max_len=8).decode(audio)
    fused = FusionDecoder(rec, lm, weight=0.5, beam_size=3, max_len=8).decode(audio)
    assert 1 <= len(base.tokens) <= 8 and 1 <= len(fused.tokens) <= 8
    assert 0 < fused.lm_calls <= fused.steps
    assert math.isfinite(fused.score)
    # weight 0 with the LM attached is exactly the recognizer's own search
    same = FusionDecoder(rec, lm, weight=0.0, beam_size=3, max_len=8).decode(audio)
    assert same.tokens == base.tokens


def test_tiny_trocr_beam_equals_hf_generate(torch_mods, tiny_gpt2, lm_tokenizer):
    torch, transformers = torch_mods
    from tokenizers import Tokenizer

    from stepfuse.fusion.ct2_whisper import bundled_tiny_en_dir
    from stepfuse.fusion.lms import HFCausalLM
    from stepfuse.fusion.recognizers import trocr_recognizer

    tok = Tokenizer.from_file(str(bundled_tiny_en_dir() / "tokenizer.json"))
    enc = transformers.ViTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=16,
    )
    dec = transformers.TrOCRConfig(
        vocab_size=tok.get_vocab_size(),
        d_model=32,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        decoder_start_token_id=50256,
        bos_token_id=50256,
        eos_token_id=50256,
        pad_token_id=50256,
    )
    cfg = transformers.VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    cfg.decoder_start_token_id, cfg.eos_token_id, cfg.pad_token_id = 50256, 50256, 50256
    torch.manual_seed(3)
    model = transformers.VisionEncoderDecoderModel(cfg).eval()
    rec = trocr_recognizer(model, tok)
    pix = torch.randn(1, 3, 32, 32)
    ours = FusionDecoder(rec, None, weight=0.0, beam_size=3, max_len=6).decode(pix.numpy())
    with torch.no_grad():
        ref = model.generate(
            pixel_values=pix,
            num_beams=3,
            max_new_tokens=6,
            do_sample=False,
            early_stopping=False,
            length_penalty=1.0,
            num_return_sequences=1,
        )
    want = ref[0].tolist()[1:]
    assert [t for t in ours.tokens] == want[: len(ours.tokens)] and len(ours.tokens) == len(want)
    lm = HFCausalLM(tiny_gpt2, lm_tokenizer, prefix_ids=[tiny_gpt2.config.bos_token_id])
    fused = FusionDecoder(rec, lm, weight=0.3, beam_size=3, max_len=6).decode(pix.numpy())
    assert len(fused.tokens) >= 1


@settings(max_examples=20)
@given(seed=st.integers(0, 1000), n=st.integers(1, 3))
def test_no_repeat_ngram_never_repeats(seed, n):
    v, eos = 3, 0
    fn = random_model(v, seed, eos, peaky=0.1)

    def no_eos(x, p):
        out = fn(x, p)
        out[:, eos] = -30.0
        return out

    rec = CallableRecognizer(no_eos, [b"", b"a", b"b"], eos_id=eos, prompt_ids=[v])
    r = FusionDecoder(rec, None, weight=0.0, beam_size=2, max_len=8, no_repeat_ngram=n).decode(None)
    grams = [
        tuple(r.tokens[i : i + n]) for i in range(len(r.tokens) - n + 1) if eos not in r.tokens[i : i + n]
    ]
    assert len(grams) == len(set(grams))


@pytest.mark.parametrize("temp", [1.0, 0.7])
def test_kernel_scorer_equals_vocab_scorer(monkeypatch, temp):
    pytest.importorskip("torch")
    monkeypatch.setenv("STEPFUSE_KERNELS", "reference")
    eos = len(WORDS)
    truth = [0, 1, 3, 0, 2, 5, 6]
    fn = ambiguous_recognizer(truth, {1: 2, 2: 1, 3: 4, 6: 7}, eos)
    rec = CallableRecognizer(fn, [*WORDS, b""], eos_id=eos, prompt_ids=[99])
    # a word-piece LM over a vocabulary whose tokens are prefixes of one another, with an end-of-text column
    pieces = [
        b" ",
        b" t",
        b" th",
        b" the",
        b" s",
        b" su",
        b" sun",
        b" so",
        b" son",
        b" r",
        b" ro",
        b" rose",
        b" rows",
        b"o",
        b"f",
        b" of",
        b" g",
        b" go",
        b" god",
        b" good",
        b"d",
        b"n",
        b"e",
        b"s",
        b"w",
    ]
    vocab = ByteVocab(pieces)
    rng = np.random.default_rng(0)

    def fn_lm(ctxs):
        out = []
        for c in ctxs:
            g = np.random.default_rng([7, *[int(t) for t in c[-3:]]])
            z = g.normal(size=len(pieces) + 1) * 2
            out.append(z - np.log(np.exp(z).sum()))
        return np.asarray(out, dtype=np.float32)

    lm = CallableLM(fn_lm, vocab, prefix_ids=[0])
    lm.eos_id = len(pieces)  # type: ignore[attr-defined]
    a = FusionDecoder(rec, lm, weight=0.4, beam_size=3, scorer="vocab", lm_temperature=temp).decode(None)
    b = FusionDecoder(rec, lm, weight=0.4, beam_size=3, scorer="kernel", lm_temperature=temp).decode(None)
    assert a.tokens == b.tokens
    assert [h.tokens for h in a.n_best] == [h.tokens for h in b.n_best]
    for x, y in zip(a.n_best, b.n_best):
        assert math.isclose(x.score, y.score, rel_tol=1e-4, abs_tol=1e-4)
        assert math.isclose(x.lm_logprob, y.lm_logprob, rel_tol=1e-4, abs_tol=1e-4)
    del rng


def test_long_form_carries_previous_text_into_lm_prompt():
    eos = len(WORDS)

    def fn(inputs, prefixes):
        word = int(inputs[0])  # each 1-sample "segment" says which word it contains
        out = []
        for p in prefixes:
            z = np.full(len(WORDS) + 1, -9.0)
            z[word if len(p) == 1 else eos] = -0.01
            out.append(z)
        return np.asarray(out, dtype=np.float32)

    rec = CallableRecognizer(fn, [*WORDS, b""], eos_id=eos, prompt_ids=[99])
    seen: list[bytes] = []
    vocab = ByteVocab([bytes([i]) for i in range(256)])

    def lm_fn(ctxs):
        seen.extend(bytes(c[1:]) for c in ctxs)
        return np.full((len(ctxs), 256), -np.log(256.0), dtype=np.float32)

    lm = CallableLM(lm_fn, vocab, prefix_ids=[0])
    audio = np.asarray([0, 1, 3], dtype=np.float32)  # three segments of one sample each
    r = FusionDecoder(rec, lm, weight=0.2, beam_size=2).decode_long(audio, sampling_rate=1, segment_s=1.0)
    assert r.text == " the sun rose"
    assert any(s.startswith(b" the sun") for s in seen)  # third segment's LM context holds the earlier text


def test_ngram_adapter_rows_and_end_of_text_column(lm_tokenizer):
    from stepfuse.fusion.lms import NGramFusionLM
    from stepfuse.ngram import NGramLM

    sents = ["In the beginning God created the heaven and the earth.", "And the earth was without form."]
    ids = [np.asarray(lm_tokenizer.encode(" " + s).ids, dtype=np.int64) for s in sents]
    ng = NGramLM.train(ids, 3, vocab_size=lm_tokenizer.get_vocab_size())
    lm = NGramFusionLM(ng, lm_tokenizer)
    assert lm.prefix_ids == [ng.bos_id] and lm.eos_id == ng.vocab_size
    ctxs = [[ng.bos_id], [ng.bos_id, *ids[0][:4].tolist()]]
    out = lm.next_logprobs(ctxs)
    assert out.shape == (2, ng.vocab_size + 1)
    for r, c in enumerate(ctxs):
        for t in (int(ids[0][0]), int(ids[1][2])):
            assert math.isclose(out[r, t], ng.logprob(c[-2:], t), rel_tol=1e-5, abs_tol=1e-5)
        assert math.isclose(out[r, -1], ng.logprob(c[-2:], ng.eos_id), rel_tol=1e-5, abs_tol=1e-5)
        # user ids + </s> (+ <unk>, not a column) make a distribution
        assert np.exp(out[r].astype(np.float64)).sum() <= 1.0 + 1e-5


def test_whisper_prompt_tokens(torch_mods):
    _torch, transformers = torch_mods
    from stepfuse.fusion.recognizers import whisper_recognizer

    cfg = transformers.WhisperConfig(
        vocab_size=51864,
        num_mel_bins=80,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=1500,
        max_target_positions=64,
        decoder_start_token_id=50257,
        eos_token_id=50256,
    )
    model = transformers.WhisperForConditionalGeneration(cfg).eval()
    gc = model.generation_config
    gc.decoder_start_token_id, gc.eos_token_id, gc.no_timestamps_token_id = 50257, 50256, 50362
    gc.prev_sot_token_id, gc.is_multilingual = 50360, False
    rec = whisper_recognizer(model, prompt="Genesis Exodus")
    assert rec.prompt_ids[0] == 50360 and rec.prompt_ids[-2:] == [50257, 50362]
    assert rec.decode_text(rec.prompt_ids[1:-2]) == " Genesis Exodus"
    tb = rec.token_bytes()
    assert tb[50256] == b"" and tb[50362] == b"" and tb[262] == b" the"
