"""N concurrent `lean-solve solve -i` runs against one run, on the same machine: CPU seconds and
wall seconds per problem, as ratios (1.0 = no cost from sharing the machine). The runs use the
tiny transformers model and the kernel backend; each gets its own problems and output, no cache.

    python bench/concurrency.py [--runs 4] [--problems 2] [--max-new-tokens 384]
Writes bench/results/concurrency.json. Set OMP_NUM_THREADS to compare a fixed thread count with
the default (cores / concurrent runs, solve_in_lean/threads.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GSM8K = ROOT.parent / "shared" / "data" / "gsm8k" / "train_sample.jsonl"


def start(run: int, work: Path, model: Path, problems: int, tokens: int) -> subprocess.Popen:
    rows = GSM8K.read_text(encoding="utf-8").splitlines()[run * problems:(run + 1) * problems]
    (work / f"p{run}.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "solve_in_lean", "solve", "-i", str(work / f"p{run}.jsonl"),
           "-o", str(work / f"out{run}.jsonl"), "--model", str(model), "-b", "kernel",
           "--header", str(ROOT / "examples" / "prelude.lean"), "--samples", "2", "--formalize-samples", "2",
           "--cot-samples", "1", "--max-new-tokens", str(tokens), "--no-judge", "--cache", "off"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEAN_SOLVE_PROGRESS": "0"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(n: int, model: Path, problems: int, tokens: int) -> dict:
    """Wall and CPU seconds per problem with `n` runs side by side (children's CPU, all processes)."""
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        procs = [start(i, Path(tmp), model, problems, tokens) for i in range(n)]
        codes = [p.wait() for p in procs]
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if any(c not in (0, 1) for c in codes):
        raise SystemExit(f"a run failed: exit codes {codes}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    items = n * problems
    return {"runs": n, "problems": items, "wall_s": wall, "cpu_s": cpu,
            "wall_per_problem_s": wall / items, "cpu_per_problem_s": cpu / items}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--problems", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=384, help="per completion: enough that model time counts")
    args = ap.parse_args()
    from solve_in_lean.models.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "tiny")
        one = measure(1, model, args.problems, args.max_new_tokens)
        many = measure(args.runs, model, args.problems, args.max_new_tokens)
    out = {"omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "one": one, "many": many,
           "cpu_ratio": many["cpu_per_problem_s"] / one["cpu_per_problem_s"],
           "wall_ratio": many["wall_per_problem_s"] / one["wall_per_problem_s"]}
    for name in ("one", "many"):
        r = out[name]
        print(f"{r['runs']} run(s), {r['problems']} problems: wall {r['wall_s']:.1f} s, CPU {r['cpu_s']:.1f} s "
              f"({r['cpu_per_problem_s']:.2f} CPU s per problem)")
    print(f"CPU per problem, {args.runs} runs vs 1: {out['cpu_ratio']:.2f}x; wall per problem: {out['wall_ratio']:.2f}x")
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "concurrency.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
