"""Shared launcher helpers: when Triton runs, argument checks that raise stepfuse errors, small math."""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from stepfuse.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    LimitExceededError,
    MissingDependencyError,
    NonFiniteError,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "BACKENDS",
    "LAUNCH",
    "check_device",
    "check_float_tensor",
    "check_int_tensor",
    "check_shape",
    "interpret_mode",
    "next_pow2",
    "program_target",
    "real_scalar",
    "torch_module",
    "use_triton",
]


LAUNCH: dict[str, Any] = {"enable_fp_fusion": True}
"""Options every launch passes: FMA contraction requested explicitly (Triton warns when left implicit)."""


def torch_module() -> Any:
    """Import torch, or raise MissingDependencyError naming the extra."""
    from stepfuse.errors import require

    return require("torch", "torch")


@functools.lru_cache(maxsize=1)
def _triton_importable() -> bool:
    try:
        import triton
        import triton.language  # noqa: F401
    except ImportError:
        return False
    return True


def interpret_mode() -> bool:
    """Whether Triton kernels run in the CPU interpreter.

    Triton fixes this when a ``@triton.jit`` function is defined, so it is read from the environment
    the first time a kernel module is imported (``TRITON_INTERPRET=1`` must be set before that).
    """
    from stepfuse.kernels import _attention_jit, _fusion_jit

    # Both kernel modules load here together, so they agree on the mode.
    return bool(_fusion_jit.INTERPRET and _attention_jit.INTERPRET)


BACKENDS = ("auto", "triton", "reference")


def use_triton(device: torch.device, backend: str = "auto") -> bool:
    """Whether the Triton kernel (else the fp32 torch reference) serves tensors on ``device``.

    ``backend="auto"``: Triton runs when it is installed and either the tensors are on CUDA (compiled
    kernels) or they are on the CPU and ``TRITON_INTERPRET=1`` was set before the first kernel use
    (the interpreter, used by the tests); every other case (no Triton, CPU without the interpreter,
    other devices) runs the reference, which computes the same values in fp32 torch ops. The
    environment variable ``STEPFUSE_KERNELS=reference`` turns "auto" into "reference".
    ``backend="reference"`` always runs the reference; ``backend="triton"`` insists on Triton and
    raises where it cannot run.
    """
    if backend not in BACKENDS:
        raise InvalidArgumentError(f"backend: must be one of {BACKENDS}, got {backend!r}")
    if backend == "reference":
        return False
    if backend == "triton":
        if not _triton_importable():
            raise MissingDependencyError("triton is required for backend='triton': pip install 'stepfuse[torch]'")
        if device.type == "cuda" or (device.type == "cpu" and interpret_mode()):
            return True
        raise InvalidArgumentError(
            f"backend: 'triton' needs CUDA tensors, or TRITON_INTERPRET=1 set before the first kernel use "
            f"for CPU tensors (got {device.type} tensors)"
        )
    if os.environ.get("STEPFUSE_KERNELS", "") == "reference" or not _triton_importable():
        return False
    if device.type == "cuda":
        return True
    if device.type == "cpu":
        return os.environ.get("TRITON_INTERPRET", "0") == "1" and interpret_mode()
    return False


def program_target(device: torch.device) -> int:
    """How many programs a launch should aim for: two waves of the device's SMs (4 in the interpreter)."""
    if device.type == "cuda":
        import torch

        return 2 * int(torch.cuda.get_device_properties(device).multi_processor_count)
    return 4


def next_pow2(n: int) -> int:
    """Smallest power of two >= max(n, 1)."""
    return 1 << max(int(n) - 1, 0).bit_length()


def check_tensor(x: object, arg: str) -> torch.Tensor:
    torch = torch_module()
    if not isinstance(x, torch.Tensor):
        raise InvalidTypeError(f"{arg}: expected a torch.Tensor, got {type(x).__name__}")
    return x


_FLOATS = ("float32", "float16", "bfloat16")


def check_float_tensor(x: object, arg: str, ndim: int) -> torch.Tensor:
    """``x`` as a tensor of ``ndim`` dims with dtype float32/float16/bfloat16, else a stepfuse error."""
    t = check_tensor(x, arg)
    if str(t.dtype).removeprefix("torch.") not in _FLOATS:
        raise InvalidTypeError(f"{arg}: dtype must be float32, float16 or bfloat16, got {t.dtype}")
    if t.dim() != ndim:
        raise InvalidArgumentError(f"{arg}: must have {ndim} dimensions, got shape {tuple(t.shape)}")
    return t


def check_int_tensor(x: object, arg: str, ndim: int) -> torch.Tensor:
    """``x`` as a tensor of ``ndim`` dims with an integer dtype, else a stepfuse error."""
    torch = torch_module()
    t = check_tensor(x, arg)
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise InvalidTypeError(f"{arg}: dtype must be an integer type, got {t.dtype}")
    if t.dim() != ndim:
        raise InvalidArgumentError(f"{arg}: must have {ndim} dimensions, got shape {tuple(t.shape)}")
    return t


def check_shape(t: torch.Tensor, arg: str, shape: tuple[int, ...], names: str) -> None:
    """Raise InvalidArgumentError unless ``t.shape == shape``; ``names`` spells the expected shape."""
    if tuple(t.shape) != tuple(shape):
        raise InvalidArgumentError(f"{arg}: shape must be {names} = {tuple(shape)}, got {tuple(t.shape)}")


def check_device(ref: torch.Tensor, ref_arg: str, **tensors: torch.Tensor) -> None:
    """Raise InvalidArgumentError unless every tensor lives on ``ref``'s device."""
    for arg, t in tensors.items():
        if t.device != ref.device:
            raise InvalidArgumentError(
                f"{arg}: must be on the same device as {ref_arg} ({ref.device}), got {t.device}"
            )


def real_scalar(x: object, arg: str) -> float:
    """``x`` as a Python float (from int/float/0-dim tensor), rejecting NaN/inf and non-numbers."""
    if isinstance(x, bool) or not hasattr(x, "__float__"):
        raise InvalidTypeError(f"{arg}: expected a real number, got {type(x).__name__}")
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError, RuntimeError) as e:
        raise InvalidTypeError(f"{arg}: expected a real number ({e})") from e
    if v != v or v in (float("inf"), float("-inf")):
        raise NonFiniteError(f"{arg}: must be finite, got {v}")
    return v


def check_limit(value: int, limit: int, arg: str) -> None:
    if value > limit:
        raise LimitExceededError(f"{arg}: at most {limit} supported, got {value}")
