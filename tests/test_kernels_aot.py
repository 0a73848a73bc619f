"""The Triton kernels compile for a real GPU target (sm_90) even where no GPU exists.

The interpreter used by the other kernel tests accepts programs the GPU compiler rejects; this runs
``stepfuse.kernels.aot_check`` (Triton's full pipeline to a cubin) in a subprocess without
``TRITON_INTERPRET``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("triton") is None or importlib.util.find_spec("triton.backends.nvidia") is None,
    reason="needs triton with its CUDA backend",
)
def test_kernels_compile_for_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run(
        [sys.executable, "-W", "error", "-m", "stepfuse.kernels.aot_check", "--quick"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("ok ") == 6, out.stdout
