"""stepfuse.superposed: Superposed Decoding — k drafts from one autoregressive pass, for any HF causal LM.

Shen et al., "Superposed Decoding: Multiple Generations from a Single Autoregressive Inference Pass"
(NeurIPS 2024). At every step the model reads ONE input per prompt: the superposition

    x̃_t = Σ_i γ_i · E[d_i,t-1],   γ = softmax(c),                                   (Eq. 1)

of the embedding rows of the k drafts' last tokens, weighted by the drafts' cumulative scores ``c``
(recomputed each step). The single next-token distribution p_LM is cut to its top-m tokens and
expanded over the k drafts × m tokens; every candidate (draft i, token y) is scored

    c_i + (1-α)·log p_LM(y) + α·log p_ngram(y | d_i)                                  (Eq. 2)

where p_ngram is a fixed-weight interpolation of n-gram MLE conditionals over the draft's own
context, and the best k distinct candidates become the next drafts. The k drafts of a prompt share
one KV cache (the superposed sequence). At the end the drafts are ranked by the model's own
perplexity of each draft (one batched forward over the drafts on top of the cached prompt).

``import stepfuse`` does not import this module; torch and transformers are imported lazily.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from stepfuse.errors import InvalidArgumentError, InvalidTypeError, OutOfRangeError, require

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["NGRAM_FALLBACK_PENALTY", "NGramScorer", "SuperposedResult", "superposed_generate"]

#: Score penalty (in nats) for a candidate token to which the n-gram interpolation gives zero mass.
#: Such a candidate is scored ``(1-α)·log p_LM - NGRAM_FALLBACK_PENALTY`` instead of ``-inf`` (the
#: reference implementation's value). See :func:`superposed_generate` ("zero n-gram mass").
NGRAM_FALLBACK_PENALTY = 200.0


@runtime_checkable
class NGramScorer(Protocol):
    """What the n-gram filter needs: an order and a batched natural-log scorer (``stepfuse.NGramLM`` fits).

    ``score(contexts, tokens)``: contexts int64 ``[R, W]`` (only the last ``order - 1`` columns are
    read; negative ids are left padding), tokens int64 ``[R, K]`` -> float32 ``[R, K]`` of
    ``log p(token | context)``, ``-inf`` where the interpolation gives the token zero mass.
    """

    order: int

    def score(self, contexts: np.ndarray, tokens: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class SuperposedResult:
    """Drafts of :func:`superposed_generate`, per prompt, best (lowest model perplexity) first.

    ``drafts[b][j]`` is the list of new token ids of draft j of prompt b (ending with the eos id when
    the draft finished); ``scores[b][j]`` its cumulative superposed score (Eq. 2, natural log);
    ``perplexities[b][j]`` the model's perplexity of the draft given the prompt, at temperature 1
    (``exp`` of the mean negative log-likelihood of its tokens; 1.0 for an empty draft).
    """

    drafts: list[list[list[int]]]
    scores: list[list[float]]
    perplexities: list[list[float]]


# --------------------------------------------------------------------------------------------------
# validation


def _int_arg(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidTypeError(f"{name}: expected an int, got {type(value).__name__}")
    v = int(value)
    if v < minimum:
        raise InvalidArgumentError(f"{name}: must be >= {minimum} (got {v})")
    return v


def _float_arg(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidTypeError(f"{name}: expected a float, got {type(value).__name__}")
    return float(value)


def _as_long_2d(torch: Any, name: str, value: Any, device: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value
    else:
        try:
            arr = np.asarray(value)
        except ValueError as e:  # ragged rows
            raise InvalidArgumentError(
                f"{name}: rows differ in length; left-pad them to one length and pass attention_mask"
            ) from e
        except TypeError as e:
            raise InvalidTypeError(f"{name}: expected a 2-D integer array or tensor ({e})") from e
        if arr.dtype == np.bool_ and name == "attention_mask":
            arr = arr.astype(np.int64)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise InvalidTypeError(f"{name}: expected integers, got dtype {arr.dtype}")
        t = torch.from_numpy(arr.astype(np.int64, copy=False))
    if t.is_floating_point() or t.is_complex():
        raise InvalidTypeError(f"{name}: expected integers, got dtype {t.dtype}")
    if t.dim() != 2:
        raise InvalidArgumentError(f"{name}: expected shape [batch, length], got {tuple(t.shape)}")
    return t.to(device=device, dtype=torch.long)


def _eos_ids(eos_token_id: Any) -> list[int] | None:
    if eos_token_id is None:
        return None
    ids = [eos_token_id] if isinstance(eos_token_id, numbers.Integral) else list(eos_token_id)
    for i in ids:
        _int_arg("eos_token_id", i, 0)
    return [int(i) for i in ids] or None


def _ngram_order(ngram: Any) -> int:
    score = getattr(ngram, "score", None)
    order = getattr(ngram, "order", None)
    if not callable(score) or order is None:
        raise InvalidTypeError(
            f"ngram: expected an object with `order` and `score(contexts, tokens)` (e.g. stepfuse.NGramLM), "
            f"got {type(ngram).__name__}"
        )
    return _int_arg("ngram.order", order, 1)


def _model_device(model: Any) -> Any:
    dev = getattr(model, "device", None)
    if dev is not None:
        return dev
    return next(model.parameters()).device


def _out_cache(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def _accepts(fn: Any, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


# --------------------------------------------------------------------------------------------------
# the algorithm


def superposed_generate(
    model: Any,
    input_ids: Any,
    *,
    k: int = 3,
    max_new_tokens: int,
    top_m: int | None = None,
    alpha: float = 0.54,
    ngram: NGramScorer | None = None,
    temperature: float = 0.06,
    eos_token_id: int | Sequence[int] | None = None,
    attention_mask: Any = None,
    seed: int = 0,
) -> SuperposedResult:
    """Generate ``k`` drafts per prompt with one superposed forward pass per step (Superposed Decoding).

    Shen et al. 2024, Eq. 1 (superposed input) and Eq. 2 (candidate score); see the module docstring.

    Per step and per prompt: one forward of the superposed embedding (the k drafts' last-token
    embedding rows gathered and weighted by ``softmax`` of the drafts' cumulative scores — never a
    dense vocabulary-sized matmul); the top-``top_m`` tokens of ``log_softmax(logits / temperature)``
    expanded over the alive drafts; each candidate scored by Eq. 2 (with ``ngram=None`` or
    ``alpha == 0`` the score is ``c_i + log p_LM``); the ``k`` best candidates kept. The n-gram
    lookups of a step are one batched ``ngram.score`` call over all ``batch·k`` drafts. A draft's
    n-gram context is its prompt's real tokens followed by the draft's tokens, used as given (no
    ``<s>`` is added; padding is passed as -1); model ids at or above ``ngram.vocab_size`` are looked
    up as ``ngram.unk_id`` when the scorer has both attributes (train the n-gram model with
    ``vocab_size`` equal to the model's vocabulary to avoid that).

    Zero n-gram mass: a candidate whose n-gram interpolation is zero (``log p_ngram = -inf``) is
    scored ``c_i + (1-α)·log p_LM - NGRAM_FALLBACK_PENALTY`` (200 nats: the penalized LM-only score
    the reference code gives the candidates of a draft none of whose candidates has mass; we apply it
    per candidate), and the selection is lexicographic: every candidate with non-zero mass ranks
    before every candidate with zero mass. So a zero-mass token is chosen only when fewer than ``k``
    candidates have mass; when none has mass the step falls back to the LM's ranking; and a draft that
    took a penalized token carries the penalty in its score, so its superposition weight is ~0.

    Finishing: a draft whose new token is in ``eos_token_id`` finishes (the eos id is kept as its
    last token); a finished draft stays among the k kept drafts as a candidate with its unchanged
    score, so it is displaced only by better-scored candidates. Generation stops after
    ``max_new_tokens`` or when no prompt has an alive draft. Drafts are distinct by construction
    (distinct (draft, token) pairs of distinct drafts); identical drafts would still be removed. Fewer
    than ``k`` drafts come back when fewer distinct candidates exist (e.g. ``top_m < k``).
    The deterministic top-k procedure draws no random numbers: ``seed`` is accepted for API symmetry
    and does not change the result.

    Args:
        model: a Hugging Face causal LM (``get_input_embeddings()``, ``inputs_embeds``, a KV cache,
            ``attention_mask``, ``position_ids``), on any device and dtype; run in eval mode (a model in
            training mode is switched to eval for the call and back).
        input_ids: int ``[B, L]`` prompts (torch tensor or array-like), left-padded when
            ``attention_mask`` is given; each row needs at least one real token.
        k: number of drafts per prompt, >= 1.
        max_new_tokens: tokens to generate per draft, >= 0.
        top_m: tokens taken from the model distribution per step, 1 <= top_m <= vocab (default
            ``min(k·k, vocab)``).
        alpha: n-gram interpolation weight in [0, 1] (Eq. 2).
        ngram: n-gram scorer (``stepfuse.NGramLM`` or any :class:`NGramScorer`) or None.
        temperature: > 0, divides the logits before ``log_softmax``. The defaults (temperature 0.06,
            alpha 0.54, top_m = k·k) are the reference implementation's tuned setting for k = 3.
        eos_token_id: id or ids that end a draft, or None.
        attention_mask: int/bool ``[B, L]``, 1 = token, 0 = left padding; None means all ones.
        seed: unused (deterministic procedure).

    Returns:
        :class:`SuperposedResult`, drafts per prompt ranked by the model's perplexity (lowest first).
    """
    torch: Any = require("torch", "torch")
    k = _int_arg("k", k, 1)
    max_new_tokens = _int_arg("max_new_tokens", max_new_tokens, 0)
    m = -k * k if top_m is None else _int_arg("top_m", top_m, 1)  # negative: default, capped at the vocab
    alpha = _float_arg("alpha", alpha)
    if not 0.0 <= alpha <= 1.0:
        raise InvalidArgumentError(f"alpha: must lie in [0, 1] (got {alpha})")
    temperature = _float_arg("temperature", temperature)
    if not (math.isfinite(temperature) and temperature > 0.0):
        raise InvalidArgumentError(f"temperature: must be finite and > 0 (got {temperature})")
    _int_arg("seed", seed, 0)
    eos = _eos_ids(eos_token_id)
    order = _ngram_order(ngram) if ngram is not None else 0
    get_emb = getattr(model, "get_input_embeddings", None)
    if not callable(get_emb):
        raise InvalidTypeError(f"model: expected a Hugging Face causal LM, got {type(model).__name__}")
    embed = get_emb()
    n_emb = int(embed.weight.shape[0])

    device = _model_device(model)
    ids = _as_long_2d(torch, "input_ids", input_ids, device)
    B, L = ids.shape
    if B == 0 or L == 0:
        raise InvalidArgumentError(f"input_ids: needs at least one prompt and one token (shape {(B, L)})")
    if attention_mask is None:
        mask = torch.ones_like(ids)
    else:
        mask = _as_long_2d(torch, "attention_mask", attention_mask, device)
        if mask.shape != ids.shape:
            raise InvalidArgumentError(
                f"attention_mask: shape {tuple(mask.shape)} differs from input_ids {tuple(ids.shape)}"
            )
        if bool(((mask != 0) & (mask != 1)).any()):
            raise InvalidArgumentError("attention_mask: values must be 0 or 1")
        if bool((mask[:, 1:] < mask[:, :-1]).any()):
            raise InvalidArgumentError("attention_mask: padding must be on the left (a 0 follows a 1)")
    plen = mask.sum(dim=1)
    if bool((plen == 0).any()):
        raise InvalidArgumentError("attention_mask: every prompt needs at least one real token")
    real = mask.bool()
    if bool(((ids < 0) | (ids >= n_emb))[real].any()):
        raise OutOfRangeError(f"input_ids: token ids must lie in [0, {n_emb}) (the model's embedding rows)")
    ids = torch.where(real, ids, torch.zeros_like(ids))

    was_training = bool(getattr(model, "training", False))
    if was_training:
        model.eval()  # dropout off while decoding; restored below
    try:
        with torch.inference_mode():
            return _run(
                torch,
                model,
                embed,
                ids,
                mask,
                plen,
                k,
                max_new_tokens,
                m,
                alpha,
                ngram,
                order,
                temperature,
                eos,
            )
    finally:
        if was_training:
            model.train()


def _select(torch: Any, score: torch.Tensor, tier: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of the n best candidates per row by (tier desc, score desc), ties to the lower index."""
    by_score = torch.sort(score, dim=1, descending=True, stable=True).indices
    by_tier = torch.sort(tier.gather(1, by_score), dim=1, descending=True, stable=True).indices
    return by_score.gather(1, by_tier)[:, :n]


def _ngram_scores(
    torch: Any, ngram: Any, ctx: torch.Tensor, top: torch.Tensor, ng_vocab: int | None, ng_unk: Any
) -> torch.Tensor:
    """One filter step: ``log p_ngram(top[b, j] | ctx[b, i])`` for every draft × candidate, in ONE scorer call.

    ctx: int64 ``[B, k, W]`` context tails (-1 = padding); top: int64 ``[B, m]`` candidate ids, on the
    model's device. One device-to-host copy, one batched ``ngram.score`` over ``[B·k, W]`` × ``[B·k, m]``
    and one copy back. Ids ``>= ng_vocab`` (when not None) are looked up as ``ng_unk``.
    Returns float32 ``[B, k, m]`` on the device (``-inf`` = zero mass).
    """
    B, k, W = ctx.shape
    m = top.shape[1]
    host = torch.cat([ctx.reshape(B, k * W), top], dim=1).cpu().numpy()
    c_np = np.ascontiguousarray(host[:, : k * W].reshape(B * k, W))
    y_np = np.repeat(host[:, k * W :], k, axis=0)
    if ng_vocab is not None:
        c_np[c_np >= ng_vocab] = ng_unk
        y_np[y_np >= ng_vocab] = ng_unk
    out = np.asarray(ngram.score(c_np, y_np), dtype=np.float32)
    if out.shape != (B * k, m):
        raise InvalidArgumentError(f"ngram.score: returned shape {out.shape}, expected {(B * k, m)}")
    return torch.from_numpy(out).to(ctx.device).reshape(B, k, m)


def _run(
    torch: Any,
    model: Any,
    embed: Any,
    ids: torch.Tensor,
    mask: torch.Tensor,
    plen: torch.Tensor,
    k: int,
    T: int,
    m: int,
    alpha: float,
    ngram: Any,
    order: int,
    temperature: float,
    eos: list[int] | None,
) -> SuperposedResult:
    F = torch.nn.functional
    device = ids.device
    B, L = ids.shape
    pos = (mask.cumsum(dim=1) - 1).clamp_min(0)
    cache_kw = "cache" if _accepts(model.forward, "cache") else "past_key_values"  # transformers >= 5 : < 5
    kwargs: dict[str, Any] = {"use_cache": True}
    if _accepts(model.forward, "logits_to_keep"):
        kwargs["logits_to_keep"] = 1
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, **kwargs)
    logits = out.logits[:, -1, :].float()
    cache = _out_cache(out)
    first_logp = F.log_softmax(logits, dim=-1)  # temperature 1: the first draft token's model log-prob
    V = logits.shape[-1]
    if m < 0:
        m = min(-m, V)
    elif m > V:
        raise InvalidArgumentError(f"top_m: must be <= the vocabulary size (top_m={m} > {V})")
    if T == 0:
        return SuperposedResult(
            [[[]] for _ in range(B)], [[0.0] for _ in range(B)], [[1.0] for _ in range(B)]
        )

    use_ngram = ngram is not None and alpha > 0.0
    # model ids the n-gram model does not know (>= its vocab_size) are looked up as its <unk>
    ng_vocab, ng_unk = getattr(ngram, "vocab_size", None), getattr(ngram, "unk_id", None)
    remap = use_ngram and isinstance(ng_vocab, int) and isinstance(ng_unk, int) and ng_vocab < V
    if not remap:
        ng_vocab = None
    eos_t = torch.tensor(eos if eos else [-2], device=device)
    slots = torch.arange(k, device=device)
    tokens = torch.full((B, k, T), -1, dtype=torch.long, device=device)
    cum = torch.where(slots == 0, 0.0, -math.inf).expand(B, k).contiguous()
    alive = (slots == 0).expand(B, k).contiguous()
    finished = torch.zeros(B, k, dtype=torch.bool, device=device)
    if use_ngram:
        W = max(order - 1, 1)
        tail = torch.where(mask.bool(), ids, -1)
        if L < W:
            tail = torch.cat([torch.full((B, W - L), -1, dtype=torch.long, device=device), tail], dim=1)
        ctx = tail[:, -W:].unsqueeze(1).expand(B, k, W).contiguous()  # [B, k, W] n-gram context per draft
    col = mask
    steps = 0
    for t in range(T):
        lp, top = F.log_softmax(logits / temperature, dim=-1).topk(m, dim=-1)  # [B, m]
        lm = lp.unsqueeze(1).expand(B, k, m)
        if use_ngram:
            ng = _ngram_scores(torch, ngram, ctx, top, ng_vocab, ng_unk)
            has = ng > -math.inf
            step = torch.where(
                has,
                (1.0 - alpha) * lm + alpha * ng.clamp_min(-1e30),
                (1.0 - alpha) * lm - NGRAM_FALLBACK_PENALTY,
            )
            ext_tier = torch.where(has, 2, 1)
        else:
            step = lm
            ext_tier = torch.full_like(top, 2).unsqueeze(1).expand(B, k, m)
        ok = alive.unsqueeze(2) & torch.isfinite(lm)
        ext_score = torch.where(ok, cum.unsqueeze(2) + step, -math.inf)
        ext_tier = torch.where(ok, ext_tier, 0)
        stay_score = torch.where(finished, cum, -math.inf).unsqueeze(2)
        stay_tier = torch.where(finished, 2, 0).unsqueeze(2)
        score = torch.cat([ext_score, stay_score], dim=2).reshape(B, k * (m + 1))
        tier = torch.cat([ext_tier, stay_tier], dim=2).reshape(B, k * (m + 1))

        sel = _select(torch, score, tier, k)  # [B, k]
        valid = tier.gather(1, sel) > 0
        parent, j = sel // (m + 1), sel % (m + 1)
        is_stay = j == m
        tok = top.gather(1, j.clamp(max=m - 1))
        tok = torch.where(valid & ~is_stay, tok, -1)
        tokens = tokens.gather(1, parent.unsqueeze(2).expand(B, k, T)).clone()
        tokens[:, :, t] = tok
        cum = torch.where(valid, score.gather(1, sel), -math.inf)
        finished = valid & (is_stay | torch.isin(tok, eos_t))
        alive = valid & ~finished
        if use_ngram:
            ctx = torch.cat([ctx.gather(1, parent.unsqueeze(2).expand(B, k, W)), tok.unsqueeze(2)], dim=2)[
                :, :, 1:
            ]
        steps = t + 1
        if t == T - 1 or (eos is not None and not bool(alive.any())):
            break
        # Eq. 1: the superposed input, gathered rows weighted by softmax of the cumulative scores
        w = torch.softmax(torch.where(alive, cum, -math.inf), dim=1).nan_to_num(0.0)
        rows = embed(tok.clamp_min(0))  # [B, k, d]
        x = (w.to(rows.dtype).unsqueeze(2) * rows).sum(dim=1, keepdim=True)
        col = torch.cat([col, torch.ones(B, 1, dtype=col.dtype, device=device)], dim=1)
        out = model(
            inputs_embeds=x,
            attention_mask=col,
            position_ids=(plen + t).unsqueeze(1),
            use_cache=True,
            **{cache_kw: cache},
        )
        logits = out.logits[:, -1, :].float()
        cache = _out_cache(out)

    tokens = tokens[:, :, :steps]
    keep = alive | finished
    ppl = _draft_perplexity(torch, model, ids, mask, plen, first_logp, tokens, cache, cache_kw)
    # duplicates: a later slot equal to an earlier kept slot is dropped
    same = (tokens.unsqueeze(2) == tokens.unsqueeze(1)).all(dim=3)  # [B, k, k]
    earlier = torch.ones(k, k, dtype=torch.bool, device=device).tril(-1)
    dup = (same & earlier & keep.unsqueeze(1)).any(dim=2)
    keep = keep & ~dup
    key = torch.where(keep, ppl, math.inf)
    rank = torch.sort(key, dim=1, stable=True).indices
    n_keep = keep.sum(dim=1).tolist()
    lengths = (tokens >= 0).sum(dim=2).gather(1, rank).tolist()
    tok_l = tokens.gather(1, rank.unsqueeze(2).expand_as(tokens)).tolist()
    sc_l = cum.gather(1, rank).tolist()
    pp_l = ppl.gather(1, rank).tolist()
    return SuperposedResult(
        drafts=[[tok_l[b][i][: lengths[b][i]] for i in range(n_keep[b])] for b in range(B)],
        scores=[sc_l[b][: n_keep[b]] for b in range(B)],
        perplexities=[pp_l[b][: n_keep[b]] for b in range(B)],
    )


def _draft_perplexity(
    torch: Any,
    model: Any,
    ids: torch.Tensor,
    mask: torch.Tensor,
    plen: torch.Tensor,
    first_logp: torch.Tensor,
    tokens: torch.Tensor,
    cache: Any,
    cache_kw: str = "cache",
) -> torch.Tensor:
    """Model perplexity (temperature 1) of each draft given its prompt, one batched forward: float ``[B, k]``.

    tokens: int64 ``[B, k, T]`` with -1 after a draft's end. With a croppable cache (``crop`` and
    ``batch_repeat_interleave``, e.g. ``DynamicCache``) the prompt is not recomputed: the cache is cut
    back to the prompt and repeated k times; otherwise (``cache=None`` or other caches) the prompts are
    run again with the drafts.
    """
    F = torch.nn.functional
    B, k, T = tokens.shape
    L = ids.shape[1]
    valid = tokens >= 0
    n = valid.sum(dim=2)
    safe = tokens.clamp_min(0)
    lp = torch.zeros(B, k, T, dtype=torch.float32, device=tokens.device)
    lp[:, :, 0] = first_logp.gather(1, safe[:, :, 0])
    if T > 1:
        flat = safe.reshape(B * k, T)[:, : T - 1]
        dmask = valid.reshape(B * k, T)[:, : T - 1].to(mask.dtype)
        pmask = mask.repeat_interleave(k, dim=0)
        full = torch.cat([pmask, dmask], dim=1)
        dpos = plen.repeat_interleave(k).unsqueeze(1) + torch.arange(T - 1, device=tokens.device)
        logits = None
        if cache is not None and hasattr(cache, "crop") and hasattr(cache, "batch_repeat_interleave"):
            try:
                extra = int(cache.get_seq_length()) - L
                if extra > 0:
                    cache.crop(-extra)
                cache.batch_repeat_interleave(k)
            except (RuntimeError, ValueError, AttributeError, NotImplementedError):
                cache = None  # e.g. a sliding-window layer that cannot roll back: recompute the prompts
            else:
                out = model(
                    input_ids=flat,
                    attention_mask=full,
                    position_ids=dpos,
                    use_cache=True,
                    **{cache_kw: cache},
                )
                logits = out.logits
        if logits is None:
            pids = ids.repeat_interleave(k, dim=0)
            ppos = (pmask.cumsum(dim=1) - 1).clamp_min(0)
            out = model(
                input_ids=torch.cat([pids, flat], dim=1),
                attention_mask=full,
                position_ids=torch.cat([ppos, dpos], dim=1),
                use_cache=False,
            )
            logits = out.logits[:, L:, :]
        logp = F.log_softmax(logits.float(), dim=-1)
        nxt = safe.reshape(B * k, T)[:, 1:]
        lp[:, :, 1:] = logp.gather(2, nxt.unsqueeze(2)).squeeze(2).reshape(B, k, T - 1)
    total = torch.where(valid, lp, 0.0).sum(dim=2)
    return torch.exp(-total / n.clamp_min(1))
