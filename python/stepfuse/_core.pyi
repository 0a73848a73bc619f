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

from typing import final  # noqa: E402

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

@final
class _NGramCounts:
    @staticmethod
    def count(tokens: object, offsets: object, order: int, vocab_size: int, chunk: int = ...) -> _NGramCounts: ...
    def merge(self, other: _NGramCounts) -> _NGramCounts: ...
    @property
    def order(self) -> int: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def tokens(self) -> int: ...
    @property
    def sentences(self) -> int: ...
    def num_ngrams(self, n: int) -> int: ...
    def ngrams(self, n: int) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint64]]: ...

@final
class _NGramLM:
    @staticmethod
    def train(
        counts: _NGramCounts,
        smoothing: str,
        weights: list[float] | None = None,
        discount_fallback: tuple[float, float, float] | None = None,
    ) -> _NGramLM: ...
    @property
    def order(self) -> int: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def weights(self) -> list[float] | None: ...
    @property
    def discounts(self) -> list[tuple[float, float, float]]: ...
    @property
    def hash_nbytes(self) -> int: ...
    @property
    def has_ngrams(self) -> bool: ...
    def count(self, n: int) -> int: ...
    def entry(self, ngram: object) -> tuple[float, float] | None: ...
    def score(self, contexts: npt.NDArray[np.int64], tokens: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]: ...
    def next_logprobs(self, contexts: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]: ...

# ---- end ngram --------------------------------------------------------------------------------



# ---- strings ----------------------------------------------------------------------------------

# ---- end strings ------------------------------------------------------------------------------
