"""Overhead of `lean-solve check` (kernel backend) over the bare Lean process, and the
parallel throughput of the batch API, measured in one run on the same 100 prelude files.

    python bench/check_overhead.py [--files 100] [--workers 2]

Prints, and writes to bench/results/check_overhead.json:
  one-file ratio   median time of verify() per file / median bare `lean --json` per file (target <= 1.10)
  batch ratio      check_many() over all files, in parallel / bare Lean over all files, serially
  parallel speedup check_many() with 1 worker / with N workers (target >= 1.8 on 2 cores)
  CLI ratio        the `lean-solve check` command per file (with Python start-up) / bare Lean
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from solve_in_lean.lean import CheckRequest, get_checker
from solve_in_lean.lean.kernel import driver_command, find_library
from solve_in_lean.verify import verify

PRELUDE = (Path(__file__).resolve().parents[1] / "examples" / "prelude.lean").read_text()


def unary(k: int) -> str:
    return "N.zero" if k == 0 else f"(N.succ {unary(k - 1)})"


def make_file(i: int) -> str:
    a, b = i % 7, (i * 3) % 5
    claim = a + b + (1 if i % 10 == 0 else 0)  # every tenth file is wrong
    return PRELUDE + f"theorem t{i} : Eq (N.add {unary(a)} {unary(b)}) {unary(claim)} := Eq.refl _\n"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cli-files", type=int, default=10)
    args = ap.parse_args()

    lean = [*driver_command(find_library()), "--json"]
    checker = get_checker("kernel", timeout_s=60)
    files = [make_file(i) for i in range(args.files)]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, text in enumerate(files):
            p = Path(tmp) / f"f{i}.lean"
            p.write_text(text)
            paths.append(p)

        def bare(p: Path) -> None:
            subprocess.run([*lean, str(p)], capture_output=True, check=False)

        # warm both paths (page cache, driver build) before measuring
        bare(paths[0])
        verify(files[0], checker)

        bare_t, ours_t = [], []
        for p, text in zip(paths, files):  # interleaved, so machine noise hits both alike
            bare_t.append(timed(lambda: bare(p)))
            ours_t.append(timed(lambda: verify(text, checker)))
        one_file = statistics.median(ours_t) / statistics.median(bare_t)

        bare_serial = timed(lambda: [bare(p) for p in paths])
        requests = [CheckRequest(t) for t in files]
        batch_serial = timed(lambda: checker.check_many(requests, workers=1))
        batch_parallel = timed(lambda: checker.check_many(requests, workers=args.workers))
        verdicts = [r.status for r in checker.check_many(requests, workers=args.workers)]

        cli_t, cli_bare_t = [], []
        for p in paths[: args.cli_files]:
            cli_bare_t.append(timed(lambda: bare(p)))
            cli_t.append(timed(lambda: subprocess.run(
                [sys.executable, "-m", "solve_in_lean", "check", str(p), "--backend", "kernel"],
                capture_output=True, check=False)))

    result = {
        "files": args.files,
        "workers": args.workers,
        "bare_lean_median_s": statistics.median(bare_t),
        "verify_median_s": statistics.median(ours_t),
        "one_file_ratio": one_file,
        "bare_serial_total_s": bare_serial,
        "batch_serial_total_s": batch_serial,
        "batch_parallel_total_s": batch_parallel,
        "batch_ratio": batch_parallel / bare_serial,
        "parallel_speedup": batch_serial / batch_parallel,
        "cli_median_s": statistics.median(cli_t),
        "cli_ratio": statistics.median(cli_t) / statistics.median(cli_bare_t),
        "verdicts": {s: verdicts.count(s) for s in sorted(set(verdicts))},
    }
    print(f"bare Lean per file (median):        {result['bare_lean_median_s'] * 1000:7.1f} ms")
    print(f"verify() per file (median):         {result['verify_median_s'] * 1000:7.1f} ms")
    print(f"one-file ratio (target <= 1.10):    {one_file:7.3f}")
    print(f"bare Lean, {args.files} files serially:    {bare_serial:7.2f} s")
    print(f"check_many, 1 worker:               {batch_serial:7.2f} s")
    print(f"check_many, {args.workers} workers:              {batch_parallel:7.2f} s")
    print(f"batch ratio (parallel / bare serial): {result['batch_ratio']:5.3f}")
    print(f"parallel speedup (target >= 1.8):   {result['parallel_speedup']:7.3f}")
    print(f"CLI per file incl. Python start-up: {result['cli_median_s'] * 1000:7.1f} ms "
          f"(ratio {result['cli_ratio']:.2f})")
    print(f"verdicts: {result['verdicts']}")
    out = Path(__file__).parent / "results" / "check_overhead.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
