"""Throw malformed input at every binding of the extension module: errors are fine, panics are bugs.

Every public function and class of ``stepfuse._core`` is discovered at run time, so a binding added
later is covered without editing this file. A PyO3 panic surfaces as ``pyo3_runtime.PanicException``,
a ``BaseException`` that ``except Exception`` does not catch: the test fails on it.
"""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepfuse import _core

# Values small enough that no binding can legitimately spend long or allocate much on them, yet
# covering the classic edge cases: empty, negative, huge, NaN/inf, wrong types and shapes.
_SCALARS = st.sampled_from(
    [
        None,
        0,
        1,
        -1,
        2,
        7,
        2**31,
        2**63 - 1,
        -(2**63),
        2**64,
        0.5,
        float("nan"),
        float("inf"),
        float("-inf"),
        "",
        "a",
        "\udcff",
        b"",
        b"\x00",
        b"\xff\xfe",
        b"abc",
        bytearray(b"ab"),
        True,
        (),
        [],
        {},
        object(),
    ]
)


def _arrays() -> st.SearchStrategy[object]:
    dtypes = st.sampled_from(
        [np.int8, np.int32, np.int64, np.uint8, np.uint64, np.float32, np.float64, np.bool_, object]
    )
    shapes = st.sampled_from([(0,), (1,), (3,), (2, 2), (0, 3), (3, 0), (1, 1, 1)])

    @st.composite
    def build(draw: st.DrawFn) -> object:
        dt, shape = draw(dtypes), draw(shapes)
        vals = draw(st.sampled_from([0, 1, -1, 3, 2**31 - 1]))
        if dt is object:
            a = np.full(shape, None, dtype=object)
        else:
            # Wrap-around cast on purpose: -1 as uint64 and 2**31 - 1 as int8 are edge values too.
            a = np.full(shape, vals, dtype=np.int64).astype(dt)
        if draw(st.booleans()) and a.ndim == 1 and a.size > 1:
            a = a[::2]  # non-contiguous view
        return a

    return build()


_VALUES = st.one_of(
    _SCALARS,
    _arrays(),
    st.lists(st.one_of(st.integers(-3, 3), st.binary(max_size=3), st.none()), max_size=4),
)


def _public_callables() -> list[tuple[str, object]]:
    out = []
    for name, obj in vars(_core).items():
        # Private bindings (``_NGramLM`` ...) are bindings too: only dunders are skipped.
        if name.startswith("__") or not callable(obj):
            continue
        out.append((name, obj))
    return sorted(out, key=lambda t: t[0])


def _is_panic(e: BaseException) -> bool:
    return type(e).__name__ == "PanicException"


def _call(fn: object, args: list[object]) -> object:
    try:
        return fn(*args)  # type: ignore[operator]
    except Exception:
        return None
    except BaseException as e:
        if _is_panic(e):
            raise AssertionError(f"panic escaped from {fn!r} with args {args!r}: {e}") from e
        raise


CALLABLES = _public_callables()


@pytest.fixture(autouse=True, scope="module")
def _scratch_cwd(tmp_path_factory: pytest.TempPathFactory) -> object:
    """Bindings that take a path (``save("a")``) write into a scratch directory, not the checkout."""
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("fuzz"))
    yield
    os.chdir(old)


@pytest.mark.skipif(not CALLABLES, reason="no public bindings yet")
@pytest.mark.parametrize(("name", "obj"), CALLABLES or [("none", None)], ids=[c[0] for c in CALLABLES] or ["none"])
@settings(max_examples=60)
@given(args=st.lists(_VALUES, max_size=5), margs=st.lists(_VALUES, max_size=4))
def test_no_panic_on_malformed_input(name: str, obj: object, args: list[object], margs: list[object]) -> None:
    result = _call(obj, args)
    if inspect.isclass(obj) and result is not None:
        # A constructor accepted these arguments: poke every public method of the instance too.
        for mname in dir(result):
            if mname.startswith("__"):
                continue
            meth = getattr(result, mname, None)
            if callable(meth):
                _call(meth, margs)
    # class-level constructors (staticmethods / classmethods such as from_bytes)
    if inspect.isclass(obj):
        for mname, attr in vars(obj).items():
            if mname.startswith("__"):
                continue
            if isinstance(attr, (staticmethod, classmethod)) or inspect.isbuiltin(getattr(obj, mname, None)):
                _call(getattr(obj, mname), margs)


def _valid_instances() -> dict[str, object]:
    """One small, valid instance of every extension class, so their methods see malformed input too
    (random constructor arguments rarely build one)."""
    from stepfuse.ngram import NGramCounts, NGramIndex, NGramLM, NoRepeatNGram

    sents = [[1, 2, 3, 1, 2], [2, 3, 4], [1]]
    tree = _core.SearchTree(2, seed=1, max_nodes=1000)
    tree.expand(tree.roots, np.array([0, 2, 3], np.int64), np.array([0.5, 0.5, 1.0], np.float32))
    out: dict[str, object] = {
        "ByteVocab": _core.ByteVocab([b"a", b"ab", None, b"\xff", b"ab", b""], special_ids=[2]),
        "SearchTree": tree,
        "_NGramCounts": NGramCounts.count(sents, 3)._inner,
        "_NGramLM": NGramLM.train(sents, 3, vocab_size=6)._inner,
        "_NGramLM_mle": NGramLM.train(sents, 3, smoothing="interpolated_mle", weights=[0.2, 0.3, 0.5])._inner,
        "_NoRepeatNGram": NoRepeatNGram(2, 2)._inner,
        "_NGramIndex": NGramIndex.build(["the cat sat on the mat"], n=2)._inner,
    }
    out["GfdLayout"] = out["ByteVocab"].gfd_layout([b"a"], [np.array([0, 1], np.int64)], 4)  # type: ignore[attr-defined]
    return out


try:
    INSTANCES = sorted(_valid_instances().items())
except Exception as e:  # an API change must not hide the whole module; the test below reports it
    INSTANCES = [("build-failed", e)]


@pytest.mark.parametrize(("name", "inst"), INSTANCES, ids=[n for n, _ in INSTANCES])
@settings(max_examples=40)
@given(margs=st.lists(_VALUES, max_size=5))
def test_no_panic_in_methods_of_valid_instances(name: str, inst: object, margs: list[object]) -> None:
    assert not isinstance(inst, Exception), f"could not build the valid instances: {inst!r}"
    for mname in dir(inst):
        if mname.startswith("__"):
            continue
        meth = getattr(inst, mname, None)
        if callable(meth):
            _call(meth, margs)


def test_every_extension_class_has_a_valid_instance() -> None:
    """A class added to the extension later must get an entry in ``_valid_instances``."""
    classes = {n for n, o in vars(_core).items() if inspect.isclass(o) and not n.startswith("__")}
    built = {type(inst).__name__ for _, inst in INSTANCES}
    assert classes <= built, f"add a valid instance for: {sorted(classes - built)}"


def test_call_reports_a_panic_and_swallows_ordinary_errors() -> None:
    """The detector itself: PyO3's PanicException derives from BaseException, so it is re-raised."""

    class PanicException(BaseException):
        pass

    def panics() -> None:
        raise PanicException("index out of bounds")

    def errors() -> None:
        raise ValueError("fine")

    assert _call(errors, []) is None
    with pytest.raises(AssertionError, match="panic escaped"):
        _call(panics, [])
