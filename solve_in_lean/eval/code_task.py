"""The `code` evaluation task: Python-assisted solving, scored like `cot` (accuracy of the voted
answer against the reference), plus how often the answer was computed by Python at all."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from solve_in_lean.answers import equivalent
from solve_in_lean.code.sandbox import SandboxLimits
from solve_in_lean.code.solver import solve_with_code

if TYPE_CHECKING:
    from solve_in_lean.eval.tasks import TaskContext

METRICS = ["accuracy", "python_rate"]


def run_code(item: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """`samples` conversations of 1 + `rounds` model turns each (extra turns see the interpreter's
    output); the majority answer against the reference. `timeout_s` is each run's wall clock."""
    o = ctx.options
    limits = SandboxLimits(wall_s=o.timeout_s) if o.timeout_s else SandboxLimits()
    result = solve_with_code(item["question"], ctx.generator, params=ctx.params, samples=o.samples,
                             turns=1 + o.rounds, limits=limits)
    return {"prediction": result.answer, "reference": item["answer"], "label": result.label,
            "votes": result.votes, "samples": [s.to_dict() for s in result.samples],
            "sample_answers": [s.answer for s in result.samples],
            "scores": {"accuracy": equivalent(result.answer, item["answer"]),
                       "python_rate": result.computed_by_python}}
