"""Fuse Whisper tiny.en with an n-gram LM that has its own tokenizer (Generative Fusion Decoding), offline.

Run from a source checkout: ``python examples/fusion_whisper_ngram.py``.
"""

from __future__ import annotations

import torch

from stepfuse.fusion import FusionDecoder, NGramFusionLM, load_ct2_whisper, whisper_recognizer
from stepfuse.fusion.data import load_clips, load_train_text
from stepfuse.fusion.demo_lm import train_ngram_lm

torch.set_num_threads(1)
recognizer = whisper_recognizer(load_ct2_whisper())  # bundled CTranslate2 tiny.en, as an HF model
tokenizer, ngram = train_ngram_lm(load_train_text(), order=4)  # 4k byte-level BPE + 4-gram KN
lm = NGramFusionLM(ngram, tokenizer)

clip = load_clips(split="dev")[3]
for weight in (0.0, 0.1):
    result = FusionDecoder(recognizer, lm, weight=weight, beam_size=5, no_repeat_ngram=4).decode(clip.audio)
    print(f"w={weight}: {result.text.strip()}")
print(f"ref  : {clip.text}")
