"""stepfuse.search: test-time search over reasoning steps (see ARCHITECTURE.md)."""

from __future__ import annotations

__all__: list[str] = []
