"""The foundation: errors arrive as the right classes, the CLI works, import stays light."""

import subprocess
import sys

import pytest

import stepfuse
from stepfuse import _core, errors


@pytest.mark.parametrize(
    ("kind", "cls", "builtin"),
    [
        ("invalid", errors.InvalidArgumentError, ValueError),
        ("out_of_range", errors.OutOfRangeError, ValueError),
        ("non_finite", errors.NonFiniteError, ValueError),
        ("limit", errors.LimitExceededError, ValueError),
        ("format", errors.FormatError, ValueError),
        ("type", errors.InvalidTypeError, TypeError),
        ("io", errors.StepfuseIOError, OSError),
    ],
)
def test_core_error_maps_to_python_class(kind, cls, builtin):
    with pytest.raises(cls) as info:
        _core._raise_core_error(kind, "the_arg", "the constraint")
    assert isinstance(info.value, errors.StepfuseError)
    assert isinstance(info.value, builtin)
    assert "the_arg" in str(info.value)
    assert "the constraint" in str(info.value)


def test_unknown_error_kind_is_plain_value_error():
    with pytest.raises(ValueError, match="kind"):
        _core._raise_core_error("nope", "a", "b")


def test_version_matches_package_metadata():
    from importlib.metadata import version

    assert stepfuse.__version__ == version("stepfuse")


def test_import_is_light():
    code = "import sys, stepfuse, stepfuse.kernels; print(sorted(m for m in ('torch','transformers','triton') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_version_and_help():
    out = subprocess.run([sys.executable, "-m", "stepfuse", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"stepfuse {stepfuse.__version__}"
    out = subprocess.run([sys.executable, "-m", "stepfuse"], capture_output=True, text=True, check=True)
    assert "demo" in out.stdout and "bench" in out.stdout


def test_public_names_resolve():
    for name in stepfuse.__all__:
        assert hasattr(stepfuse, name), name
