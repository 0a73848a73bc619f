"""ByteVocab benchmarks: build, range queries, prefixes_of, incremental GFD bookkeeping.

Vocabularies: a synthetic 150k-token one with realistic byte lengths (BPE-like: all 256 single
bytes, then words of 1-32 bytes, mostly 3-9, many with a leading space, some multi-byte UTF-8), and
the largest real one available offline (Whisper's ``multilingual.tiktoken``, ~50k). Baselines are
what GFD-style code does in pure Python: a dict of every token prefix, sorted keys + bisect, loops.
"""

from __future__ import annotations

import bisect
import os
import random
from functools import cache

import numpy as np

from harness import Case, bench

N_SYNTH = 150_000


@cache
def synthetic_tokens(n: int = N_SYNTH, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [12, 9, 8, 8, 7, 7, 6, 6, 6, 4, 4, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1]
    extra = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,-_'\"()[]{}/\\:;!?" + "éüöäñ你好世界的是中文こんにちは"
    seen: set[bytes] = {bytes([b]) for b in range(256)}
    out = [bytes([b]) for b in range(256)]
    while len(out) < n:
        length = min(32, max(1, int(rng.lognormvariate(1.7, 0.5))))
        if rng.random() < 0.1:
            s = "".join(rng.choice(extra) for _ in range(max(1, length // 2)))
        else:
            s = "".join(rng.choices(letters, weights, k=length))
        if rng.random() < 0.6:
            s = " " + s
        b = s.encode("utf-8")
        if b not in seen:
            seen.add(b)
            out.append(b)
    return out


@cache
def multilingual_tokens() -> list[bytes] | None:
    try:
        import whisper
        from tiktoken.load import load_tiktoken_bpe
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(whisper.__file__), "assets", "multilingual.tiktoken")
    if not os.path.exists(path):
        return None
    ranks = load_tiktoken_bpe(path)
    toks: list[bytes] = [b""] * len(ranks)
    for b, r in ranks.items():
        toks[r] = b
    return toks


def gfd_prefix_dict(tokens: list[bytes]) -> dict[bytes, list[int]]:
    """What the GFD reference code builds: every prefix of every token → ids extending it."""
    d: dict[bytes, list[int]] = {}
    for i, t in enumerate(tokens):
        for k in range(1, len(t) + 1):
            d.setdefault(t[:k], []).append(i)
    return d


def sort_bisect_index(tokens: list[bytes]) -> tuple[list[bytes], list[int]]:
    order = sorted(range(len(tokens)), key=tokens.__getitem__)
    return [tokens[i] for i in order], order


def upper_key(p: bytes) -> bytes | None:
    """Smallest byte string greater than every string starting with p (None: no bound)."""
    b = bytearray(p)
    while b and b[-1] == 0xFF:
        b.pop()
    if not b:
        return None
    b[-1] += 1
    return bytes(b)


def bisect_ranges(keys: list[bytes], queries: list[bytes]) -> list[tuple[int, int]]:
    out = []
    for q in queries:
        lo = bisect.bisect_left(keys, q)
        u = upper_key(q)
        hi = len(keys) if u is None else bisect.bisect_left(keys, u, lo)
        out.append((lo, hi))
    return out


def sample_prefixes(tokens: list[bytes], n: int, seed: int = 1) -> list[bytes]:
    """GFD-like queries: the bytes after a token boundary, i.e. a token cut to at least half its length."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        t = tokens[rng.randrange(len(tokens))]
        if t:
            out.append(t[: rng.randint((len(t) + 1) // 2, len(t))])
    return out


def sample_strings(tokens: list[bytes], n: int, seed: int = 2) -> list[bytes]:
    rng = random.Random(seed)
    text = b"".join(tokens[rng.randrange(len(tokens))] for _ in range(20_000))
    out = []
    for _ in range(n):
        s = rng.randrange(len(text) - 64)
        out.append(text[s : s + rng.randint(8, 64)])
    return out


def _build_case(tokens: list[bytes], label: str) -> Case:
    from stepfuse import ByteVocab

    v = ByteVocab(tokens)
    avg = sum(map(len, tokens)) / len(tokens)
    return Case(
        ours=lambda: ByteVocab(tokens),
        baselines={
            "GFD prefix dict (Python)": lambda: gfd_prefix_dict(tokens),
            "Python sort + bisect keys": lambda: sort_bisect_index(tokens),
        },
        info={
            "vocabulary": f"{label}: {len(tokens)} tokens, {avg:.2f} bytes on average",
            "index_MB": round(v.index_bytes / 1e6, 3),
            "index_bytes_per_token": round(v.index_bytes / len(tokens), 2),
        },
        baseline_repeats=3,
    )


@bench("vocab/build-150k-synthetic", target=">= 100x GFD prefix dict; index < 4 MB")
def _build_synth() -> Case:
    return _build_case(synthetic_tokens(), "synthetic")


@bench("vocab/build-multilingual-tiktoken", target=">= 100x GFD prefix dict")
def _build_real() -> Case:
    toks = multilingual_tokens()
    if toks is None:
        raise RuntimeError("openai-whisper's multilingual.tiktoken is not available")
    return _build_case(toks, "whisper multilingual.tiktoken")


def _ranges_case(tokens: list[bytes]) -> Case:
    from stepfuse import ByteVocab

    v = ByteVocab(tokens)
    queries = sample_prefixes(tokens, 10_000)
    keys, _ = sort_bisect_index(tokens)
    d = gfd_prefix_dict(tokens)
    # same answers (range sizes) before timing
    lo, hi = v.prefix_ranges(queries)
    assert [h - lo_ for lo_, h in bisect_ranges(keys, queries)] == (hi - lo).tolist()
    assert [len(d.get(q, ())) for q in queries[:200]] == (hi - lo).tolist()[:200]
    return Case(
        ours=lambda: v.prefix_ranges(queries),
        baselines={
            "Python bisect (sorted keys)": lambda: bisect_ranges(keys, queries),
            "GFD prefix dict lookup": lambda: [d.get(q) for q in queries],
        },
        info={"queries": len(queries), "vocabulary": len(tokens)},
        per=len(queries),
    )


@bench("vocab/extending-range-batched-150k", target="<= 0.3 µs/query and >= 20x Python bisect")
def _ranges_synth() -> Case:
    return _ranges_case(synthetic_tokens())


@bench("vocab/extending-range-batched-multilingual", target="<= 0.3 µs/query and >= 20x Python bisect")
def _ranges_real() -> Case:
    toks = multilingual_tokens()
    if toks is None:
        raise RuntimeError("openai-whisper's multilingual.tiktoken is not available")
    return _ranges_case(toks)


@bench("vocab/extending-ids-batched-150k", target="CSR ids (sorted) vs dict lookup of prebuilt lists")
def _ext_ids() -> Case:
    from stepfuse import ByteVocab

    tokens = synthetic_tokens()
    v = ByteVocab(tokens)
    queries = sample_prefixes(tokens, 10_000)
    d = gfd_prefix_dict(tokens)
    off, _ = v.extending_batch(queries)
    return Case(
        ours=lambda: v.extending_batch(queries),
        baselines={"GFD prefix dict lookup + sorted()": lambda: [sorted(d.get(q, ())) for q in queries]},
        info={"ids_returned": int(off[-1])},
        per=len(queries),
    )


@bench("vocab/prefixes_of-10k-150k", target="batched vs Python loop over a dict")
def _prefixes_of() -> Case:
    from stepfuse import ByteVocab

    tokens = synthetic_tokens()
    v = ByteVocab(tokens)
    strings = sample_strings(tokens, 10_000)
    exact: dict[bytes, list[int]] = {}
    for i, t in enumerate(tokens):
        exact.setdefault(t, []).append(i)
    max_len = v.max_token_len

    def py_loop() -> list[list[int]]:
        out = []
        for s in strings:
            ids: list[int] = []
            for k in range(1, min(max_len, len(s)) + 1):
                ids.extend(exact.get(s[:k], ()))
            out.append(sorted(ids))
        return out

    off, ids = v.prefixes_of_batch(strings)
    want = py_loop()
    assert [ids[off[i] : off[i + 1]].tolist() for i in range(100)] == want[:100]
    return Case(
        ours=lambda: v.prefixes_of_batch(strings),
        baselines={"Python loop over dict": py_loop},
        info={"strings": len(strings), "max_token_len": max_len},
        per=len(strings),
    )


@bench("vocab/gfd-incremental-5beams-16bytes-150k", target="<= 10 ms per step (model call excluded)")
def _gfd_step() -> Case:
    from stepfuse import ByteVocab, gfd_prepare

    tokens = synthetic_tokens()
    v = ByteVocab(tokens)
    rng = random.Random(3)
    contexts = [[rng.randrange(len(tokens)) for _ in range(50)] for _ in range(5)]
    text = [b"".join(tokens[rng.randrange(256, len(tokens))] for _ in range(8)) for _ in range(5)]
    trailing = [t[:16] for t in text]
    step = gfd_prepare(v, contexts, trailing, window=16)
    r = len(step.inputs)
    x = np.random.default_rng(0).normal(size=(r, len(tokens))).astype(np.float32)
    lp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    d = gfd_prefix_dict(tokens)

    def ours() -> object:
        s = gfd_prepare(v, contexts, trailing, window=16)
        return s.score(lp).logprob

    def py_dict() -> list[float]:
        # per beam: canonical (greedy) boundaries, dict lookup of each suffix, numpy logsumexp
        out = []
        row = 0
        for b, t in enumerate(trailing):
            ids = step.canonical[b]
            pos = [0]
            for i in ids:
                pos.append(pos[-1] + len(tokens[i]))
            acc, terms = 0.0, []
            nb = int(step.row_offsets[b + 1] - step.row_offsets[b])
            for j in range(nb):
                ext = d.get(t[pos[j] :])
                if ext:
                    terms.append(acc + float(np.logaddexp.reduce(lp[row + j, ext])))
                if j < len(ids):
                    acc += float(lp[row + j, ids[j]])
            row += nb
            out.append(float(np.logaddexp.reduce(terms)) if terms else -np.inf)
        return out

    assert np.allclose(ours(), py_dict(), atol=1e-3)
    return Case(
        ours=ours,
        baselines={"Python dict + numpy (GFD-style)": py_dict},
        info={"beams": 5, "trailing_bytes": 16, "model_rows": r, "vocabulary": len(tokens)},
    )
