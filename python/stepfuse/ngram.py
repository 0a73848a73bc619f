"""stepfuse.ngram (see ARCHITECTURE.md)."""

from __future__ import annotations

__all__: list[str] = []
