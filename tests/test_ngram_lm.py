"""NGramLM / NGramCounts: lmplz parity, pure-Python oracles, normalization, query conventions."""

from __future__ import annotations

import gzip
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from _ngram_oracle import BOS, EOS, UNK, interpolated_mle, mkn, raw_counts, read_arpa
from hypothesis import given, settings
from hypothesis import strategies as st

import stepfuse
from stepfuse.errors import InvalidArgumentError, InvalidTypeError, OutOfRangeError
from stepfuse.ngram import NGramCounts, NGramLM

DATA = Path(__file__).parent / "data" / "ngram"
LN10 = math.log(10.0)


@pytest.fixture(scope="module")
def corpus_lines() -> list[str]:
    return (DATA / "corpus.txt").read_text(encoding="utf-8").splitlines()


def _ids_of(lm: NGramLM, words: tuple) -> list[int]:
    special = {BOS: lm.bos_id, EOS: lm.eos_id, UNK: lm.unk_id}
    return [special[w] if w in special else w for w in words]


def test_public_api_exported() -> None:
    assert stepfuse.NGramLM is NGramLM
    assert "NGramCounts" in stepfuse.__all__


@pytest.mark.parametrize("order", [2, 3, 5])
def test_entries_match_lmplz(corpus_lines: list[str], order: int) -> None:
    """Every n-gram lmplz wrote is stored with the same log10 probability and backoff (1e-4), and the
    stored n-gram counts per order equal lmplz's."""
    lm = NGramLM.train(corpus_lines, order, discount_fallback=None)
    ref = read_arpa(gzip.decompress((DATA / f"corpus.o{order}.arpa.gz").read_bytes()).decode("utf-8"))
    for n in range(1, order + 1):
        assert lm.num_ngrams(n) == len(ref[n]), n
        worst = 0.0
        for words, (p10, b10) in ref[n].items():
            got = lm._inner.entry(lm.encode(list(words)))
            assert got is not None, words
            worst = max(worst, abs(got[0] / LN10 - p10))
            if b10 is not None:
                worst = max(worst, abs(got[1] / LN10 - b10))
        assert worst < 1e-4, (n, worst)


def _random_corpus(seed: int, n_sent: int, vocab: int, max_len: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [list(rng.zipf(1.6, size=rng.integers(0, max_len + 1)) % vocab) for _ in range(n_sent)]


@pytest.mark.parametrize(("seed", "order"), [(0, 1), (1, 2), (2, 3), (3, 4)])
def test_mkn_matches_python_oracle(seed: int, order: int) -> None:
    sents = _random_corpus(seed, 300, 40, 12)
    lm = NGramLM.train(sents, order, vocab_size=40)
    fb = (0.5, 1.0, 1.5)
    want = mkn([[int(x) for x in s] for s in sents], order, list(range(40)), fallback=fb)
    for n in range(1, order + 1):
        if n > 1:
            assert lm.num_ngrams(n) == len(want[n])
        for g, (p, b) in want[n].items():
            got = lm._inner.entry(_ids_of(lm, g))
            assert got is not None
            assert got[0] == pytest.approx(p, abs=1e-5), g
            if b is not None:
                assert got[1] == pytest.approx(b, abs=1e-5), g


@pytest.mark.parametrize("smoothing", ["modified_kneser_ney", "interpolated_mle"])
@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_distributions_sum_to_one(smoothing: str, order: int) -> None:
    sents = _random_corpus(7, 200, 30, 10)
    lm = NGramLM.train(sents, order, smoothing=smoothing, vocab_size=32)
    every = np.array([w for w in range(lm.vocab_size + 3) if w != lm.bos_id])
    rng = np.random.default_rng(0)
    ctxs = [
        [],
        [lm.bos_id],
        [lm.bos_id, 3],
        *[list(s[-4:]) for s in sents[:20]],
        list(rng.integers(0, 32, 4)),
    ]
    for c in ctxs:
        rows = lm.score([c], every[None, :])[0].astype(np.float64)
        assert abs(np.exp(rows).sum() - 1.0) < 1e-5, c
        dense = lm.next_logprobs([c])[0]
        np.testing.assert_allclose(dense, rows[: lm.vocab_size], atol=1e-5)


def test_interpolated_mle_matches_oracle() -> None:
    sents = _random_corpus(11, 80, 12, 8)
    weights = [0.1, 0.3, 0.6]
    lm = NGramLM.train(sents, 3, smoothing="interpolated_mle", weights=weights, vocab_size=12)
    toks = [[int(x) for x in s] for s in sents]
    for ctx in ([], [BOS], [BOS, 3], [3, 4], [5], [11, 11], [EOS, 2]):
        for w in [*range(12), EOS]:
            want = interpolated_mle(toks, 3, weights, ctx, w)
            got = lm.logprob(_ids_of(lm, tuple(ctx)), _ids_of(lm, (w,))[0])
            if math.isinf(want):
                assert got == -math.inf
            else:
                assert got == pytest.approx(want, abs=1e-5), (ctx, w)


def test_zero_mass_is_neg_inf() -> None:
    lm = NGramLM.train([[0, 1], [0, 1]], 2, smoothing="interpolated_mle", weights=[0.0, 1.0], vocab_size=3)
    assert lm.logprob([0], 2) == -math.inf
    assert lm.logprob([0], 1) == pytest.approx(0.0)


def test_score_shapes_padding_and_batch_equivalence() -> None:
    sents = _random_corpus(5, 200, 50, 15)
    lm = NGramLM.train(sents, 4)
    rng = np.random.default_rng(1)
    ctx = rng.integers(0, 50, size=(16, 6)).astype(np.int32)
    ctx[3, :4] = -1  # history of 2
    ctx[4, :] = -7  # no history
    toks = rng.integers(0, 50, size=(16, 5)).astype(np.uint16)
    out = lm.score(ctx, toks)
    assert out.shape == (16, 5) and out.dtype == np.float32
    for i in range(16):
        hist = (
            [int(x) for x in ctx[i] if x >= 0][-3:]
            if i not in (3, 4)
            else ([] if i == 4 else list(ctx[i, 4:]))
        )
        for j in range(5):
            assert out[i, j] == pytest.approx(lm.logprob(hist, int(toks[i, j])), abs=1e-6)
    one = lm.score(ctx, toks[:, 0])
    assert one.shape == (16,)
    np.testing.assert_array_equal(one, out[:, 0])
    # only the last order-1 columns matter
    wide = np.concatenate([rng.integers(0, 50, size=(16, 9)), ctx], axis=1)
    wide[3, :9] = 5
    np.testing.assert_array_equal(lm.score(wide[:, -3:], toks), lm.score(ctx[:, -3:], toks))
    # ragged batch of sequences
    rows = lm.next_logprobs([[1, 2, 3, 4, 5], [7], []])
    assert rows.shape == (3, lm.vocab_size)
    np.testing.assert_allclose(rows[1], lm.score([[7]], np.arange(lm.vocab_size)[None])[0], atol=1e-6)
    assert np.array_equal(lm([[7]]), lm.next_logprobs([[7]]))


def test_sentence_logprob_and_perplexity() -> None:
    sents = _random_corpus(3, 100, 20, 8)
    lm = NGramLM.train(sents, 3)
    s = [int(x) for x in sents[0]]
    hist = [lm.bos_id]
    want = 0.0
    for w in [*s, lm.eos_id]:
        want += lm.logprob(hist[-2:], w)
        hist.append(w)
    assert lm.sentence_logprob(s) == pytest.approx(want, abs=1e-4)
    ppl = lm.perplexity(sents[:10])
    assert 1.0 < ppl < 100.0


def test_words_and_unk(corpus_lines: list[str]) -> None:
    lm = NGramLM.train(corpus_lines[:500], 3)
    assert lm.words is not None and len(lm.words) == lm.vocab_size
    ids = lm.encode("The statement zzzunknownzzz")
    assert ids[-1] == lm.unk_id
    assert lm.logprob("The", "statement") == lm.logprob(ids[:1], int(ids[1]))
    assert math.isfinite(lm.logprob(["The"], "zzzunknownzzz"))


def test_counts_merge_equals_whole() -> None:
    sents = _random_corpus(9, 120, 25, 9)
    whole = NGramCounts.count(sents, 3, vocab_size=25)
    a = NGramCounts.count(sents[:50], 3, vocab_size=25)
    b = NGramCounts.count(sents[50:], 3, vocab_size=25)
    m = a.merge(b)
    for n in (1, 2, 3):
        np.testing.assert_array_equal(m.ngrams(n)[0], whole.ngrams(n)[0])
        np.testing.assert_array_equal(m.ngrams(n)[1], whole.ngrams(n)[1])
    assert m.tokens == whole.tokens and m.sentences == whole.sentences
    lm1 = NGramLM.from_counts(m)
    lm2 = NGramLM.from_counts(whole)
    ctx = np.array([[1, 2]])
    np.testing.assert_array_equal(lm1.next_logprobs(ctx), lm2.next_logprobs(ctx))
    with pytest.raises(InvalidArgumentError):
        a.merge(NGramCounts.count(sents, 2, vocab_size=25))
    with pytest.raises(InvalidArgumentError):
        a.merge(NGramCounts.count(sents, 3, vocab_size=26))


@settings(max_examples=40)
@given(
    st.lists(st.lists(st.integers(0, 6), max_size=7), min_size=1, max_size=8),
    st.integers(1, 4),
)
def test_counts_match_brute_force(sents: list[list[int]], order: int) -> None:
    c = NGramCounts.count([np.array(s, dtype=np.int8) for s in sents], order, vocab_size=7)
    want = raw_counts(sents, order)
    special = {7: UNK, 8: BOS, 9: EOS}
    for n in range(1, order + 1):
        ids, counts = c.ngrams(n)
        got = Counter({tuple(special.get(int(x), int(x)) for x in g): int(k) for g, k in zip(ids, counts)})
        assert got == want[n]


def test_bad_input() -> None:
    with pytest.raises(InvalidArgumentError):
        NGramLM.train([[1, 2]], 0)
    with pytest.raises(InvalidArgumentError):
        NGramLM.train([], 3)
    with pytest.raises(InvalidArgumentError):
        NGramLM.train([[], []], 2)
    with pytest.raises(OutOfRangeError):
        NGramLM.train([[1, 5]], 2, vocab_size=3)
    with pytest.raises(OutOfRangeError):
        NGramLM.train([[1, -5]], 2)
    with pytest.raises(InvalidTypeError):
        NGramLM.train([np.array([1.0, 2.0])], 2)
    with pytest.raises(InvalidArgumentError):
        NGramLM.train([[1, 2]], 2, smoothing="witten_bell")
    with pytest.raises(InvalidArgumentError):
        NGramLM.train([[1, 2]], 2, smoothing="interpolated_mle", weights=[1.0])
    with pytest.raises(InvalidArgumentError):
        NGramLM.train([[1, 2]], 2, smoothing="interpolated_mle", weights=[1.0, float("nan")])
    with pytest.raises(InvalidArgumentError):
        NGramLM.train([[1, 2, 1, 2, 3]], 3, discount_fallback=None)
    with pytest.raises(InvalidArgumentError):
        NGramLM.train(["a <s> b"], 2)
    lm = NGramLM.train([[1, 2, 3]], 2)
    with pytest.raises(OutOfRangeError):
        lm.score([[1]], [lm.vocab_size + 3])
    with pytest.raises(OutOfRangeError):
        lm.score([[lm.vocab_size + 3]], [1])
    with pytest.raises(OutOfRangeError):
        lm.score([[1]], [-1])
    with pytest.raises(InvalidArgumentError):
        lm.score([[1], [2]], [1])
    with pytest.raises(InvalidTypeError):
        lm.score(np.array([[1.5]]), [1])
    with pytest.raises(InvalidArgumentError):
        lm.encode("a b")


@pytest.mark.parametrize("order", [2, 3, 5])
def test_write_arpa_equals_lmplz(corpus_lines: list[str], order: int, tmp_path: Path) -> None:
    """write_arpa gives lmplz's exact n-gram sets with values within 1e-4."""
    lm = NGramLM.train(corpus_lines, order, discount_fallback=None)
    out = tmp_path / "m.arpa"
    lm.write_arpa(out)
    got = read_arpa(out.read_text(encoding="utf-8"))
    ref = read_arpa(gzip.decompress((DATA / f"corpus.o{order}.arpa.gz").read_bytes()).decode("utf-8"))
    assert got.keys() == ref.keys()
    for n in ref:
        assert got[n].keys() == ref[n].keys(), n
        for g, (p, b) in ref[n].items():
            gp, gb = got[n][g]
            assert abs(gp - p) < 1e-4, g
            assert (b is None) == (gb is None), g
            if b is not None:
                assert abs(gb - b) < 1e-4, g


def test_read_arpa_scores_like_trained(corpus_lines: list[str], tmp_path: Path) -> None:
    lm = NGramLM.train(corpus_lines, 3)
    ref = NGramLM.read_arpa(DATA / "corpus.o3.arpa.gz")
    assert ref.order == 3 and ref.num_ngrams(3) == lm.num_ngrams(3)
    for line in corpus_lines[:50]:
        assert ref.sentence_logprob(line) == pytest.approx(lm.sentence_logprob(line), abs=1e-3)
    assert ref.logprob("the", "zzunseen") == pytest.approx(lm.logprob("the", "zzunseen"), abs=1e-4)
    # round trip through our own writer
    p = tmp_path / "r.arpa"
    ref.write_arpa(p)
    again = NGramLM.read_arpa(p)
    ctx = [ref.encode("<s> The"), ref.encode("of the")]
    np.testing.assert_allclose(again.next_logprobs(ctx), ref.next_logprobs(ctx), atol=1e-5)


@pytest.mark.parametrize("smoothing", ["modified_kneser_ney", "interpolated_mle"])
@pytest.mark.parametrize("mmap", [True, False])
def test_binary_round_trip_and_bytes_per_ngram(
    corpus_lines: list[str], smoothing: str, mmap: bool, tmp_path: Path
) -> None:
    lm = NGramLM.train(corpus_lines, 4, smoothing=smoothing)
    assert lm.bytes_per_ngram <= 12.0
    p = tmp_path / "m.bin"
    lm.save(p)
    words_bytes = len(repr(lm.words).encode())
    assert (p.stat().st_size - words_bytes) / lm.num_ngrams() <= 12.0
    back = NGramLM.load(p, mmap=mmap)
    assert back.words == lm.words and back.order == 4 and back.smoothing == lm.smoothing
    rng = np.random.default_rng(0)
    ctx = rng.integers(-1, lm.vocab_size, size=(20, 3))
    toks = rng.integers(0, lm.vocab_size + 3, size=(20, 7))
    np.testing.assert_array_equal(back.score(ctx, toks), lm.score(ctx, toks))
    np.testing.assert_allclose(back.next_logprobs(ctx[:3]), lm.next_logprobs(ctx[:3]), atol=1e-6)
    with pytest.raises(InvalidArgumentError):
        back.write_arpa(tmp_path / "x.arpa")  # saved without the n-gram list
    lm.save(p, ngrams=True)
    full = NGramLM.load(p, mmap=mmap)
    if smoothing == "modified_kneser_ney":
        full.write_arpa(tmp_path / "y.arpa")
        assert (tmp_path / "y.arpa").stat().st_size > 0


def test_corrupt_files_raise_format_errors(tmp_path: Path) -> None:
    from stepfuse.errors import FormatError, StepfuseIOError

    lm = NGramLM.train(_random_corpus(1, 100, 20, 8), 3)
    p = tmp_path / "m.bin"
    lm.save(p, ngrams=True)
    data = p.read_bytes()
    for cut in (0, 5, 16, 60, len(data) // 3, len(data) - 3):
        p.write_bytes(data[:cut])
        for mm in (True, False):
            with pytest.raises(FormatError, match="byte offset"):
                NGramLM.load(p, mmap=mm)
    p.write_bytes(b"X" + data[1:])
    with pytest.raises(FormatError):
        NGramLM.load(p)
    with pytest.raises(StepfuseIOError):
        NGramLM.load(tmp_path / "missing.bin")
    a = tmp_path / "m.arpa"
    lm.write_arpa(a)
    text = a.read_text()
    a.write_text(text[: len(text) // 2])
    with pytest.raises(FormatError, match="line"):
        NGramLM.read_arpa(a)
    a.write_text(text.replace("\\2-grams:", "\\7-grams:"))
    with pytest.raises(FormatError, match="line"):
        NGramLM.read_arpa(a)
    mle = NGramLM.train([[1, 2]], 2, smoothing="interpolated_mle")
    with pytest.raises(InvalidArgumentError):
        mle.write_arpa(tmp_path / "z.arpa")


def test_count_flat_equals_count() -> None:
    sents = _random_corpus(4, 50, 20, 9)
    flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in sents])
    offs = np.cumsum([0, *[len(s) for s in sents]])
    a = NGramCounts.count_flat(flat.astype(np.uint16), offs, 3, vocab_size=20)
    b = NGramCounts.count(sents, 3, vocab_size=20)
    for n in (1, 2, 3):
        np.testing.assert_array_equal(a.ngrams(n)[1], b.ngrams(n)[1])
    with pytest.raises(InvalidArgumentError):
        NGramCounts.count_flat(flat, offs[:-1], 3)
