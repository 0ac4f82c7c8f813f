"""Overhead of the pipeline itself: per problem, the time that is neither model nor Lean,
as a fraction of the total (target < 5%). Two scenarios, measured in one run:

  tiny-model   GSM8K questions through formalize -> solve -> explain with the real tiny
               transformers model (its Lean never elaborates, so this path ends in CoT)
  verified     prelude-dialect problems whose Lean verifies (completions given by a script,
               so model time is ~0 and the fraction is our code against Lean alone)

    python bench/pipeline_overhead.py [--problems 5]
Writes bench/results/pipeline_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from solve_in_lean.lean import get_checker  # noqa: E402
from solve_in_lean.models import load_generator  # noqa: E402
from solve_in_lean.models.base import SamplingParams  # noqa: E402
from solve_in_lean.models.scripted import ScriptedGenerator  # noqa: E402
from solve_in_lean.models.tiny import build_tiny_model  # noqa: E402
from solve_in_lean.pipeline import PipelineConfig, run_problem  # noqa: E402
from solve_in_lean.options import SolveOptions  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GSM8K = ROOT.parent / "shared" / "data" / "gsm8k" / "train_sample.jsonl"
HEADER = (Path(__file__).resolve().parents[1] / "examples" / "prelude.lean").read_text()


def overhead(rec: dict) -> float:
    t = rec["timings"]
    return max(0.0, t["total_s"] - t["model_s"] - t["lean_s"]) / t["total_s"]


def summarize(name: str, records: list[dict]) -> dict:
    fractions = [overhead(r) for r in records]
    totals = [r["timings"]["total_s"] for r in records]
    out = {"problems": len(records), "median_fraction": statistics.median(fractions),
           "max_fraction": max(fractions), "mean_total_s": statistics.mean(totals),
           "mean_model_s": statistics.mean(r["timings"]["model_s"] for r in records),
           "mean_lean_s": statistics.mean(r["timings"]["lean_s"] for r in records),
           "statuses": sorted({r["status"] for r in records})}
    print(f"{name:12s} problems {out['problems']:3d}  total {out['mean_total_s']:6.2f} s  "
          f"model {out['mean_model_s']:6.2f} s  Lean {out['mean_lean_s']:5.2f} s  "
          f"overhead median {out['median_fraction']:.2%} max {out['max_fraction']:.2%}  {out['statuses']}")
    return out


def verified_script(prompt, index):  # the completions a good model would give
    content = prompt[-1]["content"]
    if "```lean" in content:
        stmt = content.split("```lean\n")[1].split("```")[0]
        name = stmt.split("abbrev ")[1].split(" ")[0]
        return ("```lean\n" + stmt.replace(f"abbrev {name} : N := sorry",
                                           f"noncomputable abbrev {name} : N := N.zero.succ.succ.succ.succ")
                .replace(":= by sorry", ":= h") + "```")
    return "2 + 2 = 4. The answer is 4."


def main() -> None:
    ap = argparse.ArgumentParser(description="pipeline overhead as a fraction of total time")
    ap.add_argument("--problems", type=int, default=5)
    args = ap.parse_args()
    checker = get_checker("kernel", timeout_s=60)
    params = SamplingParams(temperature=0.7, max_new_tokens=24, seed=0)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        gen = load_generator("transformers", str(build_tiny_model(Path(tmp) / "tiny")))
        rows = [json.loads(line) for line in GSM8K.read_text().splitlines()[: args.problems]]
        cfg = PipelineConfig(options=SolveOptions(samples=2, rounds=1, formalize_samples=2, cot_samples=2),
                             header=HEADER)
        run_problem(rows[0], gen, checker, params=params, cfg=cfg)  # warm-up: model load, sympy imports
        results["tiny_model"] = summarize("tiny-model", [run_problem(r, gen, checker, params=params, cfg=cfg)
                                                        for r in rows])
    statement = ("abbrev q_answer : N := sorry\n"
                 "theorem q (x : N) (h : Eq x (N.add (N.succ (N.succ N.zero)) (N.succ (N.succ N.zero)))) :"
                 " Eq x q_answer := by sorry\n")
    items = [{"id": f"v{i}", "question": "Two plus two?", "formal": {
        "id": f"v{i}", "source": "Two plus two?", "kind": "compute", "header": HEADER,
        "statement": statement.replace("q_answer", f"q{i}_answer").replace("theorem q ", f"theorem q{i} ")}}
        for i in range(args.problems)]
    vcfg = PipelineConfig(explain_with_model=False, options=SolveOptions(samples=4, rounds=0, cot_samples=2))
    script = ScriptedGenerator(verified_script)
    run_problem(items[0], script, checker, params=params, cfg=vcfg)
    records = [run_problem(it, script, checker, params=params, cfg=vcfg) for it in items]
    assert all(r["verified"] for r in records), "the verified scenario must verify"
    results["verified"] = summarize("verified", records)
    out = ROOT / "bench" / "results" / "pipeline_overhead.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
