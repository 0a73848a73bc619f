"""stepfuse.kernels: Triton GPU kernels with fp32 torch references (the CPU fallback).

Shipped inside the wheel as ``stepfuse.kernels`` (the source lives in the repository's top-level
``kernels/`` folder). Importing this package needs nothing beyond numpy: torch and triton are
imported by the functions that use them.
"""

from __future__ import annotations

__all__: list[str] = []
