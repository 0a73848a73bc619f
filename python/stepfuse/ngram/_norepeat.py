"""Incremental no-repeat-n-gram blocking for batches of sequences (numpy or torch logits)."""

from __future__ import annotations

from typing import Any

import numpy as np

from stepfuse import _core
from stepfuse.errors import InvalidArgumentError, InvalidTypeError


class NoRepeatNGram:
    """Bans, in place, the tokens that would complete an n-gram a sequence already contains.

    The rule of transformers' ``NoRepeatNGramLogitsProcessor`` (Paulus et al. 2017): after ``x_1..x_L``
    with ``L >= n``, token ``t`` is banned when ``(x_{L-n+2}, .., x_L, t)`` already occurs. The state is
    incremental (Rust, a hash map of (n-1)-gram prefixes per sequence): :meth:`update` appends one token
    per row in O(n), :meth:`apply` masks the banned ids in O(n + earlier occurrences of the prefix).

    Args:
        n: n-gram size (>= 1).
        batch_size: number of sequences B.
        prompts: optional B initial sequences (ragged allowed).
    """

    def __init__(self, n: int, batch_size: int = 1, prompts: Any = None) -> None:
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise InvalidArgumentError(f"n: must be an integer >= 1, got {n!r}")
        if prompts is not None:
            prompts = list(prompts)
            batch_size = len(prompts)
        self._inner = _core._NoRepeatNGram(int(n), int(batch_size))
        if prompts is not None:
            for i, p in enumerate(prompts):
                self._inner.extend_row(i, np.asarray(p))

    @property
    def n(self) -> int:
        return int(self._inner.n)

    @property
    def batch_size(self) -> int:
        return int(self._inner.batch_size)

    def update(self, tokens: Any) -> None:
        """Append one token per row (``int [B]``, numpy or torch)."""
        self._inner.update(_np_ids(tokens))

    def extend(self, row: int, tokens: Any) -> None:
        """Append several tokens to one row."""
        self._inner.extend_row(row, _np_ids(tokens))

    def sync(self, input_ids: Any) -> None:
        """Match the states to ``input_ids [B, L]``: rows that grew are extended, others rebuilt."""
        a = _np_ids(input_ids)
        if a.ndim != 2:
            raise InvalidArgumentError(f"input_ids: must be 2-D [B, L], got ndim={a.ndim}")
        self._inner.sync(np.ascontiguousarray(a, dtype=np.int64))

    def banned(self, vocab_size: int = 2**32 - 1) -> tuple[np.ndarray, np.ndarray]:
        """Banned ``(rows, token_ids)`` as two ``int64`` arrays (ids below ``vocab_size`` only)."""
        return self._inner.banned(int(vocab_size))

    def history(self, row: int) -> np.ndarray:
        return self._inner.history(row)

    def apply(self, logits: Any) -> Any:
        """Set the banned entries of ``logits [B, V]`` (numpy or torch, any float dtype/device) to -inf
        in place and return it."""
        if type(logits).__module__.split(".")[0] == "torch":
            if logits.dim() != 2 or logits.shape[0] != self.batch_size:
                raise InvalidArgumentError(
                    f"logits: must be [{self.batch_size}, V], got {tuple(logits.shape)}"
                )
            import torch

            rows, cols = self._inner.banned(int(logits.shape[1]))
            if rows.size:
                logits[
                    torch.from_numpy(rows).to(logits.device), torch.from_numpy(cols).to(logits.device)
                ] = -float("inf")
            return logits
        if not isinstance(logits, np.ndarray):
            raise InvalidTypeError(
                f"logits: must be a numpy array or torch tensor, got {type(logits).__name__}"
            )
        if logits.ndim != 2 or logits.shape[0] != self.batch_size:
            raise InvalidArgumentError(f"logits: must be [{self.batch_size}, V], got {logits.shape}")
        if logits.dtype == np.float32 and logits.flags.c_contiguous and logits.flags.writeable:
            self._inner.apply_f32(logits)
        else:
            rows, cols = self._inner.banned(int(logits.shape[1]))
            logits[rows, cols] = -np.inf
        return logits


def _np_ids(x: Any) -> np.ndarray:
    if type(x).__module__.split(".")[0] == "torch":
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.size == 0 and a.dtype.kind not in "iu":
        return a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise InvalidTypeError(f"tokens: must hold integer ids, got dtype {a.dtype}")
    return a
