"""stepfuse.fusion: Generative Fusion Decoding (imports torch/transformers lazily)."""

from __future__ import annotations

__all__: list[str] = []
