"""Held-out numbers of a small-world model, measured through the ordinary eval path.

Each task runs as a normal run directory (`eval.run.evaluate`: the real generator backend,
the real Lean checker, the verification rules), so the bench, the tests and a user running
`lean-solve eval` on the exported files see the same numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from solve_in_lean.eval.run import evaluate, select_items
from solve_in_lean.eval.tasks import TaskContext, TaskOptions
from solve_in_lean.lean.base import LeanChecker
from solve_in_lean.options import SolveOptions

EVAL_FILES = {"lean-solve": "test.jsonl", "cot": "test_cot.jsonl", "prove": "test_prove.jsonl",
              "formalize": "test.jsonl", "backtranslate": "test.jsonl"}
"""Which exported file each task reads (cot compares decimal answers, lean-solve Lean numerals)."""
MAX_NEW_TOKENS = 192
"""Enough for the longest solution of the curriculum (two-step, answer 20) in the world tokenizer."""


WORKERS = 8
"""Items in flight at once: their generations go to the model as one batch."""


def model_config(model: str | Path, *, batch_size: int = WORKERS) -> dict[str, Any]:
    """ModelConfig fields that run a small-world model (greedy, transformers on the CPU)."""
    return {"backend": "transformers", "model": str(model), "max_new_tokens": MAX_NEW_TOKENS,
            "options": {"batch_size": batch_size, "device": "cpu"}}


def task_options(task: str) -> TaskOptions:
    """One greedy sample, no repair rounds; no separate CoT fallback (lean-solve) or judge
    (formalize) calls: the headline numbers are the verified ones."""
    return TaskOptions(SolveOptions(samples=1, rounds=0, formalize_samples=1, cot_samples=int(task == "cot"),
                                    judge=False))


def measure(model: str | Path, data: str | Path, checker: LeanChecker, out: str | Path, *, header: str,
            tasks: tuple[str, ...] = ("lean-solve",), limit: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Every task's metrics on the test files in `data`, each a run directory under `out`/TASK."""
    from solve_in_lean.models import ModelConfig, generator_from_config

    mcfg = ModelConfig.from_dict(model_config(model))
    results: dict[str, Any] = {}
    with generator_from_config(mcfg) as generator:
        for task in tasks:
            selection = select_items(task, Path(data) / EVAL_FILES[task], limit=limit, seed=seed)
            ctx = TaskContext(generator, checker, mcfg.sampling, task_options(task), header)
            _, _, metrics = evaluate(Path(out) / task, selection, ctx, model=mcfg.to_dict(), progress=False,
                                     workers=WORKERS)
            results[task] = metrics
    return results
