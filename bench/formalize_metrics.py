"""Autoformalization metrics per dataset from `lean-solve formalize --output` files.

    python bench/formalize_metrics.py out.jsonl [more.jsonl ...] [--json] [--save NAME]

Prints elaboration rate, first-try and candidate elaboration, judge-yes rate, judge/cheap-check
agreement, cheap-check pass rate, repair rounds used and distinct statements per problem
(definitions in autoformalize/metrics.py). `--save NAME` also writes
bench/results/NAME.json with the metrics, the input files and the models that produced them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from autoformalize.metrics import format_table, metrics_by_dataset
from solve_in_lean.records import read_jsonl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--save", help="also write bench/results/NAME.json")
    args = parser.parse_args()
    records = [r for f in args.files for r in read_jsonl(f)]
    metrics = metrics_by_dataset(records)
    print(json.dumps(metrics, indent=2) if args.json else format_table(metrics))
    if args.save:
        out = Path(__file__).parent / "results" / f"{args.save}.json"
        out.write_text(json.dumps({"files": args.files, "models": sorted({r["model"] for r in records}),
                                   "metrics": metrics}, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
