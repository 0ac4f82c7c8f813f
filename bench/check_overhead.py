"""Overhead of checking with lean-solve (kernel backend) over the bare Lean process, measured in
one run on the same prelude files, interleaved so machine noise hits both sides alike.

    python bench/check_overhead.py [--files 100] [--workers 2] [--cli-runs 20] [--rounds 2]

Prints the four targets of issue 11, and writes everything to bench/results/check_overhead.json:
  CLI ratio        `lean-solve check FILE` (a new process: Python start-up, imports, Lean; checked
                   in that process, not by a check server) per small file, median / bare
                   `lean --json FILE`, median                                      target <= 1.5
  batch ratio      `lean-solve check` of all files in one call on N workers / bare Lean run
                   serially on them (a shell loop)                                 target <= 0.6
  verify ratio     verify() per file in this process, median / bare Lean, median   target <= 1.10
  parallel speedup check_many() with 1 worker / with N workers                     target >= 1.8

How the ratios are measured, so that neither side gets the machine in a better state: per-file
runs are interleaved, their order shuffled each time (a fixed order gave one side the warmer
caches or the quieter moment every time); the two batch comparisons run in alternating rounds
(A B, B A, ...: a drift in the machine's load weighs on both sides alike) and compare the sums.
CPU time is recorded beside every wall time: machine load inflates it far less.

Python's own start-up (`python -c pass`, same environment) is printed beside the CLI time: it
is a floor no code of ours can lower, and in an editable install it includes the editable
finder's imports (about 8 ms here). So is Lean's own start-up (`lean --version`): the CLI starts
its Lean right after parsing its arguments, and that Lean reads the file only once the verifier
has approved it, so our imports and checks overlap Lean's start-up; `floor_ratio` (Python
start-up plus bare Lean, over bare Lean) is what a CLI that did no work of its own would get. The CLI runs as installed (`lean-solve` beside this
Python, else `python -m solve_in_lean`), with bytecode caching on, as after `pip install`
(kept in a temporary PYTHONPYCACHEPREFIX, so the checkout stays clean even where
PYTHONDONTWRITEBYTECODE is set).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from solve_in_lean.lean import CheckRequest, get_checker
from solve_in_lean.lean.kernel import driver_command, find_library
from solve_in_lean.verify import verify

PRELUDE = (Path(__file__).resolve().parents[1] / "examples" / "prelude.lean").read_text()
TARGETS = {"cli_ratio": ("<=", 1.5), "batch_ratio": ("<=", 0.6), "verify_ratio": ("<=", 1.10),
           "parallel_speedup": (">=", 1.8)}


def unary(k: int) -> str:
    return "N.zero" if k == 0 else f"(N.succ {unary(k - 1)})"


def make_file(i: int) -> str:
    a, b = i % 7, (i * 3) % 5
    claim = a + b + (1 if i % 10 == 0 else 0)  # every tenth file is wrong
    return PRELUDE + f"theorem t{i} : Eq (N.add {unary(a)} {unary(b)}) {unary(claim)} := Eq.refl _\n"


def timed(fn: Callable[[], object], cpu: list[float] | None = None) -> float:
    """Wall seconds of `fn`; with `cpu`, also appends the CPU seconds it cost (this process and
    the children it waited for), which machine load inflates far less than wall time."""
    start, start_cpu = time.perf_counter(), cpu_seconds()
    fn()
    if cpu is not None:
        cpu.append(cpu_seconds() - start_cpu)
    return time.perf_counter() - start


def alternating(a: Callable[[], object], b: Callable[[], object], rounds: int) -> dict[str, float]:
    """Wall and CPU seconds of `a` and of `b`, summed over `rounds` runs each in alternating order
    (a b, b a, a b, ...), so that neither side always runs first or in the same stretch of load."""
    out = {"a_s": 0.0, "b_s": 0.0, "a_cpu_s": 0.0, "b_cpu_s": 0.0}
    for r in range(rounds):
        for side, fn in ((("a", a), ("b", b)) if r % 2 == 0 else (("b", b), ("a", a))):
            cpu: list[float] = []
            out[f"{side}_s"] += timed(fn, cpu)
            out[f"{side}_cpu_s"] += cpu[0]
    return out


def cpu_seconds() -> float:
    mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def import_times(cmd: list[str], env: dict[str, str], runs: int = 5) -> dict[str, float]:
    """Seconds spent importing, in total and per top-level import, as `python -X importtime` reports
    them for one `lean-solve check` (the least of a few runs, so machine noise counts least)."""
    best: dict[str, float] = {}
    for _ in range(runs):
        proc = subprocess.run(cmd, capture_output=True, env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, check=False)
        seen = {"total": 0.0}
        for line in proc.stderr.decode().splitlines():
            if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
                continue
            self_us, cumulative_us, name = line[len("import time:"):].split("|")
            seen["total"] += int(self_us) / 1e6
            if name.startswith(" ") and not name.startswith("   "):  # imported by the entry point itself
                seen[name.strip()] = int(cumulative_us) / 1e6
        best = {k: min(v, best.get(k, v)) for k, v in seen.items()}
    return best


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("lean-solve")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "solve_in_lean"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cli-runs", type=int, default=20, help="single-file CLI runs (interleaved with bare Lean)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of each batch comparison")
    args = ap.parse_args()

    lean = [*driver_command(find_library()), "--json"]
    checker = get_checker("kernel", timeout_s=60)
    files = [make_file(i) for i in range(args.files)]
    cli = [*cli_command(), "check", "--backend", "kernel"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        # in this process, never through a check server that happens to run (bench/check_server.py
        # measures that path): a server left running would otherwise answer some runs and not others
        env.update(PYTHONPYCACHEPREFIX=str(Path(tmp) / "pycache"), NO_COLOR="1", LEAN_SOLVE_CHECK_SERVER="off")
        paths = []
        for i, text in enumerate(files):
            p = Path(tmp) / f"f{i}.lean"
            p.write_text(text)
            paths.append(str(p))

        def bare(p: str) -> None:
            subprocess.run([*lean, p], capture_output=True, check=False)

        def ours(*ps: str) -> subprocess.CompletedProcess:
            return subprocess.run([*cli, *ps], capture_output=True, check=False, env=env)

        # warm every path (page cache, driver build, bytecode) before measuring
        bare(paths[0])
        verify(files[0], checker)
        warm = ours(paths[1])  # a true claim (every tenth file, from f0, is false)
        if warm.returncode != 0:
            sys.exit(f"lean-solve check failed on a good file: {warm.stdout.decode()}{warm.stderr.decode()}")

        bare_t, verify_t, cli_t, python_t, version_t = [], [], [], [], []
        bare_cpu, verify_cpu, cli_cpu = [], [], []
        order = random.Random(0)
        for i in range(max(args.cli_runs, len(files))):  # interleaved: noise hits every side alike
            p, text = paths[i % len(paths)], files[i % len(files)]
            steps = [lambda: bare_t.append(timed(lambda: bare(p), bare_cpu))]
            if i < len(files):
                steps.append(lambda: verify_t.append(timed(lambda: verify(text, checker), verify_cpu)))
            if i < args.cli_runs:
                steps.append(lambda: cli_t.append(timed(lambda: ours(p), cli_cpu)))
                steps.append(lambda: python_t.append(timed(lambda: subprocess.run([sys.executable, "-c", "pass"],
                                                                                  env=env, check=False))))
                steps.append(lambda: version_t.append(timed(lambda: subprocess.run(
                    [lean[0], "--version"], capture_output=True, check=False))))
            order.shuffle(steps)  # no side always runs right after another (warm caches, a quiet moment)
            for step in steps:
                step()
        bare_median = statistics.median(bare_t)

        batch = ours(*paths, "--workers", str(args.workers), "--json")
        outcomes = [json.loads(line)["outcome"] for line in batch.stdout.decode().splitlines()]
        serial_vs_batch = alternating(lambda: [bare(p) for p in paths],
                                      lambda: ours(*paths, "--workers", str(args.workers)), args.rounds)

        requests = [CheckRequest(t) for t in files]
        one_vs_n = alternating(lambda: checker.check_many(requests, workers=1),
                               lambda: checker.check_many(requests, workers=args.workers), args.rounds)
        imports = import_times([*cli, paths[1]], env)

    result = {
        "files": args.files,
        "workers": args.workers,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cli": " ".join(cli),
        "bare_lean_median_s": bare_median,
        "cli_median_s": statistics.median(cli_t),
        "python_startup_median_s": statistics.median(python_t),
        "lean_startup_median_s": statistics.median(version_t),
        "verify_median_s": statistics.median(verify_t),
        "rounds": args.rounds,
        "bare_serial_total_s": serial_vs_batch["a_s"] / args.rounds,
        "cli_batch_total_s": serial_vs_batch["b_s"] / args.rounds,
        "check_many_1_worker_s": one_vs_n["a_s"] / args.rounds,
        "check_many_n_workers_s": one_vs_n["b_s"] / args.rounds,
        "cli_ratio": statistics.median(cli_t) / bare_median,
        "floor_ratio": (statistics.median(python_t) + bare_median) / bare_median,
        "batch_ratio": serial_vs_batch["b_s"] / serial_vs_batch["a_s"],
        "verify_ratio": statistics.median(verify_t) / bare_median,
        "parallel_speedup": one_vs_n["a_s"] / one_vs_n["b_s"],
        "cli_cpu_ratio": statistics.median(cli_cpu) / statistics.median(bare_cpu),
        "verify_cpu_ratio": statistics.median(verify_cpu) / statistics.median(bare_cpu),
        "batch_cpu_ratio": serial_vs_batch["b_cpu_s"] / serial_vs_batch["a_cpu_s"],
        "parallel_cpu_ratio": one_vs_n["b_cpu_s"] / one_vs_n["a_cpu_s"],
        "load_average": os.getloadavg(),
        "batch_outcomes": {o: outcomes.count(o) for o in sorted(set(outcomes))},
        "cli_imports_s": imports,
    }
    python_s, cli_s = result["python_startup_median_s"], result["cli_median_s"]
    rows = [
        (f"bare Lean, one file (median of {len(bare_t)})", f"{bare_median * 1000:.1f} ms"),
        (f"lean-solve check, one file (median of {len(cli_t)})", f"{cli_s * 1000:.1f} ms"),
        ("  of which Python start-up (python -c pass)", f"{python_s * 1000:.1f} ms"),
        ("  of which the rest beyond bare Lean", f"{(cli_s - python_s - bare_median) * 1000:.1f} ms"),
        ("  Lean's own start-up (lean --version)", f"{result['lean_startup_median_s'] * 1000:.1f} ms"),
        ("  floor: (Python start-up + bare Lean) / bare", f"{result['floor_ratio']:.3f}"),
        (f"verify() in process (median of {len(verify_t)})", f"{result['verify_median_s'] * 1000:.1f} ms"),
        (f"bare Lean, {args.files} files serially (mean of {args.rounds})", f"{result['bare_serial_total_s']:.2f} s"),
        (f"lean-solve check, {args.files} files, {args.workers} workers",
         f"{result['cli_batch_total_s']:.2f} s {result['batch_outcomes']}"),
        (f"check_many, 1 / {args.workers} workers (mean of {args.rounds})",
         f"{result['check_many_1_worker_s']:.2f} s / {result['check_many_n_workers_s']:.2f} s"),
        ("CPU time over bare Lean's: check CLI / verify()",
         f"{result['cli_cpu_ratio']:.3f} / {result['verify_cpu_ratio']:.3f} (guard process not counted)"),
        (f"CPU time: batch / serial bare, {args.workers} / 1 workers",
         f"{result['batch_cpu_ratio']:.3f} / {result['parallel_cpu_ratio']:.3f}"),
        ("load average (1, 5, 15 min) at the end", " ".join(f"{x:.2f}" for x in result["load_average"])),
    ]
    startup = ("total", "site", "encodings", "_frozen_importlib_external")  # Python's own, as in `python -c pass`
    ours_s = imports["total"] - sum(imports.get(k, 0.0) for k in startup[1:])
    top = sorted(((k, v) for k, v in imports.items() if k not in startup), key=lambda kv: -kv[1])[:5]
    rows.insert(4, ("  imports beyond Python's own (-X importtime)", f"{ours_s * 1000:.1f} ms: "
                 + ", ".join(f"{k} {v * 1000:.1f}" for k, v in top)))
    for label, value in rows:
        print(f"{label:48s} {value}")
    failed = []
    for key, (op, bound) in TARGETS.items():
        ok = result[key] <= bound if op == "<=" else result[key] >= bound
        failed += [] if ok else [key]
        print(f"{key:48s} {result[key]:.3f}  (target {op} {bound}: {'ok' if ok else 'MISSED'})")
    result["missed"] = failed
    out = Path(__file__).parent / "results" / "check_overhead.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
