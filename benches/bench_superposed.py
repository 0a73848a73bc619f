"""Superposed Decoding: k=3 drafts from one pass vs k sampled runs; the batched n-gram filter step.

Models: a tiny byte-level GPT-2 trained here for a few seconds on Python standard-library docstrings
(so its perplexities mean something), and a randomly initialized GPT-2-small-sized model (124M
parameters, vocabulary 50257: the largest that is quick on 2 CPU cores; its weights are random, so
only its times are meaningful). Torch runs on one thread for steady timings on a shared machine.
"""

from __future__ import annotations

import math
import pydoc
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness import Case, bench, time_callable

K, NEW, PROMPT = 3, 10, 16
ORDER = 6
WEIGHTS = [0.0, 0.01, 0.04, 0.15, 0.18, 0.12]  # the paper's tuned weights of orders 2..6; no unigram
_STATE: dict[str, Any] = {}


# --------------------------------------------------------------------------------------------------
# the Python dict-of-dicts reference of the filter (same estimate as NGramLM's interpolated MLE)


class DictNGram:
    """Interpolated MLE in Python dicts: ``tables[n][context tuple][token] = count``, orders 1..N.

    ``p(w|c) = Σ_n λ_n c(c_{n-1} w)/c(c_{n-1}·) / Σ_n λ_n`` over the orders whose context was seen
    (sentences padded with ``<s>``/``</s>`` like NGramLM's training; ids as NGramLM numbers them).
    """

    def __init__(self, sentences: Sequence[np.ndarray], order: int, weights: Sequence[float], vocab: int):
        self.order, self.weights = order, list(weights)
        bos, eos = vocab + 1, vocab + 2
        self.tables: list[dict[tuple[int, ...], dict[int, int]]] = [{} for _ in range(order)]
        self.totals: list[dict[tuple[int, ...], int]] = [{} for _ in range(order)]
        for s in sentences:
            seq = [bos, *s.tolist(), eos]
            for n in range(1, order + 1):
                table, totals = self.tables[n - 1], self.totals[n - 1]
                for i in range(max(n - 1, 1), len(seq)):
                    ctx = tuple(seq[i - n + 1 : i])
                    row = table.get(ctx)
                    if row is None:
                        row = table[ctx] = {}
                    row[seq[i]] = row.get(seq[i], 0) + 1
                    totals[ctx] = totals.get(ctx, 0) + 1

    def score(self, contexts: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """``log p(token | context)`` for ``[R, W]`` contexts (negative = padding) and ``[R, K]`` tokens."""
        W = self.order - 1
        out = np.empty(tokens.shape, dtype=np.float32)
        for r, (ctx_row, tok_row) in enumerate(zip(contexts.tolist(), tokens.tolist())):
            ctx = ctx_row[len(ctx_row) - W :] if W else []
            for i in range(len(ctx) - 1, -1, -1):  # history = what follows the rightmost padding
                if ctx[i] < 0:
                    ctx = ctx[i + 1 :]
                    break
            seen = []
            for n in range(1, min(self.order, len(ctx) + 1) + 1):
                c = tuple(ctx[len(ctx) - (n - 1) :]) if n > 1 else ()
                row = self.tables[n - 1].get(c)
                if row is not None:
                    seen.append((self.weights[n - 1], row, self.totals[n - 1][c]))
            norm = sum(w for w, _, _ in seen)
            for j, y in enumerate(tok_row):
                p = sum(w * row.get(y, 0) / tot for w, row, tot in seen)
                out[r, j] = math.log(p / norm) if p > 0 and norm > 0 else -math.inf
        return out


def reference_style_step(ref: DictNGram, ctx: Any, top: Any, vocab: int) -> Any:
    """The reference implementation's filter-step structure, re-written: a dense ``[B, k, V]`` torch
    buffer, and per (prompt, draft, candidate, order) a key built from a tensor slice via ``tolist``
    (its weights are not renormalized over seen orders; a timing baseline, not a value oracle)."""
    import torch

    B, k, W = ctx.shape
    out = torch.zeros(B, k, vocab)
    for b in range(B):
        cands = top[b].tolist()
        for d in range(k):
            for y in cands:
                for h in range(1, W + 1):
                    key = tuple(ctx[b, d, W - h :].tolist())
                    row = ref.tables[h].get(key)
                    if row is not None:
                        out[b, d, y] += ref.weights[h] * row.get(y, 0) / ref.totals[h][key]
    return out


# --------------------------------------------------------------------------------------------------
# data and models


def _docstring_text() -> bytes:
    import asyncio
    import collections
    import email
    import json
    import logging
    import os
    import pathlib
    import re
    import statistics
    import string
    import textwrap
    import threading
    import unittest

    mods = [
        collections, json, logging, os, pathlib, re, statistics, string, textwrap, threading, unittest, email,
        asyncio,
    ]  # fmt: skip
    parts = []
    for mod in mods:
        parts.append(pydoc.getdoc(mod))
        for name in dir(mod):
            obj = getattr(mod, name, None)
            doc = pydoc.getdoc(obj) if obj is not None else ""
            if doc and len(doc) > 80:
                parts.append(doc)
    return "\n\n".join(dict.fromkeys(parts)).encode("utf-8")


def _threads() -> None:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)


def _tiny_trained() -> tuple[Any, np.ndarray, np.ndarray]:
    """A byte-level 2-layer GPT-2 trained for ~300 steps on docstrings; (model, train ids, held-out ids)."""
    if "tiny" in _STATE:
        return _STATE["tiny"]
    import torch
    import transformers

    _threads()
    data = np.frombuffer(_docstring_text(), dtype=np.uint8).astype(np.int64)
    cut = int(len(data) * 0.95)
    train, held = data[:cut], data[cut:]
    cfg = transformers.GPT2Config(
        vocab_size=256, n_positions=128, n_embd=64, n_layer=2, n_head=4, bos_token_id=None, eos_token_id=None
    )
    model = transformers.GPT2LMHeadModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    tt = torch.from_numpy(train)
    for _ in range(300):
        starts = torch.from_numpy(rng.integers(0, len(train) - 65, size=16))
        batch = tt[starts[:, None] + torch.arange(65)]
        loss = model(input_ids=batch[:, :-1], labels=batch[:, :-1]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    _STATE["tiny"] = (model, train, held)
    return _STATE["tiny"]


def _gpt2_small() -> Any:
    if "small" not in _STATE:
        import transformers

        _threads()
        cfg = transformers.GPT2Config(bos_token_id=None, eos_token_id=None)  # 124M parameters, random init
        _STATE["small"] = transformers.GPT2LMHeadModel(cfg).eval()
    return _STATE["small"]


def _zipf(n: int, vocab: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.minimum(rng.zipf(1.2, size=n) - 1, vocab - 1).astype(np.int64)


def _sentences(ids: np.ndarray, length: int = 64) -> list[np.ndarray]:
    return [ids[i : i + length] for i in range(0, len(ids) - length + 1, length)]


def _perplexity(model: Any, prompt: Any, drafts: Any) -> float:
    """Mean model perplexity (temperature 1) of drafts ``[n, T]`` after a prompt ``[1, L]`` (full forward)."""
    import torch

    n, L = drafts.shape[0], prompt.shape[1]
    with torch.inference_mode():
        seq = torch.cat([prompt.expand(n, -1), drafts], dim=1)
        lp = torch.log_softmax(model(seq).logits[:, L - 1 : -1].float(), -1)
        nll = -lp.gather(2, drafts.unsqueeze(2)).squeeze(2).mean(1)
    return float(torch.exp(nll).mean())


def _generation_case(model: Any, ngram: Any, prompts: list[Any], quality: bool) -> Case:
    import torch

    from stepfuse.superposed import superposed_generate

    prompt = prompts[0]
    gen_kw = dict(do_sample=True, top_p=0.9, max_new_tokens=NEW, pad_token_id=0, eos_token_id=None)

    def ours() -> Any:
        return superposed_generate(model, prompt, k=K, max_new_tokens=NEW, ngram=ngram)

    def three_runs() -> Any:
        return [model.generate(prompt, attention_mask=torch.ones_like(prompt), **gen_kw) for _ in range(K)]

    def num_return() -> Any:
        return model.generate(
            prompt, attention_mask=torch.ones_like(prompt), num_return_sequences=K, **gen_kw
        )

    info: dict[str, Any] = {
        "k": K,
        "new_tokens": NEW,
        "prompt_tokens": prompt.shape[1],
        "model_forwards": f"ours 1 prefill + {NEW - 1} superposed (batch 1) + 1 perplexity (batch {K}); "
        f"3 runs: 3 x {NEW}; num_return: {NEW} at batch {K}",
    }
    if quality:
        sup, nuc, plain = [], [], []
        torch.manual_seed(0)
        for p in prompts:
            r = superposed_generate(model, p, k=K, max_new_tokens=NEW, ngram=ngram)
            sup.append(float(np.mean(r.perplexities[0])))
            r0 = superposed_generate(model, p, k=K, max_new_tokens=NEW)
            plain.append(float(np.mean(r0.perplexities[0])))
            out = model.generate(p, attention_mask=torch.ones_like(p), num_return_sequences=K, **gen_kw)
            nuc.append(_perplexity(model, p, out[:, p.shape[1] :]))
        info["mean_ppl_superposed_ngram"] = round(float(np.mean(sup)), 3)
        info["mean_ppl_superposed_no_ngram"] = round(float(np.mean(plain)), 3)
        info["mean_ppl_nucleus_top_p_0.9"] = round(float(np.mean(nuc)), 3)
        info["prompts_for_ppl"] = len(prompts)
    return Case(
        ours=ours,
        baselines={"3 sampled generate() runs": three_runs, "generate(num_return=3)": num_return},
        info=info,
        repeats=5,
    )


@bench("superposed/tiny-gpt2-k3-10tok", target=">= 2x faster than 3 sampled runs")
def _tiny() -> Case:
    import torch

    from stepfuse import NGramLM

    model, train, held = _tiny_trained()
    ngram = NGramLM.train(
        _sentences(train), ORDER, smoothing="interpolated_mle", weights=WEIGHTS, vocab_size=256
    )
    rng = np.random.default_rng(1)
    starts = rng.integers(0, len(held) - PROMPT, size=8)
    prompts = [torch.from_numpy(held[s : s + PROMPT]).unsqueeze(0) for s in starts]
    case = _generation_case(model, ngram, prompts, quality=True)
    case.info["model"] = "GPT-2 2x64, bytes, trained 300 steps on stdlib docstrings"
    return case


@bench("superposed/gpt2-small-random-k3-10tok", target=">= 2x faster than 3 sampled runs")
def _small() -> Case:
    import torch

    from stepfuse import NGramLM

    model = _gpt2_small()
    V = model.config.vocab_size
    ngram = NGramLM.train(
        _sentences(_zipf(200_000, V, 0)), ORDER, smoothing="interpolated_mle", weights=WEIGHTS, vocab_size=V
    )
    rng = np.random.default_rng(2)
    prompts = [
        torch.from_numpy(_zipf(PROMPT, V, int(s))).unsqueeze(0) for s in rng.integers(0, 1 << 30, size=3)
    ]
    case = _generation_case(model, ngram, prompts, quality=True)
    case.info["model"] = "GPT-2-small-sized config (124M), RANDOM weights: times only"
    return case


@bench("superposed/ngram-filter-b32-k3-top9", target="<= 1 ms, >= 200x dict-of-dicts")
def _filter() -> Case:
    import torch

    from stepfuse import NGramLM
    from stepfuse.superposed import _ngram_scores

    _threads()
    V, B, m = 32_000, 32, 9
    corpus = _zipf(500_000, V, 7)
    sents = _sentences(corpus)
    lm = NGramLM.train(sents, ORDER, smoothing="interpolated_mle", weights=WEIGHTS, vocab_size=V)
    ref = DictNGram(sents, ORDER, WEIGHTS, V)
    rng = np.random.default_rng(3)
    pos = rng.integers(ORDER, len(corpus) - 1, size=B * K)
    ctx = torch.from_numpy(np.stack([corpus[p - (ORDER - 1) : p] for p in pos])).reshape(B, K, ORDER - 1)
    top = torch.from_numpy(
        np.concatenate([corpus[pos[::K]][:, None], _zipf(B * (m - 1), V, 8).reshape(B, m - 1)], 1)
    )
    c_np = ctx.reshape(B * K, ORDER - 1).numpy()
    y_np = np.repeat(top.numpy(), K, axis=0)

    ours = _ngram_scores(torch, lm, ctx, top, None, None).reshape(B * K, m).numpy()
    theirs = ref.score(c_np, y_np)
    if not np.allclose(ours, theirs, rtol=1e-4, atol=1e-5, equal_nan=False):
        bad = np.argwhere(~np.isclose(ours, theirs, rtol=1e-4, atol=1e-5))[:3]
        raise AssertionError(f"filter disagrees with the dict reference at {bad.tolist()}")
    raw = time_callable(lambda: lm.score(c_np, y_np), repeats=5)
    return Case(
        ours=lambda: _ngram_scores(torch, lm, ctx, top, None, None),
        baselines={
            "python dict-of-dicts": lambda: ref.score(c_np, y_np),
            "reference-style loop": lambda: reference_style_step(ref, ctx, top, V),
        },
        baseline_repeats=3,
        info={
            "queries_per_step": B * K * m,
            "orders": "1-6 (unigram weight 0)",
            "lm.score call alone_us": round(raw.median_s * 1e6, 1),
            "finite_fraction": round(float(np.isfinite(ours).mean()), 3),
        },
        per=B * K * m,
    )
