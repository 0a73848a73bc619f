"""stepfuse.superposed: Superposed Decoding (imports torch/transformers lazily)."""

from __future__ import annotations

__all__: list[str] = []
