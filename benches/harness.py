"""The benchmark harness: a registry of workloads, each timing our callable against named baselines.

A benchmark module (``benches/bench_<area>.py``) registers workloads with :func:`bench`::

    @bench("vocab/extending-batched", target=">= 20x bisect")
    def _():
        data = make_data()                      # setup, not timed
        return Case(
            ours=lambda: vocab.extending_batch(queries),
            baselines={"python bisect": lambda: bisect_all(queries)},
            info={"per_query_us": None},          # extra figures to report
            per=len(queries),                     # optional: report time per item too
        )

The runner warms up once, picks a call count so that one sample lasts at least ``min_sample_s``,
takes ``repeats`` samples, and reports medians. Ratios are baseline / ours from the same run
(> 1 means stepfuse is faster). No test asserts on any of these times.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Case:
    """One workload's callables. ``ours`` and every baseline take no arguments."""

    ours: Callable[[], Any]
    baselines: dict[str, Callable[[], Any]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    per: int | None = None  # items per call, to report time per item
    repeats: int | None = None  # override the runner's repeat count (e.g. slow baselines)
    baseline_repeats: int | None = None


@dataclass
class Bench:
    name: str
    setup: Callable[[], Case]
    target: str = ""
    gpu: bool = False
    module: str = ""


REGISTRY: list[Bench] = []


def bench(
    name: str, *, target: str = "", gpu: bool = False
) -> Callable[[Callable[[], Case]], Callable[[], Case]]:
    """Register a workload. ``name`` is ``area/workload``; the decorated function builds the Case."""

    def deco(fn: Callable[[], Case]) -> Callable[[], Case]:
        REGISTRY.append(Bench(name=name, setup=fn, target=target, gpu=gpu, module=fn.__module__))
        return fn

    return deco


@dataclass
class Timing:
    median_s: float
    samples: list[float]
    number: int


def time_callable(fn: Callable[[], Any], repeats: int = 7, min_sample_s: float = 0.05) -> Timing:
    """Median seconds per call of ``fn`` over ``repeats`` samples of ``number`` calls each."""
    fn()  # warm-up (also JIT/caches)
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_sample_s or number >= 1 << 20:
            break
        number = max(number * 2, int(number * min_sample_s / max(dt, 1e-9)) + 1)
    samples = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            samples.append((time.perf_counter() - t0) / number)
    finally:
        if gc_was:
            gc.enable()
    return Timing(statistics.median(samples), samples, number)
