"""Run all benchmarks and print one table: ``python -m bench [--quick] [--only NAME]``."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from pathlib import Path

from bench import BenchRow


def discover() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", action="append", default=[], help="run only these modules")
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args()
    rows: list[BenchRow] = []
    for name in discover():
        if args.only and name not in args.only and name.removeprefix("bench_") not in args.only:
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(f"bench.{name}")
        rows.extend(module.run(quick=args.quick))
    header = ["benchmark", "value", "unit", "baseline", "baseline value", "ratio", "target", "ok"]
    table = [
        [
            r.benchmark,
            fmt(r.value),
            r.unit,
            r.baseline,
            fmt(r.baseline_value),
            "-" if r.ratio is None else f"{r.ratio:.2f}x",
            r.target,
            "-" if r.ok is None else ("yes" if r.ok else "NO"),
        ]
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table, strict=False)]
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for row in table:
        print(" | ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)))
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
