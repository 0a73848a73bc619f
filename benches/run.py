"""Run the registered benchmarks and print ours vs baseline medians and their ratios.

Usage: ``python benches/run.py [--only SUBSTR] [--repeats N] [--out DIR]`` (``make bench ONLY=name``).
Writes ``DIR/results.json`` and ``DIR/ratios.png``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import REGISTRY, time_callable  # noqa: E402


def _fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _gpu_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def load_modules(only: str | None) -> None:
    for path in sorted(HERE.glob("bench_*.py")):
        importlib.import_module(path.stem)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--only", default=os.environ.get("ONLY") or None, help="substring of module or workload name"
    )
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", default="bench-results")
    args = ap.parse_args(argv)

    load_modules(args.only)
    selected = [b for b in REGISTRY if not args.only or args.only in b.name or args.only in b.module]
    if not selected:
        print(f"no benchmark matches {args.only!r}; known: {', '.join(b.name for b in REGISTRY)}")
        return 2
    gpu = _gpu_available()
    rows = []
    header = f"{'workload':<44} {'ours':>10} {'baseline':<26} {'base':>10} {'ratio':>8}  target"
    print(header)
    print("-" * len(header))
    for b in selected:
        if b.gpu and not gpu:
            print(f"{b.name:<44} skipped: needs a CUDA GPU")
            rows.append({"workload": b.name, "skipped": "needs a CUDA GPU", "target": b.target})
            continue
        try:
            case = b.setup()
            ours = time_callable(case.ours, repeats=case.repeats or args.repeats)
            row = {
                "workload": b.name,
                "ours_s": ours.median_s,
                "ours_samples": ours.samples,
                "target": b.target,
                "info": case.info,
                "per": case.per,
                "baselines": {},
            }
            if not case.baselines:
                print(
                    f"{b.name:<44} {_fmt_time(ours.median_s):>10} {'(none)':<26} {'-':>10} {'-':>8}  {b.target}"
                )
            for bname, bfn in case.baselines.items():
                bt = time_callable(bfn, repeats=case.baseline_repeats or case.repeats or args.repeats)
                ratio = bt.median_s / ours.median_s if ours.median_s > 0 else float("inf")
                row["baselines"][bname] = {"median_s": bt.median_s, "samples": bt.samples, "ratio": ratio}
                print(
                    f"{b.name:<44} {_fmt_time(ours.median_s):>10} {bname[:26]:<26} "
                    f"{_fmt_time(bt.median_s):>10} {ratio:>7.2f}x  {b.target}"
                )
            if case.per:
                print(f"{'':<44} per item: ours {_fmt_time(ours.median_s / case.per)}")
            for k, v in case.info.items():
                print(f"{'':<44} {k}: {v}")
            rows.append(row)
        except Exception as e:  # a broken benchmark is reported, the rest still run
            traceback.print_exc()
            rows.append({"workload": b.name, "error": f"{type(e).__name__}: {e}"})
            print(f"{b.name:<44} ERROR {type(e).__name__}: {e}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    (out / "results.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2, default=str))
    _chart(rows, out / "ratios.png")
    print(f"\nwrote {out / 'results.json'} and {out / 'ratios.png'}")
    return 1 if any("error" in r for r in rows) else 0


def _chart(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no chart")
        return
    labels, ratios = [], []
    for r in rows:
        for bname, b in r.get("baselines", {}).items():
            labels.append(f"{r['workload']} vs {bname}")
            ratios.append(b["ratio"])
    if not labels:
        return
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(labels) + 1.5))
    colors = ["tab:green" if x >= 1 else "tab:red" for x in ratios]
    ax.barh(range(len(labels)), ratios, color=colors)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xlabel("speed-up (baseline median / stepfuse median), log scale")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
