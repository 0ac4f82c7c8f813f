"""The small world end to end: train (or reuse) the CPU model, then measure it on held-out problems.

    python bench/small_world.py [--limit 100] [--tasks lean-solve,cot,prove] [--models base,world,refined]

Prints the time of each stage of the build (from the build record, also when the model came
from the user cache): steps/s and tokens/s of the base and world training, and what the refine
stage drew, kept and trained on, with its validation numbers. Then the held-out metrics of each
stage's model on the test split, measured through `eval.run.evaluate` with the bundled Lean
kernel. Writes everything to bench/results/small_world.json; the run directories go to a
temporary folder.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from solve_in_lean.lean import get_checker
from solve_in_lean.world.curriculum import describe
from solve_in_lean.world.measure import measure
from solve_in_lean.world.model import build

ROOT = Path(__file__).resolve().parents[1]
PRELUDE = (ROOT / "examples" / "prelude.lean").read_text(encoding="utf-8")


def _line(name: str, metrics: dict) -> str:
    parts = []
    for metric, m in metrics["metrics"].items():
        if m["value"] is not None:
            low, high = m.get("low"), m.get("high")
            ci = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
            parts.append(f"{metric} {m['value']:.3f}{ci}")
    return f"  {name:<13} n={metrics['items']:<4} " + ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=100, help="test problems per task (at most 100)")
    ap.add_argument("--tasks", default="lean-solve,cot,prove")
    ap.add_argument("--models", default="base,world,refined", help="stages to measure (base: before task "
                                                                   "training; refined: the model the build makes)")
    args = ap.parse_args()
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    stages = [m.strip() for m in args.models.split(",") if m.strip()]
    if bad := sorted(set(stages) - {"base", "world", "refined"}):
        ap.error(f"--models: unknown stage(s) {bad}; choose from base, world, refined")

    start = time.perf_counter()
    wm = build(progress=None, log=print)
    built_now = time.perf_counter() - start
    t = wm.training
    print(f"model folder: {wm.root}")
    print("curriculum (frames / operand tuples per split): " + "; ".join(
        f"{name} " + ", ".join(f"{s} {d['frames']}/{d['operand_tuples']}" for s, d in splits.items())
        for name, splits in describe().items()))
    print(f"build: {t['seconds']:.0f} s on {t.get('threads', '?')} torch thread(s) "
          f"({'trained now' if built_now > 5 else 'trained earlier; reused from the cache'})")
    for stage in ("base", "world"):
        s = t[stage]
        print(f"  {stage:<7} {s['params']:,} parameters, {s['steps']} steps on {s['examples']} examples in "
              f"{s['seconds']:.0f} s: {s['steps_per_s']:.2f} steps/s, {s['tokens_per_s']:.0f} tokens/s, "
              f"loss {s['loss_first']:.2f} -> {s['loss_last']:.2f}")
    r = t["refined"]
    print(f"  refined {r['seconds']:.0f} s, lean-solve verified on {r['valid_items']} valid problems "
          f"{r['valid_world']:.2f} (world) -> {r['valid_refined']:.2f}")
    for i, rd in enumerate(r["rounds"], 1):
        print(f"    round {i}: the model solved {rd['samples']} training problems, the kernel verified "
              f"{rd['verified']} ({rd['kept']} new); {rd['steps']} steps on {rd['trained_on']} in "
              f"{rd['train_seconds']:.0f} s, loss {rd['loss_first']:.3f} -> {rd['loss_last']:.3f}; "
              f"valid {rd['valid']:.2f} (paired p = {rd['valid_p_value']:.2g})")

    import torch

    torch.set_num_threads(1)  # generation on one thread: two stall each other when other work shares the cores
    checker = get_checker("kernel", timeout_s=60)
    results: dict = {"training": t, "limit": args.limit, "models": {}}
    models = {name: {"base": wm.base, "world": wm.world, "refined": wm.refined}[name] for name in stages}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in models.items():
            t0 = time.perf_counter()
            metrics = measure(path, wm.data, checker, Path(tmp) / name, header=PRELUDE, tasks=tasks,
                              limit=args.limit)
            seconds = time.perf_counter() - t0
            results["models"][name] = {"seconds": seconds, "metrics": metrics}
            print(f"{name} model on the test split ({seconds:.0f} s):")
            for task, m in metrics.items():
                print(_line(task, m))
    out = ROOT / "bench" / "results" / "small_world.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    print(f"written: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
