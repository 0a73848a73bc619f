"""Small pure-Python oracles for stepfuse.ngram tests, written from Chen & Goodman (1998) and the KenLM
estimation paper (Heafield et al. 2013): slow, dictionary-based and obviously right."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


def raw_counts(
    sents: Sequence[Sequence[Hashable]], order: int, bos: Hashable = BOS, eos: Hashable = EOS
) -> list[Counter]:
    """counts[n][ngram] over sentences padded as ``bos ... eos`` (index 0 unused)."""
    counts: list[Counter] = [Counter() for _ in range(order + 1)]
    for s in sents:
        t = [bos, *s, eos]
        for n in range(1, order + 1):
            for i in range(len(t) - n + 1):
                counts[n][tuple(t[i : i + n])] += 1
    return counts


def mkn(
    sents: Sequence[Sequence[Hashable]],
    order: int,
    vocab: Sequence[Hashable],
    fallback: tuple[float, float, float] | None = None,
) -> dict[int, dict[tuple, tuple[float, float | None]]]:
    """Interpolated modified Kneser–Ney with lmplz's conventions: {n: {ngram: (ln p, ln backoff)}}.

    ``vocab`` is every user token; the uniform base distribution covers vocab, </s> and <unk>.
    <s> gets probability 1 (log 0) as lmplz writes it; the highest order has backoff None.
    """
    raw = raw_counts(sents, order)
    adj: list[Counter] = [Counter() for _ in range(order + 1)]
    for n in range(1, order + 1):
        if n == order:
            adj[n] = Counter(raw[n])
            continue
        for g, c in raw[n].items():
            if g[0] == BOS:
                adj[n][g] = c
        for g in raw[n + 1]:
            if g[1] != BOS:
                adj[n][g[1:]] += 1
    disc: list[list[float]] = [[]]
    for n in range(1, order + 1):
        t: Counter = Counter(a for g, a in adj[n].items() if g != (BOS,) and a <= 4)
        try:
            y = t[1] / (t[1] + 2 * t[2])
            d = [0.0, 1 - 2 * y * t[2] / t[1], 2 - 3 * y * t[3] / t[2], 3 - 4 * y * t[4] / t[3]]
            if any(not (0 <= d[k] <= k) for k in (1, 2, 3)):
                raise ZeroDivisionError
        except ZeroDivisionError:
            if fallback is None:
                raise
            d = [0.0, *fallback]
        disc.append(d)
    u: list[dict] = [{} for _ in range(order + 1)]
    gamma: list[dict] = [{} for _ in range(order + 2)]
    for n in range(1, order + 1):
        d = disc[n]
        tot: defaultdict = defaultdict(float)
        nk: defaultdict = defaultdict(lambda: [0, 0, 0])
        for g, a in adj[n].items():
            if g == (BOS,):
                continue
            tot[g[:-1]] += a
            nk[g[:-1]][min(a, 3) - 1] += 1
        for ctx, total in tot.items():
            k = nk[ctx]
            gamma[n][ctx] = (d[1] * k[0] + d[2] * k[1] + d[3] * k[2]) / total
        for g, a in adj[n].items():
            if g != (BOS,):
                u[n][g] = (a - d[min(a, 3)]) / tot[g[:-1]]
    base = [(w,) for w in vocab] + [(EOS,), (UNK,)]
    g0 = gamma[1][()]
    p: list[dict] = [{} for _ in range(order + 1)]
    for w in base:
        p[1][w] = u[1].get(w, 0.0) + g0 / len(base)
    for n in range(2, order + 1):
        for g in adj[n]:
            p[n][g] = u[n][g] + gamma[n][g[:-1]] * p[n - 1][g[1:]]
    out: dict[int, dict[tuple, tuple[float, float | None]]] = {}
    for n in range(1, order + 1):
        out[n] = {}
        keep = p[n] if n > 1 else {g: x for g, x in p[1].items() if g in adj[1] or g in ((EOS,), (UNK,))}
        for g, pr in keep.items():
            bo = math.log(gamma[n + 1].get(g, 1.0)) if n < order else None
            out[n][g] = (math.log(pr), bo)
        if n == 1:
            out[1][(BOS,)] = (0.0, math.log(gamma[2].get((BOS,), 1.0)) if order > 1 else None)
    return out


def interpolated_mle(
    sents: Sequence[Sequence[Hashable]],
    order: int,
    weights: Sequence[float],
    context: Sequence[Hashable],
    w: Hashable,
) -> float:
    """ln of Σ λ_n P_MLE(w | last n-1 of context) / Σ λ_n over the orders whose context was seen."""
    raw = raw_counts(sents, order)
    num = den = 0.0
    for n in range(1, order + 1):
        if n - 1 > len(context):
            break
        ctx = tuple(context[len(context) - (n - 1) :]) if n > 1 else ()
        total = sum(c for g, c in raw[n].items() if g[:-1] == ctx and g != (BOS,))
        if total == 0:
            break
        den += weights[n - 1]
        num += weights[n - 1] * raw[n].get((*ctx, w), 0) / total
    return math.log(num / den) if num > 0 else -math.inf


def read_arpa(text: str) -> dict[int, dict[tuple[str, ...], tuple[float, float | None]]]:
    """{n: {words: (log10 p, log10 backoff or None)}} of an ARPA file's text."""
    out: dict[int, dict] = {}
    n = 0
    for line in text.splitlines():
        if line.startswith("\\") and line.endswith("-grams:"):
            n = int(line[1 : line.index("-")])
            out[n] = {}
        elif n and line and not line.startswith("\\"):
            f = line.split("\t")
            out[n][tuple(f[1].split(" "))] = (float(f[0]), float(f[2]) if len(f) > 2 else None)
    return out
