"""NGramIndex decontamination against brute-force set intersection; the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepfuse.cli import main as cli_main
from stepfuse.errors import InvalidArgumentError, InvalidTypeError, StepfuseIOError
from stepfuse.ngram import NGramIndex
from stepfuse.ngram._index import words

ALPHABET = "abcAB éÉ1,.!-\n\t"


def oracle_words(text: str) -> list[str]:
    return [m.lower() for m in re.findall(r"[^\W_]+", text)]


def brute(refs: list[list], doc: list, n: int) -> tuple[int, int, list[int]]:
    grams = [tuple(doc[i : i + n]) for i in range(len(doc) - n + 1)]
    sets = [{tuple(r[i : i + n]) for i in range(len(r) - n + 1)} for r in refs]
    allref = set().union(*sets) if sets else set()
    overlap = sum(g in allref for g in grams)
    ids = sorted({j for j, s in enumerate(sets) if s & set(grams)})
    return overlap, len(grams), ids


@settings(max_examples=80)
@given(st.text(ALPHABET, max_size=40))
def test_words_match_oracle(text: str) -> None:
    assert words(text) == oracle_words(text)
    assert words(text, normalize=False) == text.split()


@settings(max_examples=60)
@given(
    st.lists(st.text("abAB c,", max_size=30), min_size=1, max_size=5),
    st.lists(st.text("abAB c,", max_size=30), min_size=1, max_size=5),
    st.integers(1, 3),
)
def test_text_scan_matches_brute_force(refs: list[str], docs: list[str], n: int) -> None:
    idx = NGramIndex.build(refs, n=n)
    ref_words = [oracle_words(r) for r in refs]
    for rep, d in zip(idx.scan(docs, batch_size=2), docs):
        assert (rep.overlap, rep.total, rep.reference_ids) == brute(ref_words, oracle_words(d), n)
        # spans cover exactly the matched words
        covered = "".join(d[a:b] for a, b in rep.spans)
        assert rep.overlap == 0 or len(oracle_words(covered)) >= n
    overlap, total = idx.overlap_counts(iter(docs), batch_size=2)
    assert overlap.dtype == total.dtype == np.int64
    want = [brute(ref_words, oracle_words(d), n)[:2] for d in docs]
    assert list(zip(overlap.tolist(), total.tolist())) == want


@settings(max_examples=40)
@given(
    st.lists(st.lists(st.integers(-3, 4), max_size=12), min_size=1, max_size=4),
    st.lists(st.lists(st.integers(-3, 4), max_size=12), min_size=1, max_size=4),
    st.integers(1, 4),
)
def test_id_scan_matches_brute_force(refs: list[list[int]], docs: list[list[int]], n: int) -> None:
    idx = NGramIndex.build([np.array(r, dtype=np.int16) for r in refs], n=n)
    for rep, d in zip(idx.scan(docs), docs):
        assert (rep.overlap, rep.total, rep.reference_ids) == brute(refs, d, n)
        for a, b in rep.spans:
            assert 0 <= a < b <= len(d)
    overlap, total = idx.overlap_counts(docs, batch_size=3)
    assert list(zip(overlap.tolist(), total.tolist())) == [brute(refs, d, n)[:2] for d in docs]
    empty = idx.overlap_counts([])
    assert empty[0].shape == empty[1].shape == (0,)


def oracle_spans(refs: list[str], doc: str, n: int) -> list[tuple[int, int]]:
    """Merged character spans of the doc's n-grams that occur in some reference (words as in
    :func:`oracle_words`, spans from the regex match positions)."""
    ref_grams = set()
    for r in refs:
        w = oracle_words(r)
        ref_grams.update(tuple(w[i : i + n]) for i in range(len(w) - n + 1))
    ms = list(re.finditer(r"[^\W_]+", doc))
    w = [m.group().lower() for m in ms]
    out: list[tuple[int, int]] = []
    for i in range(len(w) - n + 1):
        if tuple(w[i : i + n]) in ref_grams:
            a, b = ms[i].start(), ms[i + n - 1].end()
            if out and a <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], b))
            else:
                out.append((a, b))
    return out


@settings(max_examples=80)
@given(
    st.lists(st.text(ALPHABET, max_size=40), min_size=1, max_size=4),
    st.lists(st.text(ALPHABET, max_size=40), max_size=6),
    st.integers(1, 3),
    st.integers(1, 7),
)
def test_unicode_scan_reports_match_oracle(refs: list[str], docs: list[str], n: int, batch: int) -> None:
    """Empty, one-character, whitespace-run and non-ASCII documents; reports must not depend on the
    batching (the binding returns each batch as flat columns)."""
    idx = NGramIndex.build(refs, n=n, batch_size=batch)
    reps = idx.scan_all(docs, batch_size=batch)
    assert [r.index for r in reps] == list(range(len(docs)))
    assert reps == idx.scan_all(docs, batch_size=len(docs) + 1)
    ref_words = [oracle_words(r) for r in refs]
    for rep, d in zip(reps, docs):
        assert (rep.overlap, rep.total, rep.reference_ids) == brute(ref_words, oracle_words(d), n)
        assert rep.spans == oracle_spans(refs, d, n)
        assert all(type(x) is int for x in [rep.overlap, rep.total, *rep.reference_ids])
        assert all(type(s) is tuple and len(s) == 2 for s in rep.spans)
    no_spans = idx.scan_all(docs, spans=False)
    assert [(r.overlap, r.reference_ids, r.spans) for r in no_spans] == [
        (r.overlap, r.reference_ids, []) for r in reps
    ]


def test_lone_surrogate_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError):
        NGramIndex.build(["ok text", "bad \ud800 text"], n=1)
    idx = NGramIndex.build(["ok text"], n=1)
    with pytest.raises(InvalidArgumentError):
        idx.scan_all(["bad \ud800"])


def test_spans_are_character_offsets() -> None:
    idx = NGramIndex.build(["The quick brown fox jumps"], n=3)
    doc = "Yesterday, THE quick-brown fox slept."
    (rep,) = idx.scan_all([doc])
    assert rep.overlap == 2 and rep.reference_ids == [0]
    assert [doc[a:b] for a, b in rep.spans] == ["THE quick-brown fox"]
    assert rep.fraction == pytest.approx(2 / 4)


def test_bad_input() -> None:
    with pytest.raises(InvalidArgumentError):
        NGramIndex.build(["a b"], n=0)
    with pytest.raises(InvalidTypeError):
        NGramIndex.build(["a b", [1, 2]], n=1)
    idx = NGramIndex.build(["a b c"], n=2)
    with pytest.raises(InvalidTypeError):
        list(idx.scan([[1, 2, 3]]))
    with pytest.raises(InvalidTypeError):
        NGramIndex.build([[1.5, 2.0]], n=1)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = tmp_path / "test.jsonl"
    ref.write_text(
        "\n".join(
            json.dumps({"text": t}) for t in ["what is two plus two equal to", "name the capital of france"]
        )
    )
    inp = tmp_path / "train.txt"
    inp.write_text(
        "Q: What is two plus two? A: four\nan unrelated line of text here\nname the capital of France!\n"
    )
    out = tmp_path / "report.jsonl"
    rc = cli_main(["decontaminate", "--reference", str(ref), "--n", "3", str(inp), "--output", str(out)])
    assert rc == 0
    summary = capsys.readouterr().out
    assert "scanned: 3 documents" in summary and "flagged: 2" in summary
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["flagged"] for r in rows] == [True, False, True]
    assert rows[0]["reference_ids"] == [0] and rows[2]["reference_ids"] == [1]
    assert rows[2]["fraction"] == 1.0
    with pytest.raises(StepfuseIOError):
        cli_main(["decontaminate", "--reference", str(tmp_path / "missing"), str(inp)])
