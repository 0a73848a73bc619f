"""N-gram overlap index for benchmark decontamination, and the ``stepfuse decontaminate`` command."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stepfuse import _core
from stepfuse.errors import InvalidArgumentError, InvalidTypeError, StepfuseIOError

Doc = str | Sequence[int] | np.ndarray


@dataclass
class DocReport:
    """Overlap of one scanned document with the reference set.

    ``overlap``: the document's n-gram positions whose n-gram occurs in the reference; ``total``: its
    n-gram positions; ``fraction = overlap / total`` (0 when the document is shorter than n);
    ``reference_ids``: indices of the reference documents sharing an n-gram; ``spans``: merged
    ``(start, end)`` ranges covered by matched n-grams, in characters of the original text (str docs)
    or token positions (id docs).
    """

    index: int
    overlap: int
    total: int
    reference_ids: list[int] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        return self.overlap / self.total if self.total else 0.0

    @property
    def contaminated(self) -> bool:
        return self.overlap > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "overlap": self.overlap,
            "ngrams": self.total,
            "fraction": self.fraction,
            "reference_ids": self.reference_ids,
            "spans": [list(s) for s in self.spans],
        }


def words(text: str, normalize: bool = True) -> list[str]:
    """The words an :class:`NGramIndex` sees: lowercased runs of alphanumeric characters (punctuation
    and whitespace separate words), or the whitespace-separated pieces when ``normalize=False``."""
    if not isinstance(text, str):
        raise InvalidTypeError(f"text: must be str, got {type(text).__name__}")
    return _core.ngram_words(text, normalize)


def _batches(docs: Iterable[Doc], size: int) -> Iterator[list[Doc]]:
    batch: list[Doc] = []
    for d in docs:
        batch.append(d)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class NGramIndex:
    """Reference n-gram set for decontamination: which n-grams of a document occur in the references.

    Build from reference documents (texts, normalized as :func:`words` does, or token-id sequences),
    then :meth:`scan` documents in a stream. Hashing and lookups run in Rust (rayon, GIL released):
    O(bytes) per document, ~24 bytes per distinct reference n-gram; distinct n-grams collide with
    probability ~2^-64 per pair.
    """

    def __init__(self, inner: _core._NGramIndex, kind: str | None = None) -> None:
        self._inner = inner
        self._kind = kind

    @classmethod
    def build(
        cls,
        reference_docs: Iterable[Doc],
        n: int = 13,
        *,
        normalize: bool = True,
        batch_size: int = 4096,
        progress: bool = False,
    ) -> NGramIndex:
        """Index the ``n``-grams of ``reference_docs`` (all str, or all integer sequences); reference i
        is the i-th document."""
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise InvalidArgumentError(f"n: must be an integer >= 1, got {n!r}")
        idx = cls(_core._NGramIndex(int(n), bool(normalize)))
        idx.add(reference_docs, batch_size=batch_size, progress=progress)
        return idx

    def add(self, docs: Iterable[Doc], *, batch_size: int = 4096, progress: bool = False) -> None:
        """Add more reference documents (ids continue after the existing ones)."""
        bar = _bar(progress, "indexing")
        for batch in _batches(docs, batch_size):
            kind = self._check_kind(batch)
            first = int(self._inner.num_docs)
            if kind == "text":
                self._inner.add_texts(batch, first)  # type: ignore[arg-type]
            else:
                self._inner.add_ids(batch, first)
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()

    def _check_kind(self, batch: list[Doc]) -> str:
        texts = [isinstance(d, str) for d in batch]
        if any(texts) and not all(texts):
            raise InvalidTypeError("docs: mix of str and token-id documents")
        kind = "text" if all(texts) else "ids"
        if self._kind is None:
            self._kind = kind
        elif self._kind != kind:
            raise InvalidTypeError(f"docs: this index holds {self._kind} documents, got {kind}")
        return kind

    @property
    def n(self) -> int:
        return int(self._inner.n)

    @property
    def num_ngrams(self) -> int:
        """Distinct reference n-grams."""
        return int(self._inner.num_ngrams)

    @property
    def num_references(self) -> int:
        return int(self._inner.num_docs)

    def _scanned(
        self, docs: Iterable[Doc], batch_size: int, spans: bool, progress: bool
    ) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
        """(index of the batch's first document, flat result columns) per scanned batch."""
        bar = _bar(progress, "scanning")
        i = 0
        for batch in _batches(docs, batch_size):
            kind = self._check_kind(batch)
            cols = (
                self._inner.scan_texts(batch, spans)  # type: ignore[arg-type]
                if kind == "text"
                else self._inner.scan_ids(batch, spans)
            )
            yield i, cols
            i += len(batch)
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()

    def scan(
        self, docs: Iterable[Doc], *, batch_size: int = 1024, spans: bool = True, progress: bool = False
    ) -> Iterator[DocReport]:
        """Yield one :class:`DocReport` per document, streaming over ``docs`` in batches."""
        for first, cols in self._scanned(docs, batch_size, spans, progress):
            yield from _reports(first, *cols)

    def overlap_counts(
        self, docs: Iterable[Doc], *, batch_size: int = 4096, progress: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Columnar form of :meth:`scan` for corpus-scale filtering: ``(overlap, total)``, two int64
        arrays with one entry per document (``DocReport.overlap`` and ``DocReport.total``), without
        building a report object per document. ``overlap / np.maximum(total, 1)`` is the fraction."""
        cols = [c[:2] for _, c in self._scanned(docs, batch_size, False, progress)]
        if not cols:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return (
            np.concatenate([o for o, _ in cols]).astype(np.int64),
            np.concatenate([t for _, t in cols]).astype(np.int64),
        )

    def scan_all(self, docs: Iterable[Doc], **kw: Any) -> list[DocReport]:
        """:meth:`scan` collected into a list."""
        return list(self.scan(docs, **kw))


def _reports(
    first: int,
    overlap: np.ndarray,
    total: np.ndarray,
    ref_offsets: np.ndarray,
    refs: np.ndarray,
    span_offsets: np.ndarray,
    spans: np.ndarray,
) -> Iterator[DocReport]:
    """:class:`DocReport` objects from the flat columns of one scanned batch: each column becomes a
    Python list once, and each report gets its own slices of them (no per-document numpy calls)."""
    ids = refs.tolist()
    pairs = list(zip(spans[:, 0].tolist(), spans[:, 1].tolist()))
    ro = ref_offsets.tolist()
    so = span_offsets.tolist()
    for k, (ov, tot) in enumerate(zip(overlap.tolist(), total.tolist())):
        # A document without hits (the common case) gets fresh empty lists without slicing.
        yield DocReport(
            first + k,
            ov,
            tot,
            ids[ro[k] : ro[k + 1]] if ov else [],
            pairs[so[k] : so[k + 1]] if ov and pairs else [],
        )


def _bar(on: bool, desc: str) -> Any:
    if not on:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(desc=desc, unit="doc")


def _read_docs(path: str, field_name: str) -> Iterator[str]:
    """Documents of a file: one JSON object per line (``.jsonl``/``.json`` lines, text in ``field_name``)
    or one document per line of plain text."""
    jsonl = path.endswith((".jsonl", ".ndjson"))
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except OSError as e:
        raise StepfuseIOError(f"{path}: {e.strerror or e}") from e
    with fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not jsonl:
                yield line
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                text = obj[field_name] if isinstance(obj, dict) else obj
            except (ValueError, KeyError) as e:
                from stepfuse.errors import FormatError

                raise FormatError(f"{path}: line {lineno}: no JSON string field {field_name!r} ({e})") from e
            yield text if isinstance(text, str) else json.dumps(text)


def decontaminate_main(argv: list[str]) -> int:
    """``stepfuse decontaminate --reference FILE --n 13 INPUT...``: scan INPUT documents for n-grams of
    the reference documents, print a summary and write one JSON line per input document."""
    ap = argparse.ArgumentParser(
        prog="stepfuse decontaminate",
        description="Find n-gram overlap between documents and a reference set (e.g. benchmark test sets). "
        "Files ending in .jsonl hold one JSON object per line (text in --field); other files hold one "
        "document per line.",
    )
    ap.add_argument("inputs", nargs="+", metavar="INPUT", help="documents to scan")
    ap.add_argument(
        "--reference", "-r", action="append", required=True, metavar="FILE", help="reference file(s)"
    )
    ap.add_argument("--n", type=int, default=13, help="n-gram size in words (default 13)")
    ap.add_argument("--field", default="text", help="JSON field holding the text (default: text)")
    ap.add_argument("--output", "-o", default=None, help="write per-document JSONL here ('-' = stdout)")
    ap.add_argument("--threshold", type=float, default=0.0, help="flag documents with fraction > threshold")
    ap.add_argument("--no-normalize", action="store_true", help="split on whitespace only, keep case")
    ap.add_argument("--no-spans", action="store_true", help="omit matched spans from the JSONL")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error("--n must be >= 1")
    t0 = time.perf_counter()
    index = NGramIndex(_core._NGramIndex(args.n, not args.no_normalize))
    for ref in args.reference:
        index.add(_read_docs(ref, args.field), progress=args.progress)
    t1 = time.perf_counter()
    out = (
        sys.stdout
        if args.output == "-"
        else (open(args.output, "w", encoding="utf-8") if args.output else None)
    )
    scanned = flagged = nbytes = 0
    try:
        for path in args.inputs:
            docs = list(_read_docs(path, args.field))
            nbytes += sum(len(d.encode("utf-8")) for d in docs)
            for rep in index.scan(docs, spans=not args.no_spans, progress=args.progress):
                scanned += 1
                hit = rep.overlap > 0 and rep.fraction > args.threshold
                flagged += hit
                if out is not None:
                    rec = {"file": path, **rep.to_json(), "flagged": hit}
                    if args.no_spans:
                        rec.pop("spans")
                    out.write(json.dumps(rec) + "\n")
    finally:
        if out is not None and out is not sys.stdout:
            out.close()
    t2 = time.perf_counter()
    summary = (
        f"references: {index.num_references} documents, {index.num_ngrams} distinct {args.n}-grams "
        f"({t1 - t0:.2f} s)\n"
        f"scanned: {scanned} documents, {nbytes / 1e6:.2f} MB in {t2 - t1:.2f} s "
        f"({nbytes / 1e6 / max(t2 - t1, 1e-9):.1f} MB/s)\n"
        f"flagged: {flagged} ({100.0 * flagged / max(scanned, 1):.2f}%) with overlap and fraction > {args.threshold}"
    )
    print(summary, file=sys.stderr if args.output == "-" else sys.stdout)
    return 0
