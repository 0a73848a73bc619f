"""The ``stepfuse`` command line: ``--version``, ``demo``, ``bench``, ``decontaminate``."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def _capabilities() -> list[tuple[str, bool]]:
    """Which areas of the library are importable and populated in this installation."""
    out = []
    for name in ("vocab", "ngram", "strings", "search", "fusion", "superposed", "kernels"):
        try:
            mod = importlib.import_module(f"stepfuse.{name}")
            out.append((name, bool(getattr(mod, "__all__", []))))
        except ImportError:
            out.append((name, False))
    return out


def _cmd_demo(args: argparse.Namespace, rest: list[str]) -> int:
    try:
        demo = importlib.import_module("stepfuse.fusion.demo")
    except ImportError:
        demo = None
    if demo is not None and hasattr(demo, "main"):
        return int(demo.main(rest) or 0)
    print("The fusion demo is not part of this build yet. Available areas:")
    for name, ok in _capabilities():
        print(f"  {name:<11} {'ready' if ok else 'not yet available'}")
    return 0


def _cmd_bench(args: argparse.Namespace, rest: list[str]) -> int:
    root = Path(__file__).resolve().parents[2]
    runner = root / "benches" / "run.py"
    if not runner.exists():
        print("stepfuse bench runs from a source checkout (benches/ is not shipped in the wheel).")
        return 2
    return subprocess.call([sys.executable, str(runner), *rest], cwd=root)


def _cmd_decontaminate(args: argparse.Namespace, rest: list[str]) -> int:
    mod = importlib.import_module("stepfuse.ngram")
    main = getattr(mod, "decontaminate_main", None)
    if main is None:
        print("decontaminate is not part of this build yet.")
        return 2
    return int(main(rest) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``stepfuse`` and ``python -m stepfuse``."""
    from stepfuse import __version__

    parser = argparse.ArgumentParser(prog="stepfuse", description=__doc__)
    parser.add_argument("--version", action="version", version=f"stepfuse {__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("demo", help="offline Generative Fusion Decoding demo (Whisper + LM)", add_help=False)
    sub.add_parser("bench", help="run the benchmarks (from a source checkout)", add_help=False)
    sub.add_parser("decontaminate", help="n-gram overlap scan of documents against a reference", add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        return _cmd_demo(args, rest)
    if args.command == "bench":
        return _cmd_bench(args, rest)
    if args.command == "decontaminate":
        return _cmd_decontaminate(args, rest)
    parser.print_help()
    return 0
