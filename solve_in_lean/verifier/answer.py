"""Check an informal answer with Lean: confirmed, refuted or unknown, with the evidence.

For a compute statement P (answer abstracted) and a claimed value v:
  confirmed  the kernel accepted a proof of `P v` (sampled, DTV-style from the informal solution
             when one is given), or a verified program computed a value equal to v;
  refuted    the kernel accepted a proof of `P v → False`, or a verified program computed a
             value w ≠ v under a *determinate* statement (uniqueness proved and P w proved:
             then P v is false). Stricter than "a statement judged faithful": a judge's opinion
             never refutes;
  unknown    anything else, including the impossible case where both a proof and a disproof
             verify (reported, never resolved either way).
Never "refuted" on a model's say-so: every route is a kernel-checked proof.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from autoformalize.problem import FormalProblem
from solve_in_lean.lean.base import LeanChecker
from solve_in_lean.models.base import Generator, SamplingParams
from solve_in_lean.options import SolveOptions
from solve_in_lean.solve import SolveResult, solve_formal
from solve_in_lean.verifier.determinacy import Determinacy, certify
from solve_in_lean.verifier.goals import first_proof, prove_goals
from solve_in_lean.verifier.statements import confirm_goal, refute_goal
from solve_in_lean.errors import InputError
from solve_in_lean.verifier.values import lean_term, number_of, same_number
from solve_in_lean.verify import Policy

@dataclass
class AnswerCheck:
    id: str
    answer: str
    lean_value: str
    """The answer as the Lean term that was checked."""
    verdict: str
    how: str
    """Which route decided: proof, disproof, computation, determinate-computation, or none."""
    evidence: str | None = None
    """The Lean code the kernel accepted for the verdict (None for unknown)."""
    reasons: list[str] = field(default_factory=list)
    computed: str | None = None
    """The value a verified program computed, when the solver ran and one verified."""
    determinacy: dict[str, Any] | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_answer(problem: FormalProblem, answer: str, generator: Generator, checker: LeanChecker, *,
                 params: SamplingParams, options: SolveOptions | None = None, policy: Policy | None = None,
                 solution: str | None = None, compute: bool = True, solved: SolveResult | None = None,
                 determinacy: Determinacy | None = None) -> AnswerCheck:
    """Lean's verdict on `answer` for `problem` (a compute statement). InputError when the
    answer is not one Lean term of the answer type; never raises for bad model output.

    `compute` runs the solver for the computation route; `solved` (a solver result already at
    hand) and `determinacy` (a certificate already made) are used instead of new runs."""
    options, policy = options or SolveOptions(), policy or Policy()
    term = lean_term(answer, problem.answer_type)
    goals = [(confirm_goal(problem, term), f"the answer is {answer}"),
             (refute_goal(problem, term), f"the answer is not {answer}")]
    confirm_attempts, refute_attempts = prove_goals(problem, goals, generator, checker, params=params,
                                                    options=options, policy=policy, solution=solution)
    attempts = [a.to_dict() for a in confirm_attempts + refute_attempts]
    out = AnswerCheck(problem.id, answer, term, "unknown", "none", attempts=attempts)
    proof, disproof = first_proof(confirm_attempts), first_proof(refute_attempts)
    if proof and disproof:
        out.reasons.append("Lean accepted both a proof and a disproof: the header or the allowed axioms are "
                           "inconsistent, so nothing is decided")
        return out
    if proof or disproof:
        out.verdict, out.how = ("confirmed", "proof") if proof else ("refuted", "disproof")
        out.evidence = (proof or disproof).code
        return out
    out.reasons.append(_first_reason(confirm_attempts + refute_attempts))
    if solved is None and compute:
        solved = solve_formal(problem, generator, checker, params=params, options=options, policy=policy)
    if solved is not None:
        _by_computation(out, problem, solved, determinacy, generator, checker, params, options, policy)
    return out


def _by_computation(out: AnswerCheck, problem: FormalProblem, solved: SolveResult, det: Determinacy | None,
                    generator: Generator, checker: LeanChecker, params: SamplingParams, options: SolveOptions,
                    policy: Policy) -> None:
    """A verified value decides when it reads as a number: equal confirms; different refutes
    only under a determinate statement (certified here unless `det` is given)."""
    if not solved.verified or not solved.proof:
        out.reasons.append("no Lean program computing the answer verified")
        return
    out.computed = solved.answer
    same = same_number(solved.answer, out.answer)
    if same is None:
        out.reasons.append(f"Lean computed {solved.answer}, which cannot be compared with {out.answer} as numbers")
    elif same:
        out.verdict, out.how, out.evidence = "confirmed", "computation", solved.proof
    else:
        if det is None:
            det = certify(problem, generator, checker, params=params, options=options, policy=policy,
                          witness=solved.answer, witness_proof=solved.proof)
        out.determinacy = det.to_dict()
        if det.determinate:
            out.verdict, out.how = "refuted", "determinate-computation"
            out.evidence = f"{solved.proof.rstrip()}\n\n{det.uniqueness_proof}"
        else:
            out.reasons.append(f"Lean computed {solved.answer}, a different value, but the statement has no "
                               "uniqueness certificate, so another answer may satisfy it too")


def _first_reason(attempts: list) -> str:
    for a in attempts:
        if a.reasons:
            return f"no proof or disproof verified (first reason: {a.reasons[0]})"
    return "no proof or disproof verified"


def check_model_answer(problem: FormalProblem, answer: str, generator: Generator, checker: LeanChecker, *,
                       params: SamplingParams, options: SolveOptions, policy: Policy,
                       solved: SolveResult | None = None, determinacy: Determinacy | None = None) -> dict[str, Any]:
    """Lean's verdict on an answer a model wrote (a chain of thought's), as a record. Model output is
    hostile: only a number is turned into Lean; anything else is `unknown`, with the reason."""
    if number_of(answer) is None:
        return {"verdict": "unknown", "how": "none", "evidence": None,
                "reasons": [f"{answer!r} is not a number, so it is not turned into Lean"]}
    try:
        return check_answer(problem, answer, generator, checker, params=params, options=options, policy=policy,
                            compute=False, solved=solved, determinacy=determinacy).to_dict()
    except InputError as e:  # e.g. 3.5 for a natural-number answer: no Lean term of the type
        return {"verdict": "unknown", "how": "none", "evidence": None, "reasons": [str(e)]}
