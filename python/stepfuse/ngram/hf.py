"""transformers adapter: a drop-in, incremental ``NoRepeatNGramLogitsProcessor`` (needs ``stepfuse[hf]``)."""

from __future__ import annotations

from typing import Any

from stepfuse.errors import require
from stepfuse.ngram._norepeat import NoRepeatNGram

_tf = require("transformers", "hf")
torch: Any = require("torch", "torch")

__all__ = ["NoRepeatNGramLogitsProcessor"]


class NoRepeatNGramLogitsProcessor(_tf.LogitsProcessor):  # type: ignore[misc,name-defined]
    """Same output as ``transformers.NoRepeatNGramLogitsProcessor(ngram_size)``, computed incrementally.

    Keeps a :class:`NoRepeatNGram` state across calls: a row whose ids extend the previous call's row
    costs O(new tokens · n); a row that changed (beam reordering, a new batch) is rebuilt. Returns a new
    tensor with banned ids at ``-inf`` (``scores`` itself when fewer than ``ngram_size`` ids exist).

    Args (call): ``input_ids`` ``LongTensor [B, L]``, ``scores`` ``FloatTensor [B, V]``.
    """

    def __init__(self, ngram_size: int) -> None:
        if not isinstance(ngram_size, int) or ngram_size <= 0:
            raise ValueError(f"`ngram_size` has to be a strictly positive integer, but is {ngram_size}")
        self.ngram_size = ngram_size
        self._state: NoRepeatNGram | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if input_ids.shape[-1] < self.ngram_size:
            return scores
        if self._state is None:
            self._state = NoRepeatNGram(self.ngram_size, int(input_ids.shape[0]))
        self._state.sync(input_ids)
        return self._state.apply(scores.clone())
