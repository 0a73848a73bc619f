"""Benchmarks of stepfuse.ngram: counting, batched 5-gram queries, no-repeat blocking, decontamination.

Data: Zipf-distributed ids (V = 32k, sentences of 25 tokens; ``NGRAM_BENCH_TOKENS`` sets the corpus size,
default 10^7) and real English text: CPython's ``pydoc_data`` topics, which ship with every Python.
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness import Case, bench
from stepfuse.ngram import NGramCounts, NGramIndex, NGramLM, NoRepeatNGram

V = 32_000
TOKENS = int(os.environ.get("NGRAM_BENCH_TOKENS", 10_000_000))
SENT = 25


def zipf_corpus(tokens: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = (rng.zipf(1.1, size=tokens) - 1) % V
    offsets = np.arange(0, tokens + 1, SENT)
    if offsets[-1] != tokens:
        offsets = np.append(offsets, tokens)
    return ids.astype(np.uint16), offsets


def real_text_lines() -> list[str]:
    import pydoc_data.topics as topics

    text = "\n".join(topics.topics.values())
    return [ln for ln in (" ".join(x.split()) for x in text.splitlines()) if ln]


def numpy_unique_counts(ids: np.ndarray, orders: range) -> int:
    """Baseline: n-grams as fixed-width byte rows, counted with np.unique (one sort per order)."""
    total = 0
    for n in orders:
        win = np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(ids, n))
        rows = win.view(np.dtype((np.void, win.dtype.itemsize * n))).ravel()
        _, counts = np.unique(rows, return_counts=True)
        total += counts.size
    return total


@bench("ngram/count-zipf-orders1-5", target="<= 1 s for orders 2-6 of 1e7 tokens on 2 cores")
def _count() -> Case:
    ids, offs = zipf_corpus(TOKENS)
    t6 = []
    for _ in range(3):
        t0 = time.perf_counter()
        NGramCounts.count_flat(ids, offs, 6, vocab_size=V)
        t6.append(time.perf_counter() - t0)
    return Case(
        ours=lambda: NGramCounts.count_flat(ids, offs, 5, vocab_size=V),
        baselines={"numpy np.unique per order": lambda: numpy_unique_counts(ids, range(1, 6))},
        info={"tokens": TOKENS, "orders 1-6 median of 3 (s)": round(sorted(t6)[1], 3)},
        per=TOKENS,
        repeats=3,
        baseline_repeats=1,
    )


def python_counter(lines: list[list[str]], order: int) -> int:
    tables = [Counter() for _ in range(order + 1)]
    for s in lines:
        t = ["<s>", *s, "</s>"]
        for n in range(1, order + 1):
            tables[n].update(zip(*[t[i:] for i in range(n)]))
    return sum(len(t) for t in tables)


@bench("ngram/train-mkn5-real-text", target="faster than Python dict counting alone")
def _train_real() -> Case:
    lines = real_text_lines()
    toks = [ln.split() for ln in lines]
    n_tok = sum(len(t) for t in toks)
    return Case(
        ours=lambda: NGramLM.train(toks, 5),
        baselines={"python Counter (count only)": lambda: python_counter(toks, 5)},
        info={"sentences": len(lines), "tokens": n_tok},
        per=n_tok,
        repeats=3,
    )


@bench("ngram/query-5gram-batched", target=">= 5M queries/s per core; parity or better vs kenlm")
def _query() -> Case:
    train_tokens = min(TOKENS, 2_000_000)
    ids, offs = zipf_corpus(train_tokens, seed=1)
    lm = NGramLM.from_counts(NGramCounts.count_flat(ids, offs, 5, vocab_size=V))
    test, _ = zipf_corpus(1_000_000, seed=2)
    test = test.astype(np.int64)
    sent = test.reshape(-1, SENT)
    q = sent.size
    # every position of every test sentence, with its in-sentence history (<s> first)
    padded = np.concatenate(
        [np.full((sent.shape[0], 3), -1), np.full((sent.shape[0], 1), lm.bos_id), sent], axis=1
    )
    ctx = np.lib.stride_tricks.sliding_window_view(padded, 4, axis=1)[:, :SENT].reshape(-1, 4).copy()
    toks = sent.reshape(-1).copy()
    baselines = {}
    info: dict[str, object] = {
        "queries": q,
        "ngrams": lm.num_ngrams(),
        "bytes/ngram": round(lm.bytes_per_ngram, 2),
    }
    try:
        import kenlm

        tmp = Path(tempfile.mkdtemp())
        words = [f"w{i}" for i in range(V)]
        lm.write_arpa(tmp / "m.arpa", words)
        km = kenlm.Model(str(tmp / "m.arpa"))
        lines = [" ".join(words[x] for x in row) for row in sent]

        def kenlm_scores() -> float:
            return sum(km.score(s, bos=True, eos=False) for s in lines)

        baselines["kenlm Model.score sentences"] = kenlm_scores
        ours_total = float(np.sum(lm.score(ctx, toks), dtype=np.float64)) / np.log(10)
        info["|sum log10 ours - kenlm|"] = round(abs(ours_total - kenlm_scores()), 4)
    except ImportError:
        info["kenlm"] = "not installed (pip install kenlm)"
    return Case(
        ours=lambda: lm.score(ctx, toks),
        baselines=baselines,
        info=info,
        per=q,
        repeats=5,
    )


@bench("ngram/norepeat-B32-L4096-step", target=">= 20x transformers, <= 10 us per step")
def _norepeat() -> Case:
    import torch
    from transformers import NoRepeatNGramLogitsProcessor as HFNoRepeat

    from stepfuse.ngram import NoRepeatNGramLogitsProcessor

    b, length, vocab, n = 32, 4096, V, 3
    rng = np.random.default_rng(3)
    prompts = (rng.zipf(1.3, size=(b, length)) - 1) % vocab
    state = NoRepeatNGram(n, prompts=prompts)
    logits = rng.standard_normal((b, vocab)).astype(np.float32)
    new = np.zeros(b, dtype=np.int64)
    hf = HFNoRepeat(n)
    ids_t = torch.from_numpy(prompts)
    scores_t = torch.from_numpy(logits.copy())
    ours_proc = NoRepeatNGramLogitsProcessor(n)
    ours_proc(ids_t, scores_t)

    def step() -> None:
        state.update(new)
        state.apply(logits)

    t0 = time.perf_counter()
    for _ in range(20):
        ours_proc(ids_t, scores_t)
    proc_us = (time.perf_counter() - t0) / 20 * 1e6
    return Case(
        ours=step,
        baselines={"transformers NoRepeatNGram": lambda: hf(ids_t, scores_t)},
        info={"our drop-in processor per call (us, full input_ids sync)": round(proc_us, 1)},
        repeats=5,
        baseline_repeats=3,
    )


def python_13gram_scan(ref: set[tuple[str, ...]], docs: list[str], n: int) -> int:
    hits = 0
    for d in docs:
        w = re.findall(r"[^\W_]+", d.lower())
        hits += sum(tuple(w[i : i + n]) in ref for i in range(len(w) - n + 1))
    return hits


def rayon_threads() -> int:
    """Threads rayon uses in this process: ``RAYON_NUM_THREADS``, else the CPUs this process may run on."""
    env = os.environ.get("RAYON_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def per_core(fn: Callable[[], object], repeats: int, warm_up: bool = True) -> tuple[float, float]:
    """Medians of (wall seconds, CPU seconds of this process, all threads) per call of ``fn``."""
    if warm_up:
        fn()
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


@bench("ngram/decontaminate-13gram-scan", target=">= 250 MB/s per core")
def _decontam() -> Case:
    """The target is per core: the scan runs on rayon's threads, the Python baseline on one, so besides the
    wall-clock ratio this reports MB per CPU-second (process CPU time, all threads) and MB/s / threads."""
    lines = real_text_lines()
    docs = [" ".join(lines[i : i + 8]) for i in range(0, len(lines), 8)]
    docs = docs * max(1, 20_000_000 // max(sum(len(d) for d in docs), 1))
    refs = docs[: len(docs) // 50 : 7]
    idx = NGramIndex.build(refs, n=13)
    ref_set = set()
    for r in refs:
        w = re.findall(r"[^\W_]+", r.lower())
        ref_set.update(tuple(w[i : i + 13]) for i in range(len(w) - 12))
    nbytes = sum(len(d.encode()) for d in docs)
    mb = nbytes / 1e6

    def ours() -> int:
        # the columnar API a corpus-scale filter calls (one report object per document is measured below)
        return int(idx.overlap_counts(docs, batch_size=4096)[0].sum())

    def ours_reports() -> int:
        return sum(r.overlap for r in idx.scan(docs, batch_size=4096, spans=False))

    def baseline() -> int:
        return python_13gram_scan(ref_set, docs, 13)

    threads = rayon_threads()
    assert ours() == ours_reports()
    wall, cpu = per_core(ours, repeats=5)
    _, cpu_reports = per_core(ours_reports, repeats=3)
    base_wall, _ = per_core(baseline, repeats=1, warm_up=False)
    return Case(
        ours=ours,
        baselines={"python 13-gram set scan": baseline},
        info={
            "MB scanned": round(mb, 1),
            "reference docs": len(refs),
            "threads (rayon)": threads,
            "ours MB per CPU-second": round(mb / cpu, 1),
            "scan() with a DocReport per doc, MB per CPU-second": round(mb / cpu_reports, 1),
            "ours MB/s per core (wall x threads)": round(mb / (wall * threads), 1),
            "python baseline MB/s (1 core)": round(mb / base_wall, 1),
            "per-core ratio (CPU time) vs python": round(base_wall / cpu, 2),
        },
        per=nbytes,
        repeats=3,
        baseline_repeats=1,
    )
