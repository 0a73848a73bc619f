"""stepfuse.kernels: Triton GPU kernels with fp32 torch references (the CPU fallback).

Shipped inside the wheel as ``stepfuse.kernels`` (the source lives in the repository's top-level
``kernels/`` folder). Importing this package needs nothing beyond numpy: the public functions below
are loaded on first access from their submodules, which import torch (and triton) then.

* :func:`fused_range_logprobs`, :func:`fused_topk` — GFD byte-prefix range fusion, one pass per logit row.
* :func:`shared_prefix_attention` — cascade decode attention, shared prefix KV read once for all beams.
* :func:`merge_attention_states` — LSE merge of two partial attention states.

Which path runs: the Triton kernel when Triton is installed and the tensors are on CUDA, or are on
the CPU with ``TRITON_INTERPRET=1`` set before the first call (the interpreter); otherwise the fp32
torch reference from :mod:`stepfuse.kernels.reference`, which computes the same values.
``STEPFUSE_KERNELS=reference`` forces the reference, and every function takes ``backend=`` ("auto",
"triton", "reference") to choose per call. ``python -m stepfuse.kernels.aot_check`` compiles every
kernel for a GPU target without needing a GPU.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "TopK",
    "fused_range_logprobs",
    "fused_topk",
    "merge_attention_states",
    "shared_prefix_attention",
]

_HOME = {
    "TopK": "stepfuse.kernels.reference",
    "fused_range_logprobs": "stepfuse.kernels.fusion",
    "fused_topk": "stepfuse.kernels.fusion",
    "merge_attention_states": "stepfuse.kernels.attention",
    "shared_prefix_attention": "stepfuse.kernels.attention",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'stepfuse.kernels' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
