"""Exceptions raised by stepfuse.

Every error derives from :class:`StepfuseError` and also from the built-in class that fits
(``ValueError`` for bad values, ``TypeError`` for wrong kinds, ``OSError`` for files), so callers
can catch either. Messages name the argument and the constraint it broke. Errors raised by the
Rust core arrive as these classes through one conversion in the bindings.
"""

from __future__ import annotations

__all__ = [
    "FormatError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "LimitExceededError",
    "MissingDependencyError",
    "NonFiniteError",
    "OutOfRangeError",
    "StepfuseError",
    "StepfuseIOError",
]


class StepfuseError(Exception):
    """Base class of every stepfuse error."""


class InvalidArgumentError(StepfuseError, ValueError):
    """An argument breaks a documented constraint (shape, emptiness, allowed values)."""


class OutOfRangeError(InvalidArgumentError):
    """An id or index lies outside its valid range."""


class NonFiniteError(InvalidArgumentError):
    """NaN (or +inf) where a finite number or -inf is required."""


class LimitExceededError(InvalidArgumentError):
    """A configured cap (``max_nodes``, ``max_covers``, ...) would be exceeded."""


class FormatError(InvalidArgumentError):
    """A file or buffer is malformed; the message gives the line or byte offset."""


class InvalidTypeError(StepfuseError, TypeError):
    """An argument has the wrong type or dtype."""


class StepfuseIOError(StepfuseError, OSError):
    """Reading or writing a file failed."""


class MissingDependencyError(StepfuseError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require(module: str, extra: str) -> object:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``pip install stepfuse[extra]``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"{module} is required for this feature: pip install 'stepfuse[{extra}]'"
        ) from e
