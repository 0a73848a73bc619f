"""FusionDecoder per-step latency vs the recognizer's own beam search (same models, same beams).

Both systems decode the same clip for exactly ``STEPS`` steps (EOS suppressed, ``max_len`` fixed), so the
per-call ratio is the per-step ratio. Recognizer: Whisper tiny.en (bundled CTranslate2 weights), 1 torch thread.
1. n-gram LM (4-gram KN over a 4k BPE, trained on the demo text): target <= 1.3x the recognizer-only step.
2. a small random GPT-2 (4 layers, d=256) through HFCausalLM: the time outside both models' forwards, as a
   share of the step (target <= 15%).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness import Case, bench

STEPS = 16
BEAMS = 5


class _NoEos:
    """Wrap a recognizer so EOS is never proposed (fixed-length decoding for timing)."""

    def __init__(self, rec: Any) -> None:
        self.rec = rec
        self.eos_id = rec.eos_id
        self.prompt_ids = rec.prompt_ids

    def token_bytes(self) -> list[bytes]:
        return self.rec.token_bytes()

    def decode_text(self, ids: Any) -> str:
        return self.rec.decode_text(ids)

    def start(self, inputs: Any) -> Any:
        inner = self.rec.start(inputs)
        eos = self.eos_id

        class S:
            def first(self) -> np.ndarray:
                x = inner.first()
                x[:, eos] = -np.inf
                return x

            def step(self, p: np.ndarray, t: np.ndarray) -> np.ndarray:
                x = inner.step(p, t)
                x[:, eos] = -np.inf
                return x

        return S()


_CACHE: dict[str, Any] = {}


def _setup() -> dict[str, Any]:
    if _CACHE:
        return _CACHE
    import torch

    torch.set_num_threads(1)
    from stepfuse.fusion.ct2_whisper import load_ct2_whisper
    from stepfuse.fusion.data import load_clips, load_train_text
    from stepfuse.fusion.demo_lm import train_ngram_lm
    from stepfuse.fusion.recognizers import whisper_recognizer

    rec = whisper_recognizer(load_ct2_whisper())
    text = load_train_text()
    tok, ng = train_ngram_lm(text, order=4)
    clip = load_clips(split="dev")[1]
    feats = rec.encode(clip.audio)["input_features"]
    _CACHE.update(rec=rec, norec=_NoEos(rec), tok=tok, ng=ng, feats=feats)
    return _CACHE


@bench("fusion/step-ngram-lm", target="<= 1.3x recognizer-only beam search per step")
def _ngram() -> Case:
    from stepfuse.fusion.decoder import FusionDecoder
    from stepfuse.fusion.lms import NGramFusionLM

    s = _setup()
    lm = NGramFusionLM(s["ng"], s["tok"])
    gfd = FusionDecoder(s["norec"], lm, weight=0.2, beam_size=BEAMS, max_len=STEPS)
    beam = FusionDecoder(s["norec"], None, weight=0.0, beam_size=BEAMS, max_len=STEPS)
    feats = s["feats"]
    r = gfd.decode(feats)
    # per-step times without the encoder (median over 3 decodes each)
    g = sorted(sum(gfd.decode(feats).step_s) for _ in range(3))[1] / STEPS
    b = sorted(sum(beam.decode(feats).step_s) for _ in range(3))[1] / STEPS
    return Case(
        ours=lambda: gfd.decode(feats),
        baselines={"whisper beam search alone": lambda: beam.decode(feats)},
        info={
            "steps": r.steps,
            "lm_calls_per_step": r.lm_calls / max(r.steps, 1),
            "gfd_step_ms": round(1000 * g, 2),
            "beam_step_ms": round(1000 * b, 2),
            "step_ratio_excl_encoder": round(g / b, 3),
        },
        per=STEPS,
        repeats=3,
        baseline_repeats=3,
    )


@bench("fusion/step-neural-lm", target="time outside the two forwards <= 15% of the step")
def _neural() -> Case:
    import time

    import torch
    import transformers

    from stepfuse.fusion.decoder import FusionDecoder
    from stepfuse.fusion.lms import HFCausalLM

    s = _setup()
    tok = s["tok"]
    v = tok.get_vocab_size()
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(
        vocab_size=v + 1, n_positions=256, n_embd=256, n_layer=4, n_head=4, bos_token_id=v, eos_token_id=v
    )
    model = transformers.GPT2LMHeadModel(cfg).eval()
    lm = HFCausalLM(model, tok, prefix_ids=[v])
    rec = s["norec"]
    gfd = FusionDecoder(rec, lm, weight=0.2, beam_size=BEAMS, max_len=STEPS)
    beam = FusionDecoder(rec, None, weight=0.0, beam_size=BEAMS, max_len=STEPS)
    feats = s["feats"]
    gfd.decode(feats)
    # split the step time into recognizer forward, LM forward and the rest; the share outside the
    # forwards is a median over several decodes (one decode on a shared machine is too noisy)
    inner = s["rec"]
    shares, steps_ms, rec_ms, lm_ms, totals = [], [], [], [], []
    for _ in range(5):
        inner.forward_s = 0.0
        lm.forward_s = 0.0
        lm.reset()
        t0 = time.perf_counter()
        r = gfd.decode(feats)
        totals.append(time.perf_counter() - t0)
        steps_t = float(sum(r.step_s))
        rec_f, lm_f = inner.forward_s, lm.forward_s
        shares.append(100 * max(steps_t - rec_f - lm_f, 0.0) / max(steps_t, 1e-9))
        steps_ms.append(1000 * steps_t / STEPS)
        rec_ms.append(1000 * rec_f / STEPS)
        lm_ms.append(1000 * lm_f / STEPS)
    return Case(
        ours=lambda: gfd.decode(feats),
        baselines={"whisper beam search alone": lambda: beam.decode(feats)},
        info={
            "step_ms": round(float(np.median(steps_ms)), 2),
            "rec_forward_ms": round(float(np.median(rec_ms)), 2),
            "lm_forward_ms": round(float(np.median(lm_ms)), 2),
            "outside_forwards_pct_median_of_5": round(float(np.median(shares)), 1),
            "outside_forwards_pct_range": f"{min(shares):.1f}-{max(shares):.1f}",
            "decode_s_incl_encoder": round(float(np.median(totals)), 3),
            "lm_calls_per_step": r.lm_calls / max(r.steps, 1),
        },
        per=STEPS,
        repeats=3,
        baseline_repeats=3,
    )
