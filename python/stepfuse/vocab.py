"""Byte-level token mapping (GFD §3, "Let's Fuse Step by Step"): token id ↔ bytes for every tokenizer
family, prefix-range queries over a byte-sorted index, and byte-prefix probabilities.

:class:`ByteVocab` sorts every token by its bytes, so "the tokens whose bytes start with ``p``" is one
contiguous range of :attr:`ByteVocab.sorted_ids` — a kernel can sum a model's probabilities over it.
:func:`byte_prefix_logprob` turns a token-level model into the probability that its output bytes start
with a given byte string, exactly (sum over cover encodings, Phan et al. 2024) or with GFD's
canonical-boundary approximation; :func:`gfd_prepare` is the incremental, batched form of the latter
for beam search.

Adapters (:meth:`ByteVocab.from_tokenizer`) import their libraries lazily; ``import stepfuse`` needs
numpy only.
"""

from __future__ import annotations

import math
import operator
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stepfuse import _core
from stepfuse.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    NonFiniteError,
    OutOfRangeError,
)

__all__ = [
    "ByteVocab",
    "GfdScores",
    "GfdStep",
    "byte_prefix_logprob",
    "gfd_prepare",
]

#: A model, to every algorithm here: a batch of token-id sequences → ``[B, V]`` natural-log
#: log-probabilities of the next token (numpy array or torch tensor), ``V >= len(vocab)``.
NextLogprobs = Callable[[list[list[int]]], Any]

#: Canonical tokenizer of a byte window: bytes → token ids spelling a prefix of those bytes.
EncodeBytes = Callable[[bytes], Sequence[int]]


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _index(i: object, arg: str) -> int:
    if isinstance(i, bool):
        raise InvalidTypeError(f"{arg}: must be an integer id, got bool")
    try:
        return operator.index(i)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidTypeError(f"{arg}: must be an integer id, got {type(i).__name__}") from None


class ByteVocab:
    """Token id ↔ exact bytes, with a byte-sorted index (GFD §3: token space → byte space).

    ``ByteVocab(tokens, special_ids=())``: ``tokens[i]`` is the bytes of id ``i`` or ``None`` (an id
    without bytes). ``None`` entries and ``special_ids`` keep their ids (and specials their bytes, for
    display) but never match a byte query. Duplicate byte strings are allowed.

    Index (Rust): all token bytes in one buffer in sorted order, the sorted permutation, its inverse,
    a 4-byte search key per token and a 65 794-entry table of two-byte buckets: 17 bytes per token +
    the token bytes + 263 KB (``index_bytes``; ≈ 3.9 MB at 150k tokens of 7 bytes). Build
    O(n log b + bytes) (counting pass by two-byte bucket, then per-bucket sorts). ``prefix_range`` is a binary search over the keys of one bucket and
    two gallops, O(log n + |prefix| log k) for k results; ``prefixes_of(data)`` narrows one range
    byte by byte over at most ``max_token_len`` bytes, O(L log n).

    Queries return numpy ``int32`` id arrays sorted ascending; batched forms return CSR
    ``(offsets: int64[n+1], ids: int32[total])``. Instances are immutable and thread-safe; they
    pickle (and ``to_bytes``/``from_bytes``) without the tokenizer's ``encode_bytes``.
    """

    __slots__ = ("_core", "_sorted", "encode_bytes", "family")

    def __init__(self, tokens: Sequence[bytes | None], special_ids: Sequence[int] | np.ndarray = ()) -> None:
        self._init(_core.ByteVocab(tokens, special_ids), None, "bytes")

    def _init(self, core: _core.ByteVocab, encode: EncodeBytes | None, family: str) -> None:
        self._core = core
        self._sorted: np.ndarray | None = None
        #: The tokenizer's own encoder on bytes (set by :meth:`from_tokenizer`), used for canonical
        #: boundaries by :func:`gfd_prepare`; ``None`` means greedy longest match.
        self.encode_bytes: EncodeBytes | None = encode
        #: Which adapter built the vocabulary ("bytes", "tiktoken", "hf-bytelevel", ...).
        self.family = family

    @classmethod
    def _wrap(cls, core: _core.ByteVocab, encode: EncodeBytes | None = None, family: str = "bytes") -> ByteVocab:
        self = cls.__new__(cls)
        self._init(core, encode, family)
        return self

    # ---- construction ---------------------------------------------------------------------

    @classmethod
    def from_tokenizer(cls, tok: Any) -> ByteVocab:
        """Build from a tokenizer, auto-detecting its family.

        Supported: ``tokenizers.Tokenizer`` and transformers fast tokenizers (ByteLevel BPE via the
        GPT-2 byte↔unicode table; SentencePiece-style Metaspace where every '▁' becomes a space byte
        and ``<0xNN>`` byte-fallback pieces become that byte; WordPiece, where ``##x`` is the bytes of
        ``x`` and other pieces their own bytes, so concatenated ``token_bytes`` equal the normalized
        text with whitespace removed), transformers tokenizers with a ``sp_model``,
        ``tiktoken.Encoding`` and ``sentencepiece.SentencePieceProcessor``. Special/control tokens
        are marked special; added non-special tokens map to their UTF-8 content. A path to a
        ``tokenizer.json`` or a SentencePiece ``.model`` file is loaded with that library first.
        """
        if isinstance(tok, (str, os.PathLike)):
            tok = _load_tokenizer_file(os.fspath(tok))
        mod = type(tok).__module__ or ""
        if mod.startswith("tiktoken") or (hasattr(tok, "_mergeable_ranks") and hasattr(tok, "n_vocab")):
            return _from_tiktoken(cls, tok)
        if mod.startswith("sentencepiece") or (hasattr(tok, "is_byte") and hasattr(tok, "id_to_piece")):
            return _from_sentencepiece(cls, tok)
        if mod.startswith("tokenizers") and hasattr(tok, "to_str"):
            return _from_hf_tokenizer(cls, tok, extra_special=())
        backend = getattr(tok, "backend_tokenizer", None)
        if backend is not None and hasattr(backend, "to_str"):
            return _from_hf_tokenizer(cls, backend, extra_special=tuple(getattr(tok, "all_special_ids", ())))
        sp = getattr(tok, "sp_model", None)
        if sp is not None:
            v = _from_sentencepiece(cls, sp)
            return v
        raise InvalidTypeError(
            f"tok: unsupported tokenizer type {type(tok).__module__}.{type(tok).__name__} (expected a "
            "tokenizers.Tokenizer, transformers tokenizer, tiktoken.Encoding or SentencePieceProcessor)"
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ByteVocab:
        """Inverse of :meth:`to_bytes` (raises ``FormatError`` on malformed input)."""
        return cls._wrap(_core.ByteVocab.from_bytes(data))

    def to_bytes(self) -> bytes:
        """Serialize (magic, count, kinds, lengths, bytes); ``encode_bytes`` is not included."""
        return self._core.to_bytes()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unpickle, (self.to_bytes(), self.family))

    # ---- properties -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._core)

    def __repr__(self) -> str:
        return (
            f"ByteVocab(len={len(self)}, matching={self.n_match}, max_token_len={self.max_token_len}, "
            f"family={self.family!r})"
        )

    @property
    def max_token_len(self) -> int:
        """Length in bytes of the longest matching token."""
        return self._core.max_token_len

    @property
    def n_match(self) -> int:
        """Number of matching tokens: they fill ``sorted_ids[:n_match]``; the rest are None/special ids."""
        return self._core.n_match

    @property
    def index_bytes(self) -> int:
        """Heap memory of the Rust index in bytes."""
        return self._core.index_bytes

    @property
    def sorted_ids(self) -> np.ndarray:
        """int32[len]: permutation of all ids; matching tokens by (bytes, id) first, then the rest by id.

        ``prefix_range`` ranges index into it. Read-only, cached.
        """
        if self._sorted is None:
            self._sorted = _readonly(self._core.sorted_ids)
        return self._sorted

    @property
    def ranks(self) -> np.ndarray:
        """int32[len]: id → position in ``sorted_ids``."""
        return _readonly(self._core.ranks)

    # ---- queries --------------------------------------------------------------------------

    def token_bytes(self, i: int) -> bytes | None:
        """Bytes of id ``i`` (``None`` for an id given as ``None``; specials return their bytes)."""
        return self._core.token_bytes(_index(i, "i"))

    @property
    def token_lengths(self) -> np.ndarray:
        """int32[len]: byte length of every id (0 for ids given as ``None``)."""
        return _readonly(self._core.token_lengths)

    def decode(self, ids: Sequence[int] | np.ndarray, skip_special: bool = True) -> bytes:
        """Concatenated bytes of ``ids`` (any integer array or sequence); ``None`` ids add nothing,
        special ids add their bytes unless ``skip_special``."""
        return self._core.decode(ids, skip_special)

    def is_special(self, i: int) -> bool:
        """Whether id ``i`` was given in ``special_ids`` (or marked special by an adapter)."""
        return self._core.is_special(_index(i, "i"))

    def ids_of(self, b: bytes) -> np.ndarray:
        """int32 ids (ascending) of the matching tokens whose bytes equal ``b``."""
        return self._core.ids_of(b)

    def prefix_range(self, prefix: bytes, strict: bool = False) -> tuple[int, int]:
        """``(lo, hi)``: ``sorted_ids[lo:hi]`` are the matching tokens starting with ``prefix``
        (``strict``: and longer than it). Tokens equal to ``prefix`` come first in the range."""
        return self._core.prefix_range(prefix, strict)

    def prefix_ranges(self, prefixes: Sequence[bytes], strict: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Batched :meth:`prefix_range`: ``(lo: int32[n], hi: int32[n])``."""
        return self._core.prefix_ranges(prefixes, strict)

    def extending(self, prefix: bytes, strict: bool = False) -> np.ndarray:
        """int32 ids (ascending) of the matching tokens whose bytes start with ``prefix``
        (``strict``: and are longer)."""
        return self._core.extending(prefix, strict)

    def extending_batch(
        self, prefixes: Sequence[bytes], strict: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Batched :meth:`extending` as CSR ``(offsets: int64[n+1], ids: int32[...])``."""
        return self._core.extending_batch(prefixes, strict)

    def prefixes_of(self, data: bytes) -> np.ndarray:
        """int32 ids (ascending) of the matching tokens whose bytes are a non-empty prefix of ``data``."""
        return self._core.prefixes_of(data)

    def prefixes_of_batch(self, data: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Batched :meth:`prefixes_of` as CSR ``(offsets: int64[n+1], ids: int32[...])``."""
        return self._core.prefixes_of_batch(data)

    def greedy_tokenize(self, data: bytes) -> tuple[np.ndarray, int]:
        """Greedy longest-match tokenization: ``(ids, n_bytes_covered)`` (stops where nothing matches)."""
        return self._core.greedy_tokenize(data)

    def range_logsumexp(
        self, logprobs: np.ndarray, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray
    ) -> np.ndarray:
        """float64 ``log Σ_{r∈[lo_i,hi_i)} exp(logprobs[rows_i, sorted_ids[r]])`` per query.

        ``logprobs``: float32 ``[R, V]`` with ``V >= len(self)``; ``rows``, ``lo``, ``hi``: int arrays of
        equal length. Empty ranges give ``-inf``; NaN/+inf among the entries read raise ``NonFiniteError``.
        """
        lp = np.ascontiguousarray(logprobs, dtype=np.float32)
        return self._core.range_logsumexp(lp, rows, lo, hi)


def _unpickle(data: bytes, family: str) -> ByteVocab:
    return ByteVocab._wrap(_core.ByteVocab.from_bytes(data), None, family)


# ---- tokenizer adapters ----------------------------------------------------------------------


def _load_tokenizer_file(path: str) -> Any:
    """Open ``tokenizer.json`` (HF tokenizers) or ``*.model`` (SentencePiece)."""
    from stepfuse.errors import StepfuseIOError, require

    if not os.path.exists(path):
        raise StepfuseIOError(f"{path}: no such tokenizer file")
    if path.endswith(".json"):
        tokenizers: Any = require("tokenizers", "hf")
        return tokenizers.Tokenizer.from_file(path)
    if path.endswith(".model"):
        spm: Any = require("sentencepiece", "hf")
        return spm.SentencePieceProcessor(model_file=path)
    raise InvalidArgumentError(f"tok: unknown tokenizer file type {path!r} (expected .json or .model)")


def _byte_unicode_table() -> dict[str, int]:
    """GPT-2 ByteLevel alphabet: printable Latin-1 bytes map to themselves, the other 68 bytes to
    U+0100.. in byte order. Returns char → byte."""
    keep = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {chr(b): b for b in keep}
    nxt = 0x100
    for b in range(256):
        if b not in table.values():
            table[chr(nxt)] = b
            nxt += 1
    return table


def _valid_utf8_prefix(data: bytes) -> str:
    """Longest prefix of ``data`` that decodes as UTF-8 (the rest is at most an incomplete character
    or invalid bytes, left to the caller's greedy fallback)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        return data[: e.start].decode("utf-8")


def _from_tiktoken(cls: type[ByteVocab], enc: Any) -> ByteVocab:
    n = int(enc.n_vocab)
    tokens: list[bytes | None] = [None] * n
    ranks = getattr(enc, "_mergeable_ranks", None)
    if isinstance(ranks, dict):
        for b, r in ranks.items():
            if 0 <= r < n:
                tokens[r] = b
    else:
        for i in range(n):
            try:
                tokens[i] = enc.decode_single_token_bytes(i)
            except KeyError:
                tokens[i] = None
    special = []
    for s in enc.special_tokens_set:
        i = enc.encode_single_token(s)
        if 0 <= i < n:
            tokens[i] = s.encode("utf-8")
            special.append(i)

    encode_raw = getattr(enc, "_encode_bytes", None)

    def encode(data: bytes) -> list[int]:
        if encode_raw is not None:
            return list(encode_raw(data))
        return list(enc.encode_ordinary(_valid_utf8_prefix(data)))

    return cls._wrap(_core.ByteVocab(tokens, special), encode, "tiktoken")


_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def _from_sentencepiece(cls: type[ByteVocab], sp: Any) -> ByteVocab:
    n = int(sp.get_piece_size())
    tokens: list[bytes | None] = []
    special = []
    for i in range(n):
        piece = sp.id_to_piece(i)
        if sp.is_unused(i):
            tokens.append(None)
        elif sp.is_control(i) or sp.is_unknown(i):
            tokens.append(piece.encode("utf-8"))
            special.append(i)
        elif sp.is_byte(i):
            m = _BYTE_PIECE.fullmatch(piece)
            tokens.append(bytes([int(m.group(1), 16)]) if m else piece.encode("utf-8"))
        else:
            tokens.append(piece.replace("▁", " ").encode("utf-8"))

    def encode(data: bytes) -> list[int]:
        return list(sp.encode(_valid_utf8_prefix(data)))

    return cls._wrap(_core.ByteVocab(tokens, special), encode, "sentencepiece")


def _flatten_types(node: Any) -> list[dict[str, Any]]:
    """All component dicts of a tokenizer.json section (Sequence components expanded)."""
    if not isinstance(node, dict):
        return []
    out = [node]
    for key in ("decoders", "pretokenizers", "normalizers"):
        for sub in node.get(key) or []:
            out.extend(_flatten_types(sub))
    return out


def _from_hf_tokenizer(cls: type[ByteVocab], tok: Any, extra_special: tuple[int, ...]) -> ByteVocab:
    import json

    spec = json.loads(tok.to_str())
    model = spec.get("model") or {}
    parts = [
        *_flatten_types(spec.get("decoder")),
        *_flatten_types(spec.get("pre_tokenizer")),
        *_flatten_types(spec.get("normalizer")),
    ]
    types = {p.get("type") for p in parts}
    vocab: dict[str, int] = tok.get_vocab(with_added_tokens=True)
    n = max(vocab.values(), default=-1) + 1
    if n == 0:
        raise InvalidArgumentError("tok: the tokenizer has an empty vocabulary")
    tokens: list[bytes | None] = [None] * n

    if "ByteLevel" in types:
        family = "hf-bytelevel"
        table = _byte_unicode_table()

        def convert(s: str) -> bytes:
            try:
                return bytes(table[c] for c in s)
            except KeyError:
                return s.encode("utf-8")

    elif model.get("type") == "WordPiece" or "WordPiece" in types:
        family = "hf-wordpiece"
        prefix = model.get("continuing_subword_prefix") or "##"

        def convert(s: str) -> bytes:
            return (s[len(prefix) :] if s.startswith(prefix) and len(s) > len(prefix) else s).encode("utf-8")

    else:
        family = "hf-metaspace"
        repl = "▁"
        for p in parts:
            if p.get("type") == "Metaspace" and p.get("replacement"):
                repl = p["replacement"]
        byte_fallback = bool(model.get("byte_fallback")) or "ByteFallback" in types
        suffix = model.get("end_of_word_suffix") or ""

        def convert(s: str) -> bytes:
            if byte_fallback:
                m = _BYTE_PIECE.fullmatch(s)
                if m:
                    return bytes([int(m.group(1), 16)])
            if suffix and s.endswith(suffix):
                s = s[: -len(suffix)] + " "
            return s.replace(repl, " ").encode("utf-8")

    for s, i in vocab.items():
        tokens[i] = convert(s)
    special = set(extra_special)
    for i, added in tok.get_added_tokens_decoder().items():
        if 0 <= i < n:
            tokens[i] = added.content.encode("utf-8")
            if added.special:
                special.add(i)
    unk = model.get("unk_token")
    if isinstance(unk, str) and unk in vocab:
        special.add(vocab[unk])
    special_ids = sorted(i for i in special if 0 <= i < n)

    def encode(data: bytes) -> list[int]:
        return list(tok.encode(_valid_utf8_prefix(data), add_special_tokens=False).ids)

    return cls._wrap(_core.ByteVocab(tokens, special_ids), encode, family)


# ---- byte-prefix probability -----------------------------------------------------------------


def _logprob_matrix(out: Any, n_rows: int, n_vocab: int, check_all: bool) -> np.ndarray:
    """The model's output as contiguous float32 ``[n_rows, >= n_vocab]``; errors name next_logprobs."""
    if hasattr(out, "detach") and hasattr(out, "cpu"):  # torch tensor, without importing torch
        out = out.detach().float().cpu().numpy()
    a = np.asarray(out)
    if a.dtype.kind != "f":
        raise InvalidTypeError(f"next_logprobs: must return a float array, got dtype {a.dtype}")
    if a.ndim != 2 or a.shape[0] != n_rows or a.shape[1] < n_vocab:
        raise InvalidArgumentError(
            f"next_logprobs: must return shape [{n_rows}, >= {n_vocab}] (one row per input sequence, "
            f"one column per token id), got {tuple(a.shape)}"
        )
    a = np.ascontiguousarray(a, dtype=np.float32)
    if check_all:
        bad = np.isnan(a) | np.isposinf(a)
        if bad.any():
            row = int(np.nonzero(bad.any(axis=1))[0][0])
            raise NonFiniteError(f"next_logprobs: row {row} holds NaN or +inf (log-probabilities must be <= 0)")
    return a


def _logsumexp(x: np.ndarray) -> float:
    if x.size == 0:
        return -math.inf
    m = float(np.max(x))
    if m == -math.inf:
        return -math.inf
    return m + math.log(float(np.sum(np.exp(x - m))))


def _check_context(context: Sequence[int] | np.ndarray, n: int, arg: str = "context") -> list[int]:
    ids = np.asarray(context)
    if ids.size == 0:
        return []
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise InvalidTypeError(f"{arg}: must be a 1-D sequence of integer token ids")
    if ids.min() < 0 or ids.max() >= n:
        bad = int(ids.min()) if ids.min() < 0 else int(ids.max())
        raise OutOfRangeError(f"{arg}: {bad} is out of range (ids must lie in [0, {n}))")
    return [int(x) for x in ids.tolist()]


def byte_prefix_logprob(
    vocab: ByteVocab,
    next_logprobs: NextLogprobs,
    data: bytes,
    context: Sequence[int] = (),
    mode: str = "exact",
    max_covers: int = 100_000,
    encode: EncodeBytes | None = None,
) -> float:
    """Natural-log probability that a token-level model's output bytes (after ``context``) start with
    ``data``.

    ``mode="exact"`` (Phan et al. 2024, "Exact byte-level probabilities from tokenized LMs"):
    ``log Σ_c P(c | context)`` over all *cover encodings* c = t1..tk — the bytes of t1..t(k−1) are a
    proper prefix of ``data`` and tk's bytes start with the rest. Covers partition the event, so this
    is the true marginal. The partial covers form a prefix tree; each node costs one model row, and
    the model is called once per tree level with all nodes of that level. More than ``max_covers``
    nodes raises ``LimitExceededError``.

    ``mode="gfd"`` (GFD §3): with the canonical tokenization t1..tk of ``data`` (``encode``, else
    ``vocab.encode_bytes``, else greedy longest match), sum over boundaries j of
    ``P(t1..tj) · Σ_{t extends data[pos_j:]} P(t | t1..tj)``, one model call of k rows. Each term is
    the probability of distinct covers, so the result never exceeds ``mode="exact"``.

    ``next_logprobs(list of id sequences) -> [B, V]``; ``V >= len(vocab)``. Special and ``None`` ids
    never form covers; tokens with empty bytes are ignored. Empty ``data`` gives 0.0.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise InvalidTypeError(f"data: must be bytes, got {type(data).__name__}")
    if not callable(next_logprobs):
        raise InvalidTypeError("next_logprobs: must be callable (list of id sequences -> [B, V] log-probs)")
    ctx = _check_context(context, len(vocab))
    data = bytes(data)
    if len(data) == 0:
        return 0.0
    if mode == "gfd":
        step = gfd_prepare(vocab, [ctx], [data], encode=encode, window=len(data))
        out = next_logprobs(step.inputs)
        return float(step.score(out).logprob[0])
    if mode != "exact":
        raise InvalidArgumentError(f"mode: must be 'exact' or 'gfd', got {mode!r}")
    if max_covers < 1:
        raise InvalidArgumentError(f"max_covers: must be >= 1, got {max_covers}")
    parent, token, _pos, lo, hi, levels, poff, pids = vocab._core.cover_tree(data, int(max_covers))
    n_nodes = len(parent)
    if n_nodes == 0:
        return -math.inf
    node_lp = np.zeros(n_nodes, dtype=np.float64)
    terms = np.full(n_nodes, -np.inf, dtype=np.float64)
    n_levels = len(levels) - 1
    for d in range(n_levels):
        s, e = int(levels[d]), int(levels[d + 1])
        paths = np.split(pids[poff[s] : poff[e]], (poff[s + 1 : e] - poff[s]).tolist())
        inputs = [ctx + p.tolist() for p in paths]
        lp = _logprob_matrix(next_logprobs(inputs), e - s, len(vocab), check_all=True)
        rows = np.arange(e - s, dtype=np.int64)
        terms[s:e] = node_lp[s:e] + vocab._core.range_logsumexp(lp, rows, lo[s:e], hi[s:e])
        if d + 1 < n_levels:
            cs, ce = int(levels[d + 1]), int(levels[d + 2])
            par = parent[cs:ce]
            node_lp[cs:ce] = node_lp[par] + lp[par - s, token[cs:ce]].astype(np.float64)
    return _logsumexp(terms)


# ---- incremental GFD for beam search ---------------------------------------------------------


@dataclass(frozen=True)
class GfdScores:
    """Result of :meth:`GfdStep.score`, per beam (float64[B]).

    ``logprob``: log P(trailing bytes | context) under GFD's approximation; a beam's total LM score
    is its running committed log-prob plus this. ``committed_logprob``: log P(committed tokens |
    context), to add to the running committed log-prob before the next step.
    """

    logprob: np.ndarray
    committed_logprob: np.ndarray


@dataclass(frozen=True)
class GfdStep:
    """One prepared step of incremental GFD for B beams (built by :func:`gfd_prepare`).

    ``inputs``: the R model inputs to run, beam b's rows being ``inputs[row_offsets[b]:row_offsets[b+1]]``
    (row j is ``context_b + canonical_b[:j]``). ``contexts`` / ``trailing``: each beam's state for the
    next step (context + committed tokens, and the bytes left untokenized). ``committed``: the tokens
    moved from trailing bytes into the context. ``canonical``: the canonical tokens of each beam's
    trailing bytes that were used.

    For scoring on a GPU instead of :meth:`score`, ``layout`` exposes per row ``row_lo``/``row_hi``
    (the range of ``vocab.sorted_ids`` to log-sum-exp), ``row_next`` (the canonical token whose
    log-prob is added before the next row; -1 on a beam's last row), and per beam ``n_commit``:
    ``logprob[b] = LSE_j(Σ_{i<j} lp[row_i, next_i] + LSE(lp[row_j, sorted_ids[lo_j:hi_j]]))`` and
    ``committed_logprob[b] = Σ_{i<n_commit} lp[row_i, next_i]``.
    """

    vocab: ByteVocab
    layout: Any
    inputs: list[list[int]]
    row_offsets: np.ndarray
    contexts: list[list[int]]
    trailing: list[bytes]
    committed: list[list[int]]
    canonical: list[list[int]]

    def score(self, logprobs: Any) -> GfdScores:
        """Score every beam from ``logprobs`` = ``next_logprobs(self.inputs)``, shape ``[R, V >= len(vocab)]``
        (numpy or torch; float32 is used). A NaN or +inf anywhere raises ``NonFiniteError`` naming the
        row; a wrong shape raises ``InvalidArgumentError``."""
        lp = _logprob_matrix(logprobs, len(self.inputs), len(self.vocab), check_all=False)
        logp, com = self.vocab._core.gfd_score(self.layout, lp)
        return GfdScores(logp, com)


def gfd_prepare(
    vocab: ByteVocab,
    contexts: Sequence[Sequence[int]],
    trailing: Sequence[bytes],
    encode: EncodeBytes | None = None,
    window: int | None = None,
) -> GfdStep:
    """Prepare one incremental GFD step for B beams (GFD §3, "Let's Fuse Step by Step").

    What goes in, per beam b: ``contexts[b]``, the LM context ids (prompt + tokens committed so
    far), and ``trailing[b]``, the text bytes after them that are not yet tokenized (the previous
    step's ``trailing`` plus the bytes the recognizer just appended).

    Canonical boundaries: the trailing bytes are re-tokenized by ``encode`` (default
    ``vocab.encode_bytes``, the tokenizer's own encoder when built by ``from_tokenizer``); its ids are
    used if they are matching, non-empty tokens spelling a prefix of the bytes, else greedy longest
    match is used. For the tokens t1..tk (covering ``used`` bytes) the boundaries are the positions
    pos_j = |t1..tj| < |trailing| (an uncovered tail, e.g. an incomplete UTF-8 character, stays in the
    last suffix). The window is tokenized on its own, so context-sensitive pre-tokenization may
    place boundaries differently than in the full text. Row j is the model input
    ``context + t1..tj`` and contributes ``P(t1..tj) · Σ_{t extends trailing[pos_j:]} P(t | context, t1..tj)``.

    Commit: the first m tokens, m = the smallest j with ``|trailing| − pos_j <= window`` (default
    ``vocab.max_token_len``; never past the last boundary), move into the context, since no single
    token can extend a longer suffix. So each step examines at most ``window`` bytes plus the bytes
    appended since the last step, never the whole prompt. A smaller window means fewer rows per
    beam (one per canonical token of the trailing bytes) but fewer boundaries in the estimate.

    What comes out: a :class:`GfdStep`; run ``logprobs = next_logprobs(step.inputs)`` (one ``[R, V]``
    batch, R = total rows) and call ``step.score(logprobs)`` for each beam's log-prob and the
    log-prob of its committed tokens. A beam with empty trailing bytes has no rows and log-prob 0.

    Arguments: ``contexts`` B sequences of int ids (< len(vocab)); ``trailing`` B ``bytes``;
    ``encode(bytes) -> ids``; ``window`` >= 0. A beam-search loop::

        ctx, trail, done = [prompt] * B, [b""] * B, np.zeros(B)  # done: committed log-prob
        for new_bytes in recognizer_steps:                         # per beam
            trail = [t + nb for t, nb in zip(trail, new_bytes)]
            step = gfd_prepare(vocab, ctx, trail)
            s = step.score(next_logprobs(step.inputs))
            lm_score = done + s.logprob                            # fuse with the recognizer here
            done += s.committed_logprob
            ctx, trail = step.contexts, step.trailing              # then reorder/prune beams
    """
    if len(contexts) != len(trailing):
        raise InvalidArgumentError(
            f"trailing: need one entry per beam (got {len(trailing)} for {len(contexts)} contexts)"
        )
    n = len(vocab)
    ctxs = [_check_context(c, n, f"contexts[{b}]") for b, c in enumerate(contexts)]
    trail = []
    for b, t in enumerate(trailing):
        if not isinstance(t, (bytes, bytearray)):
            raise InvalidTypeError(f"trailing[{b}]: must be bytes, got {type(t).__name__}")
        trail.append(bytes(t))
    w = vocab.max_token_len if window is None else int(window)
    if w < 0:
        raise InvalidArgumentError(f"window: must be >= 0, got {w}")
    enc = encode if encode is not None else vocab.encode_bytes
    toks: list[Any] = []
    for t in trail:
        if enc is None or len(t) == 0:
            toks.append(np.zeros(0, dtype=np.int64))
        else:
            toks.append(np.asarray(enc(t), dtype=np.int64).reshape(-1))
    layout = vocab._core.gfd_layout(trail, toks, w)
    tok_off = layout.tok_offsets.tolist()
    tok_ids = layout.tok_ids.tolist()
    row_off = layout.row_offsets
    n_commit = layout.n_commit.tolist()
    commit_bytes = layout.commit_bytes.tolist()
    inputs: list[list[int]] = []
    new_ctx, new_trail, committed, canonical = [], [], [], []
    for b, ctx in enumerate(ctxs):
        canon = tok_ids[tok_off[b] : tok_off[b + 1]]
        for j in range(int(row_off[b + 1] - row_off[b])):
            inputs.append(ctx + canon[:j])
        m = n_commit[b]
        committed.append(canon[:m])
        canonical.append(canon)
        new_ctx.append(ctx + canon[:m])
        new_trail.append(trail[b][commit_bytes[b] :])
    return GfdStep(vocab, layout, inputs, row_off, new_ctx, new_trail, committed, canonical)
