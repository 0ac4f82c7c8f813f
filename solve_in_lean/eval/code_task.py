"""The `code` evaluation task: Python-assisted solving, scored like `cot` (accuracy of the voted
answer against the reference), plus how often that answer was computed by Python at all."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from solve_in_lean.answers import equivalent
from solve_in_lean.code.solver import solve_with_code

if TYPE_CHECKING:
    from solve_in_lean.eval.tasks import TaskContext

METRICS = ["accuracy", "python_rate"]


def run_code(item: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """`samples` programs per problem, each with `rounds` more turns that show the model the
    interpreter's output (the analogue of repair rounds with Lean's errors); the majority answer
    against the reference. Each run has the sandbox's default limits."""
    o = ctx.options.solve
    result = solve_with_code(o.check_problem(item["question"]), ctx.generator, params=ctx.params,
                             samples=o.samples, turns=1 + o.rounds)
    return {"prediction": result.answer, "reference": item["answer"], "label": result.label,
            "votes": result.votes, "samples": [s.to_dict() for s in result.samples],
            "sample_answers": [s.answer for s in result.samples],
            "scores": {"accuracy": equivalent(result.answer, item["answer"]),
                       "python_rate": result.computed_by_python}}
