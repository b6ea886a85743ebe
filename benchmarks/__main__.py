"""Run a benchmark: ``python -m benchmarks NAME [--json]``; ``python -m benchmarks all --json`` runs every one.

Each benchmark is a module ``benchmarks/<name>.py`` with ``main(argv) -> dict``; it prints a readable table and,
with ``--json``, prints one JSON object of figures as its last line.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path


def _names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = _names()
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: python -m benchmarks NAME [--json]\nbenchmarks: {', '.join(names)}, all")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name == "all":
        results = {
            n: importlib.import_module(f"benchmarks.{n}").main([a for a in rest if a != "--json"]) for n in names
        }
        if "--json" in rest:
            print(json.dumps(results))
        return 0
    if name not in names:
        print(f"error: unknown benchmark {name!r}; choose from: {', '.join(names)}, all", file=sys.stderr)
        return 2
    result = importlib.import_module(f"benchmarks.{name}").main(rest)
    if "--json" in rest:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
