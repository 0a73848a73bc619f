# Hand-written stubs of the extension module stepfuse._core, kept true by
# `python -m mypy.stubtest stepfuse._core` in `make test`. One section per area.

__version__: str

def _raise_core_error(kind: str, arg: str, msg: str) -> None: ...

# ---- vocab ------------------------------------------------------------------------------------

# ---- end vocab --------------------------------------------------------------------------------



# ---- fusion -----------------------------------------------------------------------------------

# ---- end fusion -------------------------------------------------------------------------------



# ---- search -----------------------------------------------------------------------------------

# ---- end search -------------------------------------------------------------------------------



# ---- ngram ------------------------------------------------------------------------------------

# ---- end ngram --------------------------------------------------------------------------------



# ---- strings ----------------------------------------------------------------------------------
import numpy as _np  # noqa: E402

def hamming_distances(
    text: object, pattern: object, k: int | None = None, method: str = "auto"
) -> _np.ndarray: ...
def hamming_plan(text: object, pattern: object) -> str: ...
def hamming_distances_approx(
    text: object, pattern: object, eps: float, seed: int, delta: float = 0.01
) -> _np.ndarray: ...
def sumset(
    a: object, b: object, multiplicities: bool = False, method: str = "auto"
) -> tuple[_np.ndarray, _np.ndarray | None]: ...
def find_repetition(tokens: object, window: int, max_mismatch: int) -> int | None: ...


# ---- end strings ------------------------------------------------------------------------------
