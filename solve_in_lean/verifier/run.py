"""verify-answer for one problem: get a statement (given, or formalized from the English), then
let Lean judge the answer (answer.py). One record with every stage, like the pipeline's."""

from __future__ import annotations

import time
from typing import Any

from autoformalize.formalize import formalize
from autoformalize.problem import FormalProblem
from autoformalize.statement import StatementError
from solve_in_lean.errors import InputError
from solve_in_lean.lean.base import LeanChecker
from solve_in_lean.models.base import Generator, SamplingParams
from solve_in_lean.options import SolveOptions
from solve_in_lean.verifier.answer import check_answer
from solve_in_lean.verify import Policy


def given_statement(question: str, statement: str, header: str, checker: LeanChecker,
                    timeout_s: float) -> FormalProblem:
    """A compute statement the user wrote, elaborated once before anything is asked of the model;
    InputError naming the problem when it is not one or Lean rejects it."""
    try:
        problem = FormalProblem("problem", question, "compute", statement, header=header)
    except StatementError as e:
        raise InputError(f"the statement is not a Lean theorem: {e}") from None
    if not problem.answer_name:
        raise InputError("the statement has no answer to check: write it as `abbrev NAME_answer : T := sorry` "
                         "followed by the theorem about NAME_answer")
    res = checker.check(problem.elaboration_check(), header=header, timeout_s=timeout_s)
    errors = [m.text for m in res.messages if m.severity == "error"]
    if errors or not res.ok:
        why = " ".join((errors[0] if errors else (res.detail or res.status)).split())[:300]
        raise InputError(f"the statement does not elaborate: {why}")
    return problem


def verify_answer(question: str, answer: str, generator: Generator, checker: LeanChecker, *,
                  params: SamplingParams, options: SolveOptions, header: str, policy: Policy,
                  statement: str | None = None, solution: str | None = None) -> dict[str, Any]:
    """The record of one check: statement (given or formalized under `header`), verdict, evidence, timings."""
    o = options
    start = time.perf_counter()
    record: dict[str, Any] = {"question": question, "answer": answer, "stages": {}}
    if statement is not None:
        problem: FormalProblem | None = given_statement(question, statement, header, checker, o.timeout_s)
        record["statement_from"] = "given"
    else:
        o.check_problem(question)
        fres = formalize(question, generator, checker, params=params, k=o.formalize_samples, rounds=o.rounds,
                         kind="compute", header=header, id="problem", judge=o.judge, timeout_s=o.timeout_s)
        record["stages"]["formalize"] = fres.to_dict()
        problem = fres.best.problem if fres.best else None
        record["statement_from"] = "formalized"
        if problem is not None and not problem.answer_name:
            problem = None
    if problem is None:
        record.update(verdict="unknown", how="none", evidence=None,
                      reasons=["no compute statement with an answer hole elaborated, so Lean could not check "
                               "the answer"])
    else:
        record["formal"] = problem.to_dict()
        res = check_answer(problem, answer, generator, checker, params=params, options=o, policy=policy,
                           solution=solution)
        record.update(res.to_dict())
    record["timings"] = {"total_s": time.perf_counter() - start}
    return record
