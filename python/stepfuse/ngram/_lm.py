"""N-gram counting and language models (modified Kneser–Ney, interpolated MLE) on the Rust core."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from stepfuse import _core
from stepfuse.errors import InvalidArgumentError, InvalidTypeError, OutOfRangeError

Sentences = Iterable[Sequence[int] | np.ndarray | str | Sequence[str]]

UNK, BOS, EOS = "<unk>", "<s>", "</s>"


def _int_array(x: Any, arg: str) -> np.ndarray:
    """``x`` as an integer numpy array (no copy when it already is one); rejects floats, bools, objects."""
    a = np.asarray(x)
    if a.size == 0 and a.dtype.kind not in "iu":
        return a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise InvalidTypeError(f"{arg}: must hold integer ids, got dtype {a.dtype}")
    return a


def _to_i64(a: np.ndarray, arg: str) -> np.ndarray:
    """Convert an integer array to contiguous int64 once at the boundary (uint64 above 2^63 is rejected)."""
    if a.dtype == np.uint64 and a.size and int(a.max()) > np.iinfo(np.int64).max:
        raise OutOfRangeError(f"{arg}: ids must fit in int64")
    return np.ascontiguousarray(a, dtype=np.int64)


def _flatten(
    sentences: Sentences, vocab_size: int | None
) -> tuple[np.ndarray, np.ndarray, int, list[str] | None]:
    """Flat ids, offsets (S+1), vocab_size and the word table (None for id input).

    A sentence is a sequence/array of integer ids, a sequence of str words, or a str line
    (split on whitespace, as ``lmplz`` reads text). Words get ids in order of first appearance;
    the word ``<unk>`` maps to the unknown id.
    """
    sents = list(sentences)
    words_mode = False
    for s in sents:
        if isinstance(s, str):
            words_mode = True
            break
        if isinstance(s, np.ndarray):
            break
        if len(s) > 0:
            words_mode = isinstance(s[0], str)
            break
    lengths = np.zeros(len(sents) + 1, dtype=np.int64)
    if words_mode:
        table: dict[str, int] = {}
        flat_words: list[int] = []
        for i, s in enumerate(sents):
            toks = s.split() if isinstance(s, str) else list(s)
            for w in toks:
                if not isinstance(w, str):
                    raise InvalidTypeError(f"sentences: sentence {i} mixes words and {type(w).__name__}")
                if w in (BOS, EOS):
                    raise InvalidArgumentError(f"sentences: sentence {i} contains the reserved word {w!r}")
            flat_words.extend(-1 if w == UNK else table.setdefault(w, len(table)) for w in toks)
            lengths[i + 1] = len(toks)
        words = list(table)
        v = len(words)
        if vocab_size is not None:
            if vocab_size < v:
                raise OutOfRangeError(f"vocab_size: {vocab_size} is smaller than the {v} distinct words")
            v = int(vocab_size)
            words = words + [f"<id{i}>" for i in range(len(words), v)]
        flat = np.asarray(flat_words, dtype=np.int64)
        flat[flat < 0] = v
        return flat, np.cumsum(lengths), v, words
    arrays = []
    for i, s in enumerate(sents):
        if isinstance(s, str):
            raise InvalidTypeError(f"sentences: sentence {i} is a str among id sequences")
        a = _int_array(s, "sentences")
        if a.ndim != 1:
            raise InvalidArgumentError(f"sentences: sentence {i} must be 1-D, got ndim={a.ndim}")
        arrays.append(a)
        lengths[i + 1] = a.size
    flat = np.concatenate([_to_i64(a, "sentences") for a in arrays]) if arrays else np.zeros(0, np.int64)
    if flat.size and int(flat.min()) < 0:
        raise OutOfRangeError(f"sentences: id {int(flat.min())} is negative")
    if vocab_size is None:
        vocab_size = int(flat.max()) + 1 if flat.size else 0
    return flat, np.cumsum(lengths), int(vocab_size), None


class NGramCounts:
    """Counts of n-grams of orders 1..N over sentences padded with ``<s>``/``</s>``; mergeable.

    Counting radix-sorts the packed highest-order n-gram of every position once and reads all orders off
    that one sorted array, in Rust (rayon, GIL released); corpora longer than ``chunk`` positions are
    counted in sentence-aligned pieces and merged, which bounds the sort's memory. Counts of
    corpus shards (e.g. one per Ray or Spark worker) merge into the counts of the whole corpus with
    :meth:`merge`, provided they share ``order`` and ``vocab_size`` (and, for word input, pass the same
    ``words`` table: build ids with :meth:`NGramLM.encode` of a shared table, or count ids).
    """

    def __init__(self, inner: _core._NGramCounts, words: list[str] | None = None) -> None:
        self._inner = inner
        self.words = words

    @classmethod
    def count(
        cls,
        sentences: Sentences,
        order: int,
        *,
        vocab_size: int | None = None,
        progress: bool = False,
        chunk: int = 1 << 24,
    ) -> NGramCounts:
        """Count orders ``1..order`` of ``sentences`` (see :meth:`NGramLM.train` for the input forms)."""
        if not isinstance(order, (int, np.integer)) or order < 1:
            raise InvalidArgumentError(f"order: must be an integer >= 1, got {order!r}")
        flat, offsets, v, words = _flatten(sentences, vocab_size)
        bar = _progress(progress, "counting n-grams")
        inner = _core._NGramCounts.count(flat, offsets, int(order), v, int(chunk))
        if bar is not None:
            bar.update(1)
            bar.close()
        return cls(inner, words)

    @classmethod
    def count_flat(
        cls, tokens: Any, offsets: Any, order: int, *, vocab_size: int | None = None, chunk: int = 1 << 24
    ) -> NGramCounts:
        """Count sentences given as one flat id array ``tokens [T]`` and ``offsets [S+1]`` (sentence i is
        ``tokens[offsets[i]:offsets[i+1]]``) without any per-sentence Python work."""
        if not isinstance(order, (int, np.integer)) or order < 1:
            raise InvalidArgumentError(f"order: must be an integer >= 1, got {order!r}")
        t = _int_array(tokens, "tokens")
        if vocab_size is None:
            vocab_size = int(t.max()) + 1 if t.size else 0
        return cls(_core._NGramCounts.count(t, _int_array(offsets, "offsets"), int(order), int(vocab_size), int(chunk)))

    def merge(self, other: NGramCounts) -> NGramCounts:
        """Counts of both corpora (same order and vocabulary)."""
        if self.words is not None and other.words is not None and self.words != other.words:
            raise InvalidArgumentError("other: word tables differ; count shards with a shared id mapping")
        return NGramCounts(self._inner.merge(other._inner), self.words or other.words)

    @property
    def order(self) -> int:
        return int(self._inner.order)

    @property
    def vocab_size(self) -> int:
        return int(self._inner.vocab_size)

    @property
    def tokens(self) -> int:
        """Tokens counted, without ``<s>``/``</s>``."""
        return int(self._inner.tokens)

    @property
    def sentences(self) -> int:
        return int(self._inner.sentences)

    def num_ngrams(self, n: int) -> int:
        """Distinct n-grams of order ``n``."""
        return int(self._inner.num_ngrams(n))

    def ngrams(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The distinct n-grams of order ``n`` (``uint32 [M, n]``, lexicographic) and counts ``uint64 [M]``."""
        ids, counts = self._inner.ngrams(n)
        return ids, counts


def _progress(on: bool, desc: str) -> Any:
    if not on:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=1, desc=desc)


class NGramLM:
    """An n-gram language model: modified Kneser–Ney (KenLM ``lmplz``-compatible) or interpolated MLE.

    **Id space.** User tokens are ids ``0 .. vocab_size-1``. Three ids follow them:
    ``unk_id = vocab_size`` (``<unk>``), ``bos_id = vocab_size + 1`` (``<s>``) and
    ``eos_id = vocab_size + 2`` (``</s>``). Training pads every sentence as ``<s> w1 .. wk </s>``.
    Scoring never adds ``<s>`` by itself: a context is used exactly as given, so put ``bos_id`` in front
    of a context that starts a sentence (:meth:`sentence_logprob` does this for you).

    **Log-probabilities** are natural logs (ARPA files stay log10); ``-inf`` means impossible.

    **Queries.** :meth:`score` takes contexts ``[B, L]`` of which only the last ``order - 1`` columns are
    used; negative ids are left padding (a shorter history: everything left of the rightmost negative
    id is ignored). :meth:`next_logprobs` gives ``[B, vocab_size]`` over the user ids (``</s>`` and
    ``<unk>`` are not columns, so a row sums to 1 minus their mass). The model is callable as
    ``lm(batch_of_sequences)`` = ``next_logprobs``, the ``next_logprobs`` model protocol.

    **Storage.** Dense unigrams plus one hash table per higher order: 4-byte fingerprint, f32 log-prob,
    f32 backoff (not at the highest order) and a bucket directory: at most 12.25 bytes per n-gram below
    the highest order and 8.25 at it (``hash_nbytes``; ``bytes_per_ngram``).
    """

    def __init__(self, inner: _core._NGramLM, words: list[str] | None = None) -> None:
        self._inner = inner
        self.words = words
        self._word_ids: dict[str, int] | None = None

    # ---- training ---------------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        sentences: Sentences,
        order: int,
        *,
        smoothing: str = "modified_kneser_ney",
        weights: Sequence[float] | None = None,
        vocab_size: int | None = None,
        discount_fallback: tuple[float, float, float] | None = (0.5, 1.0, 1.5),
        progress: bool = False,
    ) -> NGramLM:
        """Count ``sentences`` and estimate an order-``order`` model.

        Modified Kneser–Ney (Chen & Goodman 1998; Heafield et al. 2013): adjusted counts are continuation
        counts below the highest order except for n-grams starting with ``<s>``; three discounts per order
        ``D_k = k - (k+1) Y t_{k+1}/t_k``, ``Y = t1/(t1 + 2 t2)`` from counts of adjusted counts;
        interpolation down to a uniform distribution over ``vocab_size`` ids, ``</s>`` and ``<unk>``. With
        str input (all words observed) ``write_arpa`` reproduces ``lmplz -o order`` on the same text.
        ``discount_fallback`` (``lmplz --discount_fallback``'s defaults) replaces the discounts of an
        order whose counts of counts cannot give them (tiny corpora); ``None`` makes that an error.

        Interpolated MLE (Superposed Decoding's filter): ``p(w|c) = Σ_n λ_n P_MLE(w | c_{n-1}) / Σ_n λ_n``
        with both sums over the orders whose context ``c_{n-1}`` was seen in training (weights are
        renormalized over them; the unigram's empty context is always seen); zero mass gives ``-inf``.
        ``weights[i]`` weighs order ``i + 1``; default uniform.

        Args:
            sentences: iterable of sentences; each a 1-D array / sequence of integer ids (any int dtype),
                a sequence of str words, or a str line split on whitespace.
            order: highest order N >= 1 (``order * bits_per_id <= 128``).
            vocab_size: number of user ids; default ``max id + 1`` (ids) or the number of distinct words.
        """
        if smoothing not in ("modified_kneser_ney", "interpolated_mle"):
            raise InvalidArgumentError(
                f"smoothing: must be 'modified_kneser_ney' or 'interpolated_mle', got {smoothing!r}"
            )
        counts = NGramCounts.count(sentences, order, vocab_size=vocab_size, progress=progress)
        return cls.from_counts(
            counts, smoothing=smoothing, weights=weights, discount_fallback=discount_fallback
        )

    @classmethod
    def from_counts(
        cls,
        counts: NGramCounts,
        *,
        smoothing: str = "modified_kneser_ney",
        weights: Sequence[float] | None = None,
        discount_fallback: tuple[float, float, float] | None = (0.5, 1.0, 1.5),
    ) -> NGramLM:
        """Estimate a model from (possibly merged) :class:`NGramCounts`; see :meth:`train`."""
        if weights is not None and smoothing != "interpolated_mle":
            raise InvalidArgumentError("weights: only used with smoothing='interpolated_mle'")
        w = None if weights is None else [float(x) for x in weights]
        fb = None if discount_fallback is None else tuple(float(x) for x in discount_fallback)
        inner = _core._NGramLM.train(counts._inner, smoothing, w, fb)
        return cls(inner, counts.words)

    # ---- properties -------------------------------------------------------------------------------

    @property
    def order(self) -> int:
        return int(self._inner.order)

    @property
    def vocab_size(self) -> int:
        """Number of user ids; the special ids follow."""
        return int(self._inner.vocab_size)

    @property
    def unk_id(self) -> int:
        return self.vocab_size

    @property
    def bos_id(self) -> int:
        return self.vocab_size + 1

    @property
    def eos_id(self) -> int:
        return self.vocab_size + 2

    @property
    def smoothing(self) -> str:
        """``"backoff"`` (modified Kneser–Ney or read from ARPA) or ``"interpolated_mle"``."""
        return str(self._inner.kind)

    @property
    def weights(self) -> list[float] | None:
        return self._inner.weights

    @property
    def discounts(self) -> list[tuple[float, float, float]]:
        """Modified Kneser–Ney discounts (D1, D2, D3+) per order (models trained here)."""
        return list(self._inner.discounts)

    @property
    def hash_nbytes(self) -> int:
        """Bytes of the hash layout (dense unigrams and the per-order tables)."""
        return int(self._inner.hash_nbytes)

    def num_ngrams(self, n: int | None = None) -> int:
        """Stored n-grams of order ``n`` (all orders when None)."""
        if n is None:
            return sum(int(self._inner.count(k)) for k in range(1, self.order + 1))
        return int(self._inner.count(n))

    @property
    def bytes_per_ngram(self) -> float:
        return self.hash_nbytes / max(self.num_ngrams(), 1)

    # ---- words ------------------------------------------------------------------------------------

    def encode(self, words: str | Sequence[str]) -> np.ndarray:
        """Ids of words (a str is split on whitespace); unknown words map to ``unk_id``."""
        if self.words is None:
            raise InvalidArgumentError("words: this model was trained on ids and has no word table")
        if self._word_ids is None:
            self._word_ids = {w: i for i, w in enumerate(self.words)}
            self._word_ids.update({UNK: self.unk_id, BOS: self.bos_id, EOS: self.eos_id})
        toks = words.split() if isinstance(words, str) else words
        get = self._word_ids.get
        unk = self.unk_id
        return np.fromiter((get(w, unk) for w in toks), dtype=np.int64, count=len(toks))

    def _ids(self, seq: Any, arg: str) -> np.ndarray:
        if isinstance(seq, str) or (isinstance(seq, (list, tuple)) and seq and isinstance(seq[0], str)):
            return self.encode(seq)
        return _to_i64(_int_array(seq, arg), arg)

    # ---- queries ----------------------------------------------------------------------------------

    def _contexts(self, contexts: Any) -> np.ndarray:
        """``[B, L]`` int64 contexts from a 2-D array or a batch of (ragged) sequences (left-padded)."""
        if isinstance(contexts, np.ndarray) and contexts.ndim == 2:
            return _to_i64(_int_array(contexts, "contexts"), "contexts")
        if isinstance(contexts, np.ndarray) and contexts.ndim != 2:
            raise InvalidArgumentError(f"contexts: must be 2-D [B, L], got ndim={contexts.ndim}")
        rows = [self._ids(r, "contexts") for r in contexts]
        width = max(self.order - 1, 0)
        out = np.full((len(rows), width), -1, dtype=np.int64)
        for i, r in enumerate(rows):
            if r.ndim != 1:
                raise InvalidArgumentError(f"contexts: row {i} must be 1-D")
            if width:
                tail = r[-width:]
                out[i, width - tail.size :] = tail
        return out

    def score(self, contexts: Any, tokens: Any) -> np.ndarray:
        """Natural-log ``p(token | context)`` for a batch, in one Rust call (GIL released, rayon).

        Args:
            contexts: ``int [B, L]`` (only the last ``order - 1`` columns are used; negative = left
                padding) or a batch of B sequences of different lengths.
            tokens: ``int [B]`` (one candidate per row) or ``int [B, K]`` (K candidates per row).
        Returns:
            ``float32 [B]`` or ``float32 [B, K]``.
        """
        ctx = self._contexts(contexts)
        tok = _to_i64(_int_array(tokens, "tokens"), "tokens")
        if tok.ndim not in (1, 2):
            raise InvalidArgumentError(f"tokens: must be [B] or [B, K], got ndim={tok.ndim}")
        if tok.shape[0] != ctx.shape[0]:
            raise InvalidArgumentError(f"tokens: {tok.shape[0]} rows for {ctx.shape[0]} contexts")
        out = self._inner.score(ctx, tok.reshape(tok.shape[0], -1) if tok.ndim == 2 else tok[:, None])
        return out if tok.ndim == 2 else out[:, 0]

    def logprob(self, context: Any, token: int | str) -> float:
        """Natural-log ``p(token | context)`` (context: ids or words; used as given, no ``<s>`` added)."""
        tok = int(self.encode([token])[0]) if isinstance(token, str) else int(token)
        ctx = self._ids(context, "context")
        if ctx.ndim != 1:
            raise InvalidArgumentError("context: must be 1-D")
        return float(self.score(ctx[None, :], np.array([tok]))[0])

    def next_logprobs(self, contexts: Any) -> np.ndarray:
        """``float32 [B, vocab_size]`` natural-log next-token distributions after each context.

        ``contexts``: a batch of id sequences (ragged allowed) or ``int [B, L]`` with negative left
        padding. Columns are the user ids; ``</s>``/``<unk>`` mass is not included.
        """
        return self._inner.next_logprobs(self._contexts(contexts))

    __call__ = next_logprobs

    def sentence_logprob(self, sentence: Any, *, bos: bool = True, eos: bool = True) -> float:
        """Natural-log probability of a sentence, with ``<s>`` context and a final ``</s>`` by default."""
        ids = self._ids(sentence, "sentence")
        seq = np.concatenate([[self.bos_id] if bos else [], ids, [self.eos_id] if eos else []]).astype(
            np.int64
        )
        start = 1 if bos else 0
        if seq.size <= start:
            return 0.0
        w = max(self.order - 1, 0)
        padded = np.concatenate([np.full(w, -1, np.int64), seq])
        idx = np.arange(start, seq.size)
        if w:
            ctx = np.lib.stride_tricks.sliding_window_view(padded, w)[idx]
        else:
            ctx = np.zeros((idx.size, 0), np.int64)
        return float(
            np.sum(self._inner.score(np.ascontiguousarray(ctx), seq[idx][:, None]), dtype=np.float64)
        )

    def perplexity(self, sentences: Iterable[Any]) -> float:
        """``exp(-Σ log p / #predicted tokens)`` over sentences (each with ``<s>``, ``</s>``)."""
        total, n = 0.0, 0
        for s in sentences:
            ids = self._ids(s, "sentences")
            total += self.sentence_logprob(ids)
            n += ids.size + 1
        if n == 0:
            raise InvalidArgumentError("sentences: empty")
        return float(np.exp(-total / n))

    # ---- files ------------------------------------------------------------------------------------

    def write_arpa(self, path: str | os.PathLike[str], words: Sequence[str] | None = None) -> None:
        """Write the model as an ARPA file (log10 values, ``lmplz``'s layout; back-off models only).

        ``words[i]`` is the string of id ``i``; default the model's word table, else ``str(i)``.
        """
        if words is None:
            words = self.words if self.words is not None else [str(i) for i in range(self.vocab_size)]
        words = list(words)
        if len(words) != self.vocab_size:
            raise InvalidArgumentError(f"words: need {self.vocab_size} strings, got {len(words)}")
        for i, w in enumerate(words):
            if not isinstance(w, str) or not w or any(c.isspace() for c in w):
                raise InvalidArgumentError(f"words: entry {i} must be a non-empty str without whitespace")
        self._inner.write_arpa(_fspath(path), words)

    @classmethod
    def read_arpa(cls, path: str | os.PathLike[str]) -> NGramLM:
        """Load any ARPA back-off model (``.gz`` is decompressed). Words get ids in file order;
        ``<unk>``/``<s>``/``</s>`` map to the special ids."""
        p = _fspath(path)
        if p.endswith(".gz"):
            import gzip

            from stepfuse.errors import StepfuseIOError

            try:
                with open(p, "rb") as fh:
                    raw = fh.read()
            except OSError as e:
                raise StepfuseIOError(f"{p}: {e.strerror or e}") from e
            try:
                data = gzip.decompress(raw)
            except (OSError, EOFError) as e:
                from stepfuse.errors import FormatError

                raise FormatError(f"{p}: not a readable gzip file ({e})") from e
            inner, words = _core._NGramLM.read_arpa_bytes(data, p)
        else:
            inner, words = _core._NGramLM.read_arpa(p)
        return cls(inner, words)

    def save(self, path: str | os.PathLike[str], *, ngrams: bool = False) -> None:
        """Save the binary hash layout (<= 12.25 bytes per n-gram plus the word table).

        ``ngrams=True`` also keeps the sorted n-gram list (16 bytes per n-gram) so the loaded model can
        ``write_arpa`` and compute ``next_logprobs`` densely; without it ``next_logprobs`` probes every id.
        """
        import json

        extra = json.dumps({"words": self.words}).encode("utf-8")
        self._inner.save(_fspath(path), extra, bool(ngrams))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = True) -> NGramLM:
        """Load a binary model; ``mmap=True`` maps the file read-only (do not modify it while in use)."""
        import json

        inner, extra = _core._NGramLM.load(_fspath(path), bool(mmap))
        try:
            words = json.loads(extra.decode("utf-8"))["words"]
        except (ValueError, KeyError, TypeError) as e:
            from stepfuse.errors import FormatError

            raise FormatError(f"{_fspath(path)}: corrupt word table ({e})") from e
        return cls(inner, words)

    def __repr__(self) -> str:
        counts = ", ".join(str(self.num_ngrams(n)) for n in range(1, self.order + 1))
        return (
            f"NGramLM(order={self.order}, vocab_size={self.vocab_size}, {self.smoothing}, ngrams=[{counts}])"
        )


def _fspath(path: str | os.PathLike[str]) -> str:
    return os.fspath(path)
