"""Language models for fusion: one protocol and adapters (any ``next_logprobs`` callable, NGramLM, HF causal LM).

An LM, to :class:`~stepfuse.fusion.FusionDecoder`, is its byte vocabulary (:class:`stepfuse.ByteVocab`, with the
tokenizer's own ``encode_bytes`` for canonical boundaries), the ids that start every context (BOS), and
``next_logprobs(contexts) -> [R, V]``: natural-log next-token distributions for R token-id sequences, answered in
one batched call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from stepfuse.errors import InvalidArgumentError, InvalidTypeError, require
from stepfuse.vocab import ByteVocab

__all__ = ["CallableLM", "FusionLM", "HFCausalLM", "NGramFusionLM"]


@runtime_checkable
class FusionLM(Protocol):
    """What FusionDecoder needs from an LM."""

    vocab: ByteVocab
    prefix_ids: list[int]

    def next_logprobs(self, contexts: Sequence[Sequence[int]]) -> Any:
        """[R, V'] natural-log next-token log-probs (numpy or torch), V' >= len(vocab)."""
        ...


class CallableLM:
    """Wrap any ``next_logprobs(contexts) -> [R, V]`` callable with the byte vocabulary of its token ids.

    ``vocab``: a ByteVocab (or a tokenizer, converted with ``ByteVocab.from_tokenizer``); ``prefix_ids``: ids put
    in front of every context (e.g. BOS).
    """

    def __init__(
        self, fn: Callable[[list[list[int]]], Any], vocab: Any, prefix_ids: Sequence[int] = ()
    ) -> None:
        if not callable(fn):
            raise InvalidTypeError(f"fn: must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.vocab = vocab if isinstance(vocab, ByteVocab) else ByteVocab.from_tokenizer(vocab)
        self.prefix_ids = [int(i) for i in prefix_ids]
        self.calls = 0

    def next_logprobs(self, contexts: Sequence[Sequence[int]]) -> Any:
        self.calls += 1
        return self.fn([list(c) for c in contexts])


class NGramFusionLM:
    """A :class:`stepfuse.ngram.NGramLM` over the ids of its own tokenizer.

    ``lm``: an NGramLM whose user ids are the tokenizer's ids (``lm.vocab_size >= len(tokenizer vocab)``);
    ``tokenizer``: anything ``ByteVocab.from_tokenizer`` accepts (or a ByteVocab). Contexts start with ``<s>``.
    Only the last ``order - 1`` ids of a context are sent to the n-gram model.
    """

    def __init__(self, lm: Any, tokenizer: Any) -> None:
        self.lm = lm
        self.vocab = tokenizer if isinstance(tokenizer, ByteVocab) else ByteVocab.from_tokenizer(tokenizer)
        if lm.vocab_size < len(self.vocab):
            raise InvalidArgumentError(
                f"lm: vocab_size {lm.vocab_size} is smaller than the tokenizer's {len(self.vocab)} ids"
            )
        self.prefix_ids = [int(lm.bos_id)]
        #: column of ``</s>`` in :meth:`next_logprobs` rows (appended after the user ids)
        self.eos_id = int(lm.vocab_size)
        self.calls = 0

    def next_logprobs(self, contexts: Sequence[Sequence[int]]) -> np.ndarray:
        """[R, vocab_size + 1]: the n-gram model's next-token log-probs, then ``</s>`` in the last column."""
        self.calls += 1
        n = self.lm.order - 1
        ctx = np.full((len(contexts), max(n, 1)), -1, dtype=np.int64)
        for r, c in enumerate(contexts):
            tail = list(c)[-n:] if n > 0 else []
            if tail:
                ctx[r, ctx.shape[1] - len(tail) :] = tail
        rows = np.asarray(self.lm.next_logprobs(ctx), dtype=np.float32)
        eos = np.asarray(
            self.lm.score(ctx, np.full(len(contexts), self.lm.eos_id, dtype=np.int64)), dtype=np.float32
        )
        return np.concatenate([rows, eos.reshape(-1, 1)], axis=1)


class HFCausalLM:
    """An HF causal LM (``AutoModelForCausalLM``) with a prefix KV cache reused across calls.

    ``tokenizer``: its tokenizer (for the byte vocabulary); ``prefix_ids``: default ``[bos_token_id]`` when the
    tokenizer has one. Each call finds, for every context, the longest previously computed prefix whose KV is
    stored; all rows then run in ONE forward over their last ``n_new`` tokens (n_new = the largest number of
    uncached tokens of any row; shorter rows recompute a few cached tokens), left-padded, with the stored KV as
    ``past_key_values`` and explicit position ids. Stored KV not used for ``keep_steps`` calls is dropped.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        prefix_ids: Sequence[int] | None = None,
        *,
        keep_steps: int = 2,
        use_cache: bool = True,
    ) -> None:
        self.torch: Any = require("torch", "torch")
        self.model = model.eval()
        self.vocab = tokenizer if isinstance(tokenizer, ByteVocab) else ByteVocab.from_tokenizer(tokenizer)
        if prefix_ids is None:
            bos = getattr(tokenizer, "bos_token_id", None)
            if bos is None:
                bos = getattr(model.config, "bos_token_id", None)
            prefix_ids = [] if bos is None else [int(bos)]
        self.prefix_ids = [int(i) for i in prefix_ids]
        eos = getattr(tokenizer, "eos_token_id", None)
        if eos is None:
            eos = getattr(model.config, "eos_token_id", None)
        #: the LM's end-of-text id (None: the decoder scores EOS by the prefix term only)
        self.eos_id = None if eos is None else int(eos if isinstance(eos, int) else eos[0])
        if not self.prefix_ids:
            raise InvalidArgumentError("prefix_ids: an HF causal LM needs at least one start id (e.g. BOS)")
        self.keep_steps = keep_steps
        self.use_cache = use_cache
        self._store: dict[tuple[int, ...], tuple[tuple[Any, Any], int]] = {}
        self._call = 0
        self.calls = 0
        self.forward_s = 0.0
        self.tokens_computed = 0

    def reset(self) -> None:
        """Drop every stored KV entry."""
        self._store.clear()

    def _longest(self, ctx: tuple[int, ...]) -> int:
        for k in range(len(ctx), 0, -1):
            if ctx[:k] in self._store:
                return k
        return 0

    def next_logprobs(self, contexts: Sequence[Sequence[int]]) -> Any:
        import time

        torch = self.torch
        self.calls += 1
        self._call += 1
        ctxs = [tuple(int(t) for t in c) for c in contexts]
        if not ctxs:
            return torch.zeros((0, len(self.vocab)))
        if any(len(c) == 0 for c in ctxs):
            raise InvalidArgumentError("contexts: every context needs at least one id (prefix_ids)")
        cached = [self._longest(c) if self.use_cache else 0 for c in ctxs]
        # every row recomputes at least its last token (its logits are the answer)
        n_new = max(max(len(c) - min(k, len(c) - 1) for c, k in zip(ctxs, cached)), 1)
        use = [max(len(c) - n_new, 0) for c in ctxs]  # cached tokens each row uses
        lc = max(use)
        r = len(ctxs)
        dev = next(self.model.parameters()).device
        ids_np = np.zeros((r, n_new), dtype=np.int64)
        mask_np = np.zeros((r, lc + n_new), dtype=np.int64)
        for i, c in enumerate(ctxs):
            new = c[use[i] :]
            ids_np[i, n_new - len(new) :] = new
            mask_np[i, lc - use[i] : lc] = 1
            mask_np[i, lc + n_new - len(new) :] = 1
        ids = torch.from_numpy(ids_np)
        mask = torch.from_numpy(mask_np)
        pos = torch.from_numpy(np.maximum(mask_np.cumsum(-1) - 1, 0)[:, lc:])
        past = None
        if lc > 0:
            from transformers import DynamicCache

            # stored entries: (K, V) of shape [layers, heads, length, head_dim]; copy each row's used prefix
            # right-aligned into one zero-padded [layers, R, heads, lc, head_dim] buffer
            some = next(iter(self._store.values()))[0][0]
            n_layers, heads, _, hd = some.shape
            kp = some.new_zeros((n_layers, r, heads, lc, hd))
            vp = some.new_zeros((n_layers, r, heads, lc, hd))
            for i, c in enumerate(ctxs):
                if use[i] > 0:
                    k_all, v_all = self._store[c[: cached[i]]][0]
                    kp[:, i, :, lc - use[i] :] = k_all[:, :, : use[i]]
                    vp[:, i, :, lc - use[i] :] = v_all[:, :, : use[i]]
            kp, vp = kp.to(dev), vp.to(dev)
            past = DynamicCache()
            for layer in range(n_layers):
                past.update(kp[layer], vp[layer], layer)
        t0 = time.perf_counter()
        with torch.no_grad():
            out = self.model(
                input_ids=ids.to(dev),
                attention_mask=mask.to(dev),
                position_ids=pos.to(dev),
                **_cache_kw(self.model, past),
                use_cache=self.use_cache,
            )
        self.forward_s += time.perf_counter() - t0
        self.tokens_computed += int(sum(len(c) - u for c, u in zip(ctxs, use)))
        if self.use_cache:
            layers = _cache_layers(_out_cache(out))
            k_out = torch.stack([k for k, _ in layers]).detach()  # [layers, R, heads, lc + n_new, head_dim]
            v_out = torch.stack([v for _, v in layers]).detach()
            for i, c in enumerate(ctxs):
                # keep the row's cached part and its real new tokens (drop both paddings)
                n_real = len(c) - use[i]
                if n_real == n_new:
                    keep: Any = slice(lc - use[i], lc + n_new)
                else:
                    keep = torch.cat(
                        [torch.arange(lc - use[i], lc), torch.arange(lc + n_new - n_real, lc + n_new)]
                    ).to(k_out.device)
                self._store[c] = ((k_out[:, i, :, keep], v_out[:, i, :, keep]), self._call)
            stale = [key for key, (_, at) in self._store.items() if self._call - at >= self.keep_steps]
            for key in stale:
                del self._store[key]
            for i, c in enumerate(ctxs):  # prefixes used this call stay fresh
                if cached[i]:
                    key = c[: cached[i]]
                    if key in self._store:
                        self._store[key] = (self._store[key][0], self._call)
        logits = out.logits[:, -1, :].float()
        return torch.log_softmax(logits, dim=-1)


def _cache_layers(cache: Any) -> list[tuple[Any, Any]]:
    """(key, value) tensors [B, H, L, D] per layer of an HF cache (DynamicCache or legacy tuples)."""
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return [(lay.keys, lay.values) for lay in layers]
    return [(k, v) for k, v in cache]


def _cache_kw(model: Any, cache: Any) -> dict[str, Any]:
    """The cache keyword of ``model.forward``: ``cache`` (transformers >= 5.x) or ``past_key_values``."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return {"cache": cache} if "cache" in params else {"past_key_values": cache}


def _out_cache(out: Any) -> Any:
    """The cache an HF model output returns (``cache`` or ``past_key_values``)."""
    c = getattr(out, "cache", None)
    return c if c is not None else getattr(out, "past_key_values", None)
