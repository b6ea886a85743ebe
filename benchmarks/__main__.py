"""Run a benchmark: ``python -m benchmarks NAME [--json]``; ``python -m benchmarks all [--json] [--out PATH]`` runs
every one.

Each benchmark is a module ``benchmarks/<name>.py`` with ``main(argv) -> dict``; it prints a readable table and,
with ``--json``, prints one JSON object of figures as its last line. ``all`` runs each with its default settings and
writes their figures, with the machine and the time each took, to one JSON file (``benchmarks/results.json`` unless
``--out`` says otherwise); a benchmark that fails is recorded with its error and the others still run.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path(__file__).parent / "results.json"


def _names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))


def _machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import numpy as np
    import torch
    from upbringing.curriculum.tracking import git_commit

    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "numpy": np.__version__,
        "torch": torch.__version__,
    }


def run_all(names: list[str], out: Path) -> dict[str, Any]:
    """Run every benchmark in ``names`` with its defaults; write and return ``{"machine", "seconds", "results",
    "errors"}``."""
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    errors: dict[str, str] = {}
    machine = _machine()
    for name in names:
        print(f"=== benchmark {name}", flush=True)
        start = time.perf_counter()
        try:
            results[name] = importlib.import_module(f"benchmarks.{name}").main([])
        except Exception as err:  # one broken benchmark must not lose the others' figures
            traceback.print_exc()
            errors[name] = f"{type(err).__name__}: {err}"
        seconds[name] = round(time.perf_counter() - start, 1)
    combined = {"machine": machine, "seconds": seconds, "results": results, "errors": errors}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(combined, indent=1, default=float) + "\n", encoding="utf-8")
    print(f"written: {out}", flush=True)
    return combined


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = _names()
    if not argv or argv[0] in ("-h", "--help"):
        print(
            "usage: python -m benchmarks NAME [--json]\n"
            "       python -m benchmarks all [--json] [--out PATH]\n"
            f"benchmarks: {', '.join(names)}, all"
        )
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name == "all":
        out = DEFAULT_OUT
        if "--out" in rest:
            i = rest.index("--out")
            if i + 1 >= len(rest):
                print("error: --out needs a path", file=sys.stderr)
                return 2
            out = Path(rest[i + 1])
            rest = rest[:i] + rest[i + 2 :]
        unknown = [a for a in rest if a != "--json"]
        if unknown:
            print(f"error: `all` runs every benchmark with its defaults; unknown: {' '.join(unknown)}", file=sys.stderr)
            return 2
        combined = run_all(names, out)
        if "--json" in rest:
            print(json.dumps(combined, default=float))
        return 1 if combined["errors"] else 0
    if name not in names:
        print(f"error: unknown benchmark {name!r}; choose from: {', '.join(names)}, all", file=sys.stderr)
        return 2
    result = importlib.import_module(f"benchmarks.{name}").main(rest)
    if "--json" in rest:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
