"""FusionDecoder: Generative Fusion Decoding (Hsu et al. 2024, "Let's Fuse Step by Step") in beam search.

Score of a partial hypothesis y_1..t (recognizer tokens) with text bytes b(y_1..t):

    S(y_1..t) = (1 - w) · Σ_{i<=t} log p_rec(y_i | y_<i, x)  +  w · log P_LM(b(y_1..t) is a prefix)      (GFD eq. 3)

The LM term is a byte-prefix probability, so the two tokenizers may differ: it is computed with GFD's
approximation (canonical LM tokenization t_1..t_k of the trailing bytes, and at each canonical boundary j the
mass of the LM tokens extending the rest: P(t_1..t_j) · Σ_{t extends rest_j} P(t | ctx, t_1..t_j)), see
:func:`stepfuse.vocab.gfd_prepare`. Every step, each running beam proposes its ``n_candidates`` best next tokens
under the recognizer; every candidate is scored by S INCLUDING its bytes; all candidates' LM inputs of a step go
to the LM in one batched call (rows deduplicated), and both models keep their KV caches across steps.

EOS and length normalization: a candidate y_t = EOS (or one reaching ``max_len``) finishes. EOS adds no bytes; its
LM term is the log-prob of the complete string, log P_LM(canonical tokens of b(y), </s>), when the LM has an
``eos_id`` and ``lm_eos`` is on, else the beam's current prefix term. A finished hypothesis is ranked by

    S(y) / L(y)^alpha,   L = number of recognizer tokens including EOS (normalize="token")
                          or number of text bytes + 1 (normalize="byte")                                    (eq. 4)

with ``alpha = length_penalty`` (1.0). Search follows HF ``generate(num_beams=B)``: 2B candidates kept per step,
finished ones among the top B enter a B-slot finished pool, the best B unfinished ones continue, and search stops
when the pool is full and the best running score divided by its current length cannot beat the pool's worst (or
at ``max_len``). With ``weight = 0`` this is exactly the recognizer's own beam search.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stepfuse.errors import InvalidArgumentError
from stepfuse.vocab import gfd_prepare

__all__ = ["FusionDecoder", "FusionResult", "Hypothesis"]


@dataclass(frozen=True)
class Hypothesis:
    """One finished hypothesis: text, recognizer token ids (without prompt, EOS included if emitted), the
    normalized fused score, and its parts (recognizer log-prob sum, LM byte-prefix log-prob)."""

    text: str
    tokens: list[int]
    score: float
    rec_logprob: float
    lm_logprob: float


@dataclass(frozen=True)
class FusionResult:
    """Best hypothesis (text, tokens, score), the ``n_best`` list (best first) and per-step timings."""

    text: str
    tokens: list[int]
    score: float
    n_best: list[Hypothesis]
    steps: int = 0
    step_s: list[float] = field(default_factory=list)
    lm_calls: int = 0


@dataclass
class _Beam:
    tokens: list[int]
    rec: float
    lm_ctx: list[int]
    lm_trail: bytes
    lm_committed: float
    lm_prefix: float
    nbytes: int

    def fused(self, w: float) -> float:
        return (1.0 - w) * self.rec + w * self.lm_prefix


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = np.max(x, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    z = x - m
    return (z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))).astype(np.float32)


class FusionDecoder:
    """Beam search of a recognizer fused with an LM at the byte level (GFD).

    ``recognizer``: a :class:`~stepfuse.fusion.recognizers.Recognizer`; ``lm``: a
    :class:`~stepfuse.fusion.lms.FusionLM` (or None: recognizer alone). ``weight`` w in [0, 1];
    ``beam_size`` B; ``n_candidates`` per beam (default 2B); ``lm_temperature`` T divides the LM logits;
    ``normalize`` "token" or "byte" (eq. 4); ``length_penalty`` alpha; ``max_len`` generated tokens;
    ``lm_prompt`` text put in front of the hypothesis in the LM context (domain terms, previous segment);
    ``no_repeat_ngram`` n > 0: a beam never repeats a recognizer-token n-gram (as HF's ``no_repeat_ngram_size``;
    guards both searches against loops). ``scorer``: how the LM rows become candidate terms: "vocab" (the Rust
    ByteVocab range sums), "kernel" (``stepfuse.kernels.fused_range_logprobs``: Triton on GPU, its fp32 torch
    reference elsewhere) or "auto" (the kernel when the LM answers with CUDA tensors). ``lm_eos``: score the recognizer's EOS with the LM's end-of-text probability when the LM has ``eos_id``.
    """

    def __init__(
        self,
        recognizer: Any,
        lm: Any = None,
        *,
        weight: float = 0.2,
        beam_size: int = 5,
        n_candidates: int | None = None,
        lm_temperature: float = 1.0,
        normalize: str = "token",
        length_penalty: float = 1.0,
        max_len: int = 224,
        lm_prompt: str = "",
        lm_eos: bool = True,
        no_repeat_ngram: int = 0,
        scorer: str = "auto",
    ) -> None:
        if not 0.0 <= float(weight) <= 1.0:
            raise InvalidArgumentError(f"weight: must be in [0, 1], got {weight}")
        if int(beam_size) < 1:
            raise InvalidArgumentError(f"beam_size: must be >= 1, got {beam_size}")
        if normalize not in ("token", "byte"):
            raise InvalidArgumentError(f"normalize: must be 'token' or 'byte', got {normalize!r}")
        if not float(lm_temperature) > 0:
            raise InvalidArgumentError(f"lm_temperature: must be > 0, got {lm_temperature}")
        if int(max_len) < 1:
            raise InvalidArgumentError(f"max_len: must be >= 1, got {max_len}")
        if lm is None and weight > 0:
            raise InvalidArgumentError("lm: required when weight > 0")
        self.recognizer = recognizer
        self.lm = lm
        self.weight = float(weight)
        self.beam_size = int(beam_size)
        self.n_candidates = int(n_candidates) if n_candidates is not None else 2 * self.beam_size
        if self.n_candidates < 1:
            raise InvalidArgumentError(f"n_candidates: must be >= 1, got {n_candidates}")
        self.lm_temperature = float(lm_temperature)
        self.normalize = normalize
        self.length_penalty = float(length_penalty)
        self.max_len = int(max_len)
        self.lm_prompt = lm_prompt
        self.lm_eos = bool(lm_eos)
        if int(no_repeat_ngram) < 0:
            raise InvalidArgumentError(f"no_repeat_ngram: must be >= 0, got {no_repeat_ngram}")
        self.no_repeat_ngram = int(no_repeat_ngram)
        if scorer not in ("auto", "vocab", "kernel"):
            raise InvalidArgumentError(f"scorer: must be 'auto', 'vocab' or 'kernel', got {scorer!r}")
        self.scorer = scorer
        self._perm: dict[tuple[int, str], Any] = {}
        self._tb = recognizer.token_bytes()
        self._tb_len = np.asarray([len(b) for b in self._tb], dtype=np.int64)

    # ---- LM side -----------------------------------------------------------------------------------------

    def _lm_start(self, prompt: str) -> tuple[list[int], float]:
        """LM context for a prompt: prefix ids + the prompt's canonical tokens (committed, log-prob summed)."""
        lm = self.lm
        pre = list(lm.prefix_ids)
        data = prompt.encode("utf-8")
        if not data:
            return [], 0.0
        enc = lm.vocab.encode_bytes
        toks = [int(t) for t in (enc(data) if enc is not None else lm.vocab.greedy_tokenize(data)[0])]
        rows = [pre + toks[:j] for j in range(len(toks))]
        lp = self._lm_logprobs(rows)
        total = float(sum(lp[j, t] for j, t in enumerate(toks)))
        return toks, total

    def _lm_logprobs(self, rows: list[list[int]]) -> np.ndarray:
        out = _as_numpy(self.lm.next_logprobs(rows))
        if self.lm_temperature != 1.0:
            out = _log_softmax(out / self.lm_temperature)
        return out

    def _lm_score(self, beams: list[_Beam], cb: np.ndarray, cid: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        """LM log-prob of every candidate (beam cb[i] + token cid[i]), all rows in ONE batched LM call.

        Text candidates: byte-prefix log-prob (GFD) of the beam's bytes including the candidate's. The
        recognizer's EOS, when ``lm_eos`` and the LM has an ``eos_id``: log-prob of the complete string, i.e.
        the canonical tokens of the trailing bytes followed by the LM's end of text. Other byte-less ids keep
        the beam's prefix term.
        """
        n = len(cb)
        lm_total = np.empty(n, dtype=np.float64)
        info: list[Any] = [None] * n
        eos = int(self.recognizer.eos_id)
        lm_eos = getattr(self.lm, "eos_id", None) if self.lm_eos else None
        idx = [i for i in range(n) if self._tb_len[cid[i]] > 0]
        eidx = [i for i in range(n) if lm_eos is not None and cid[i] == eos]
        for i in range(n):
            if self._tb_len[cid[i]] == 0:
                lm_total[i] = beams[cb[i]].lm_prefix
        if not idx and not eidx:
            return lm_total, info
        pre = list(self.lm.prefix_ids)
        uniq: dict[tuple[int, ...], int] = {}
        trails = [beams[cb[i]].lm_trail + self._tb[cid[i]] for i in idx]
        # gfd_prepare sees empty contexts (rows are then the canonical-token prefixes of the trailing bytes);
        # each row's LM input is prefix ids + the beam's committed ids + that prefix
        step = gfd_prepare(self.lm.vocab, [[]] * len(idx), trails)
        row_beam = np.repeat(np.arange(len(idx)), np.diff(step.row_offsets))
        keys = [tuple(pre + beams[cb[idx[rb]]].lm_ctx + r) for rb, r in zip(row_beam.tolist(), step.inputs)]
        inv = np.fromiter((uniq.setdefault(k, len(uniq)) for k in keys), dtype=np.int64, count=len(keys))
        # EOS candidates: rows for every canonical prefix of the trailing bytes, then end of text
        e_rows: list[tuple[list[int], list[int]]] = []
        enc = self.lm.vocab.encode_bytes
        for i in eidx:
            bm = beams[cb[i]]
            toks = [int(t) for t in enc(bm.lm_trail)] if (bm.lm_trail and enc is not None) else []
            if bm.lm_trail and enc is None:
                toks = [int(t) for t in self.lm.vocab.greedy_tokenize(bm.lm_trail)[0]]
            rows = [
                uniq.setdefault(tuple(pre + bm.lm_ctx + toks[:j]), len(uniq)) for j in range(len(toks) + 1)
            ]
            e_rows.append((rows, toks))
        raw = self.lm.next_logprobs([list(k) for k in uniq])
        use_kernel = self.scorer == "kernel" or (
            self.scorer == "auto" and getattr(getattr(raw, "device", None), "type", "cpu") == "cuda"
        )
        if use_kernel:
            self._kernel_terms(raw, step, inv, idx, trails, e_rows, eidx, beams, cb, lm_total, info, lm_eos)
            return lm_total, info
        lp = _as_numpy(raw)
        if self.lm_temperature != 1.0:
            lp = _log_softmax(lp / self.lm_temperature)
        if idx:
            scores = step.score(lp[inv])
            logp, com = scores.logprob, scores.committed_logprob
            for j, i in enumerate(idx):
                b = beams[cb[i]]
                lm_total[i] = b.lm_committed + float(logp[j])
                info[i] = (b.lm_ctx + step.committed[j], step.trailing[j], b.lm_committed + float(com[j]))
        for (rows, toks), i in zip(e_rows, eidx):
            b = beams[cb[i]]
            tot = (
                b.lm_committed
                + sum(float(lp[r, t]) for r, t in zip(rows, toks))
                + float(lp[rows[-1], lm_eos])
            )
            lm_total[i] = tot
            info[i] = (b.lm_ctx + toks, b"", tot)
        return lm_total, info

    def _kernel_terms(
        self,
        raw: Any,
        step: Any,
        inv: np.ndarray,
        idx: list[int],
        trails: list[bytes],
        e_rows: list[tuple[list[int], list[int]]],
        eidx: list[int],
        beams: list[_Beam],
        cb: np.ndarray,
        lm_total: np.ndarray,
        info: list[Any],
        lm_eos: int | None,
    ) -> None:
        """The same terms as the "vocab" scorer, every LM quantity read by ONE ``fused_range_logprobs`` call.

        Entries per unique LM row: a byte-prefix range [lo, hi) of the sorted vocabulary (mass of the tokens
        extending a suffix) or a one-token range [rank t, rank t + 1) (log P(t)); base 0, weight 1. Candidate i
        with canonical tokens t_1..t_k and rows j = 0..n-1: log Σ_j exp(Σ_{m<j} log P(t_{m+1} | row m) +
        log mass(row j, suffix after t_1..t_j)); its committed part is Σ_{m<c} log P(t_{m+1} | row m).
        """
        import torch

        from stepfuse.kernels import fused_range_logprobs

        vocab = self.lm.vocab
        x = raw if isinstance(raw, torch.Tensor) else torch.as_tensor(np.asarray(raw, dtype=np.float32))
        n_rows, width = int(x.shape[0]), int(x.shape[1])
        key = (width, str(x.device))
        if key not in self._perm:
            perm = np.concatenate(
                [np.asarray(vocab.sorted_ids, dtype=np.int64), np.arange(len(vocab), width)]
            )
            self._perm[key] = torch.as_tensor(perm, device=x.device)
        perm_t = self._perm[key]
        ranks = np.asarray(vocab.ranks, dtype=np.int64)

        def rank(t: int) -> int:
            return int(ranks[t]) if t < len(vocab) else int(t)

        entries: list[tuple[int, int, int]] = []  # (row, lo, hi)
        plans: list[
            tuple[list[int], list[int], int]
        ] = []  # per text candidate: range entries, token entries, c
        offs = step.row_offsets
        suffixes: list[bytes] = []
        suf_rows: list[int] = []
        for j in range(len(idx)):
            canon = step.canonical[j]
            r0, r1 = int(offs[j]), int(offs[j + 1])
            pos = 0
            tok_e: list[int] = []
            for m in range(r1 - r0):
                suffixes.append(trails[j][pos:])
                suf_rows.append(int(inv[r0 + m]))
                if m < len(canon):
                    t = int(canon[m])
                    tok_e.append(len(entries))
                    entries.append((int(inv[r0 + m]), rank(t), rank(t) + 1))
                    pos += len(vocab.token_bytes(t) or b"")
            plans.append(
                (list(range(len(suffixes) - (r1 - r0), len(suffixes))), tok_e, len(step.committed[j]))
            )
        if suffixes:
            lo, hi = vocab.prefix_ranges(suffixes)
            base_e = len(entries)
            entries.extend(zip(suf_rows, np.asarray(lo).tolist(), np.asarray(hi).tolist()))
        else:
            base_e = len(entries)
        eos_plan: list[tuple[list[int], int]] = []
        for rows, toks in e_rows:
            te = []
            for r, t in zip(rows, toks):
                te.append(len(entries))
                entries.append((r, rank(t), rank(t) + 1))
            eos_plan.append((te, len(entries)))
            entries.append((rows[-1], rank(int(lm_eos or 0)), rank(int(lm_eos or 0)) + 1))
        per_row: list[list[int]] = [[] for _ in range(n_rows)]
        for e, (r, _, _) in enumerate(entries):
            per_row[r].append(e)
        c_max = max(1, max(len(p) for p in per_row))
        lo_a = np.zeros((n_rows, c_max), dtype=np.int64)
        hi_a = np.zeros((n_rows, c_max), dtype=np.int64)
        where = np.zeros((len(entries), 2), dtype=np.int64)
        for r, es in enumerate(per_row):
            for c, e in enumerate(es):
                lo_a[r, c], hi_a[r, c] = entries[e][1], entries[e][2]
                where[e] = (r, c)
        dev = x.device
        zeros = torch.zeros((n_rows, c_max), dtype=torch.float32, device=dev)
        out = fused_range_logprobs(
            x,
            perm_t,
            torch.as_tensor(lo_a, device=dev),
            torch.as_tensor(hi_a, device=dev),
            zeros,
            zeros,
            1.0,
            self.lm_temperature,
        )
        val = (
            out.float().cpu().numpy()[where[:, 0], where[:, 1]].astype(np.float64) if entries else np.zeros(0)
        )
        for j, i in enumerate(idx):
            rng_e, tok_e, c = plans[j]
            cum = np.concatenate([[0.0], np.cumsum(val[tok_e])])
            terms = cum[: len(rng_e)] + val[[base_e + k for k in rng_e]]
            m = float(np.max(terms)) if len(terms) else -np.inf
            logp = m + float(np.log(np.sum(np.exp(terms - m)))) if np.isfinite(m) else m
            b = beams[cb[i]]
            lm_total[i] = b.lm_committed + logp
            info[i] = (b.lm_ctx + step.committed[j], step.trailing[j], b.lm_committed + float(cum[c]))
        for (te, ee), i in zip(eos_plan, eidx):
            b = beams[cb[i]]
            tot = b.lm_committed + float(np.sum(val[te])) + float(val[ee])
            lm_total[i] = tot
            info[i] = (b.lm_ctx + e_rows[eidx.index(i)][1], b"", tot)

    # ---- search ------------------------------------------------------------------------------------------

    def _banned(self, toks: list[int]) -> list[int]:
        """Tokens that would complete an n-gram already in ``toks`` (n = no_repeat_ngram)."""
        n = self.no_repeat_ngram
        if n <= 0 or len(toks) < n - 1:
            return []
        if n == 1:
            return list(set(toks))
        tail = toks[len(toks) - n + 1 :]
        return [toks[i + n - 1] for i in range(len(toks) - n + 1) if toks[i : i + n - 1] == tail]

    def _length(self, ntok: int, nbytes: int) -> float:
        return float(ntok) if self.normalize == "token" else float(nbytes + 1)

    def decode(self, inputs: Any, *, lm_prompt: str | None = None) -> FusionResult:
        """Decode one input (audio for Whisper, an image for TrOCR, anything the recognizer's ``start`` takes)."""
        rec = self.recognizer
        w = self.weight
        big_b = self.beam_size
        keep = 2 * big_b
        eos = int(rec.eos_id)
        use_lm = self.lm is not None and w > 0
        prompt = self.lm_prompt if lm_prompt is None else lm_prompt
        calls0 = getattr(self.lm, "calls", 0) if self.lm is not None else 0
        if use_lm:
            ctx0, lp0 = self._lm_start(prompt)
        else:
            ctx0, lp0 = [], 0.0
        session = rec.start(inputs)
        step_s: list[float] = []
        t0 = time.perf_counter()
        lp = session.first()
        beams = [_Beam([], 0.0, ctx0, b"", lp0, lp0, 0)]
        finished: list[tuple[float, _Beam]] = []
        steps = 0
        while True:
            steps += 1
            n_v = lp.shape[1]
            k = min(self.n_candidates, n_v)
            cand_b, cand_id, cand_lp = [], [], []
            for bi in range(len(beams)):
                row = lp[bi]
                banned = self._banned(beams[bi].tokens)
                if banned:
                    row = row.copy()
                    row[banned] = -np.inf
                top = np.argpartition(-row, k - 1)[:k] if k < n_v else np.arange(n_v)
                top = top[np.isfinite(row[top])]
                cand_b.append(np.full(len(top), bi, dtype=np.int64))
                cand_id.append(top.astype(np.int64))
                cand_lp.append(row[top].astype(np.float64))
            cb = np.concatenate(cand_b)
            cid = np.concatenate(cand_id)
            rec_new = np.asarray([beams[b].rec for b in cb], dtype=np.float64) + np.concatenate(cand_lp)
            if use_lm:
                lm_new, lm_info = self._lm_score(beams, cb, cid)
                fused = (1.0 - w) * rec_new + w * lm_new
            else:
                lm_new = np.zeros_like(rec_new)
                lm_info = [None] * len(cb)
                fused = rec_new
            # rank: fused desc, ties by (beam, token) order as HF's flattened topk
            order = np.lexsort((cid, cb, -fused))
            order = order[np.isfinite(fused[order])][:keep]
            gen_len = len(beams[0].tokens) + 1
            new_beams: list[_Beam] = []
            for rank, i in enumerate(order):
                parent = beams[cb[i]]
                tok = int(cid[i])
                nb = parent.nbytes + int(self._tb_len[tok])
                info = lm_info[i]
                child = _Beam(
                    [*parent.tokens, tok],
                    float(rec_new[i]),
                    info[0] if info else parent.lm_ctx,
                    info[1] if info else parent.lm_trail,
                    info[2] if info else parent.lm_committed,
                    float(lm_new[i]) if use_lm else 0.0,
                    nb,
                )
                done = tok == eos or gen_len >= self.max_len
                if done:
                    if rank < big_b:
                        finished.append(
                            (float(fused[i]) / self._length(gen_len, nb) ** self.length_penalty, child)
                        )
                elif len(new_beams) < big_b:
                    new_beams.append((child, int(cb[i])))  # type: ignore[arg-type]
            finished.sort(key=lambda x: -x[0])
            finished = finished[:big_b]
            step_s.append(time.perf_counter() - t0)
            if not new_beams:
                break
            parents = np.asarray([p for _, p in new_beams], dtype=np.int64)  # type: ignore[misc]
            beams = [c for c, _ in new_beams]  # type: ignore[misc]
            if len(finished) >= big_b:
                best = beams[0]
                best_norm = best.fused(w) / self._length(gen_len, best.nbytes) ** self.length_penalty
                if not best_norm > finished[-1][0]:
                    break
            t0 = time.perf_counter()
            lp = session.step(parents, np.asarray([b.tokens[-1] for b in beams], dtype=np.int64))
        if not finished:
            finished = [
                (b.fused(w) / self._length(len(b.tokens), b.nbytes) ** self.length_penalty, b) for b in beams
            ]
            finished.sort(key=lambda x: -x[0])
        hyps = [
            Hypothesis(
                rec.decode_text([t for t in b.tokens if t != eos]), list(b.tokens), s, b.rec, b.lm_prefix
            )
            for s, b in finished
        ]
        calls = (getattr(self.lm, "calls", 0) - calls0) if self.lm is not None else 0
        best_h = hyps[0]
        return FusionResult(best_h.text, best_h.tokens, best_h.score, hyps, steps, step_s, calls)

    def decode_batch(
        self, inputs: Sequence[Any], *, lm_prompts: Sequence[str] | None = None
    ) -> list[FusionResult]:
        """Decode several inputs (one after another; each keeps its own caches)."""
        if lm_prompts is not None and len(lm_prompts) != len(inputs):
            raise InvalidArgumentError(f"lm_prompts: need {len(inputs)} prompts, got {len(lm_prompts)}")
        return [
            self.decode(x, lm_prompt=None if lm_prompts is None else lm_prompts[i])
            for i, x in enumerate(inputs)
        ]

    def decode_long(
        self,
        audio: np.ndarray,
        *,
        sampling_rate: int = 16000,
        segment_s: float = 30.0,
        carry_chars: int = 400,
    ) -> FusionResult:
        """Long-form audio: fixed ``segment_s`` windows decoded in order, each with the previous segments' text
        (last ``carry_chars`` characters) appended to ``lm_prompt`` for the LM. Returns the joined result."""
        a = np.asarray(audio, dtype=np.float32).reshape(-1)
        n = int(segment_s * sampling_rate)
        if n < 1:
            raise InvalidArgumentError(f"segment_s: must give at least one sample, got {segment_s}")
        texts: list[str] = []
        tokens: list[int] = []
        score = 0.0
        steps = 0
        step_s: list[float] = []
        calls = 0
        for start in range(0, max(len(a), 1), n):
            prev = "".join(texts)[-carry_chars:]
            r = self.decode(a[start : start + n], lm_prompt=self.lm_prompt + prev)
            texts.append(r.text)
            tokens.extend(r.tokens)
            score += r.score
            steps += r.steps
            step_s.extend(r.step_s)
            calls += r.lm_calls
        text = "".join(texts)
        return FusionResult(
            text, tokens, score, [Hypothesis(text, tokens, score, 0.0, 0.0)], steps, step_s, calls
        )
