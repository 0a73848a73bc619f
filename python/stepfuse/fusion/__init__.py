"""stepfuse.fusion: Generative Fusion Decoding (imports torch/transformers lazily).

Fuse a recognizer (Whisper ASR, TrOCR OCR, or anything implementing the small
:class:`~stepfuse.fusion.recognizers.Recognizer` protocol) with any LM at the byte level, so the two tokenizers may
differ ("Let's Fuse Step by Step", Hsu et al. 2024). See :class:`FusionDecoder`.
"""

from __future__ import annotations

from stepfuse.fusion.ct2_whisper import load_ct2_whisper, load_ct2_whisper_openai, read_ct2_model
from stepfuse.fusion.decoder import FusionDecoder, FusionResult, Hypothesis
from stepfuse.fusion.lms import CallableLM, FusionLM, HFCausalLM, NGramFusionLM
from stepfuse.fusion.metrics import cer, normalize_text, wer
from stepfuse.fusion.recognizers import (
    CallableRecognizer,
    HFSeq2SeqRecognizer,
    Recognizer,
    RecognizerSession,
    trocr_recognizer,
    whisper_recognizer,
)

__all__ = [
    "CallableLM",
    "CallableRecognizer",
    "FusionDecoder",
    "FusionLM",
    "FusionResult",
    "HFCausalLM",
    "HFSeq2SeqRecognizer",
    "Hypothesis",
    "NGramFusionLM",
    "Recognizer",
    "RecognizerSession",
    "cer",
    "load_ct2_whisper",
    "load_ct2_whisper_openai",
    "normalize_text",
    "read_ct2_model",
    "trocr_recognizer",
    "wer",
    "whisper_recognizer",
]
