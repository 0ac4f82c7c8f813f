"""Lean as one solver for computations and proofs: sample Lean, check it, repair it, vote.

* compute: the model fills the answer hole with a computation and proves the statement for
  it; the value counts as verified only when Lean evaluated it and the kernel accepted the
  theorem under the verification rules (verify.py).
* prove: whole proofs, sampled and repaired from Lean's errors (step-wise search: search.py).
* aggregate: majority vote over verified answers; when nothing verifies, the model's
  chain-of-thought answer is returned, marked unverified. Both are reported.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from autoformalize.extract import extract_lean
from autoformalize.problem import FormalProblem
from solve_in_lean.answers import extract_answer, normalize, parse_lean_value, to_text
from solve_in_lean.lean.base import LeanChecker
from solve_in_lean.models.base import Generator, SamplingParams
from solve_in_lean.options import SolveOptions
from solve_in_lean.prompts import get_prompt
from solve_in_lean.timing import BusyTimer, TimedChecker, TimedGenerator
from solve_in_lean.verify import Policy, Target, VerifyRequest, verify_many


MAX_ERRORS_IN_PROMPT = 5
"""Lean errors a repair prompt quotes: the first ones matter, the rest are usually consequences."""


@dataclass
class Attempt:
    round: int
    sample: int
    completion: str
    code: str | None
    verified: bool
    reasons: list[str]
    answer_raw: str | None = None
    answer: str | None = None
    """Normalized value Lean computed (compute problems), when verified."""
    lean: dict[str, Any] = field(default_factory=dict)
    parent: int | None = None
    """Index of the attempt this one repairs."""


@dataclass
class SolveResult:
    id: str
    kind: str
    attempts: list[Attempt] = field(default_factory=list)
    votes: dict[str, int] = field(default_factory=dict)
    """Verified answers and how many verified programs computed each."""
    answer: str | None = None
    verified: bool = False
    proof: str | None = None
    """Lean code of a verified attempt (the one that computed the winning answer)."""
    cot_answer: str | None = None
    cot_votes: dict[str, int] = field(default_factory=dict)
    cot_samples: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.verified:
            return "verified"
        return "unverified" if self.answer is not None else "no answer"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status
        return d


def target_of(problem: FormalProblem) -> Target:
    params, args = problem.answer_params()
    return Target(problem.theorem_name, problem.proposition(), params=params, args=args)


def _generate(generator: Generator, task: str, prompts: list, params: SamplingParams, n: int) -> list[list[str]]:
    """`n` completions per prompt, ended by the task's stop strings as well as the caller's."""
    stop = tuple(dict.fromkeys((*params.stop, *get_prompt(task).stop)))
    return [[c.text for c in row] for row in generator.generate(prompts, replace(params, n=n, stop=stop))]


def _check(problem: FormalProblem, codes: list[str | None], checker: LeanChecker, options: SolveOptions,
           policy: Policy) -> list[Any]:
    """Verify every extracted program in parallel; None for completions with no Lean in them."""
    target = target_of(problem)
    answer_name = problem.answer_name if problem.kind == "compute" else None
    todo = [i for i, c in enumerate(codes) if c]
    verdicts = verify_many([VerifyRequest(codes[i], problem.header or None, target, answer_name) for i in todo],
                           checker, policy=policy, timeout_s=options.timeout_s)
    result: list[Any] = [None] * len(codes)
    for i, v in zip(todo, verdicts):
        result[i] = v
    return result


def _attempts(problem: FormalProblem, texts: list[str], codes: list[str | None], verdicts: list[Any],
              round_: int, parents: list[int | None]) -> list[Attempt]:
    attempts = []
    for i, (text, code, verdict) in enumerate(zip(texts, codes, verdicts)):
        if verdict is None:
            attempts.append(Attempt(round_, i, text, None, False, ["no Lean code in the completion"],
                                    parent=parents[i]))
            continue
        raw = verdict.answer
        value = None
        if verdict.verified and problem.kind == "compute":
            value = parse_lean_value(raw) if raw else None
            if value is None and raw:
                value = " ".join(raw.split())  # a value Lean printed but we cannot read as a number
        attempts.append(Attempt(round_, i, text, code, verdict.verified, verdict.reasons, raw, value,
                                lean=verdict.check.to_dict(), parent=parents[i]))
    return attempts


def _repair_prompt(problem: FormalProblem, attempt: Attempt) -> Any:
    errors = "\n".join(attempt.reasons[:MAX_ERRORS_IN_PROMPT])
    return get_prompt("lean_repair").render(problem=problem.source, statement=problem.statement.strip(),
                                            code=attempt.code or "", errors=errors)


def solve_formal(problem: FormalProblem, generator: Generator, checker: LeanChecker, *,
                 params: SamplingParams, options: SolveOptions | None = None,
                 policy: Policy | None = None) -> SolveResult:
    """Sample Lean solutions (compute) or proofs (prove), verify, repair, and vote."""
    options, policy = options or SolveOptions(), policy or Policy()
    start = time.perf_counter()
    model_t, lean_t = BusyTimer(), BusyTimer()
    generator, checker = TimedGenerator(generator, model_t), TimedChecker(checker, lean_t)
    result = SolveResult(id=problem.id, kind=problem.kind)
    task = "lean_solve" if problem.kind == "compute" else "prove"
    prompt = get_prompt(task).render(problem=problem.source, statement=problem.statement.strip(),
                                     header=problem.header)
    texts = _generate(generator, task, [prompt], params, options.samples)[0]
    codes = [extract_lean(t) for t in texts]
    result.attempts = _attempts(problem, texts, codes, _check(problem, codes, checker, options, policy), 0,
                                [None] * len(texts))
    for round_ in range(1, options.rounds + 1):
        if problem.kind == "prove" and any(a.verified for a in result.attempts):
            break
        failed = [i for i, a in enumerate(result.attempts)
                  if a.round == round_ - 1 and not a.verified and a.code]
        if not failed:
            break
        prompts = [_repair_prompt(problem, result.attempts[i]) for i in failed]
        texts = [row[0] for row in _generate(generator, "lean_repair", prompts, params, 1)]
        codes = [extract_lean(t) for t in texts]
        result.attempts += _attempts(problem, texts, codes, _check(problem, codes, checker, options, policy),
                                     round_, list(failed))
    _aggregate(result)
    result.timings = {"model_s": model_t.seconds, "lean_s": lean_t.seconds,
                      "total_s": time.perf_counter() - start}
    return result


def _aggregate(result: SolveResult) -> None:
    verified = [a for a in result.attempts if a.verified]
    if result.kind == "prove":
        result.verified = bool(verified)
        result.proof = verified[0].code if verified else None
        return
    votes = Counter(a.answer for a in verified if a.answer is not None)
    result.votes = dict(votes.most_common())
    if votes:
        result.answer, _ = votes.most_common(1)[0]
        result.verified = True
        result.proof = next(a.code for a in verified if a.answer == result.answer)


def chain_of_thought(problem_text: str, generator: Generator, *, params: SamplingParams,
                     k: int, template: Any = None) -> tuple[str | None, dict[str, int], list[str]]:
    """Informal answers by chain of thought, majority-voted: (answer, votes, samples). `template`:
    a model preset's CoT query (presets/), else the project's."""
    prompt = (template or get_prompt("cot")).render(problem=problem_text)
    texts = _generate(generator, "cot", [prompt], params, k)[0]
    votes: Counter[str] = Counter()
    for text in texts:
        raw = extract_answer(text)
        value = normalize(raw) if raw else None
        if value is not None:
            votes[to_text(value)] += 1
    answer = votes.most_common(1)[0][0] if votes else None
    return answer, dict(votes.most_common()), texts


def solve(problem: FormalProblem, generator: Generator, checker: LeanChecker, *, params: SamplingParams,
          options: SolveOptions | None = None, policy: Policy | None = None) -> SolveResult:
    """Lean first; chain of thought always too, so both the verified and informal figures exist."""
    options = options or SolveOptions()
    start = time.perf_counter()
    result = solve_formal(problem, generator, checker, params=params, options=options, policy=policy)
    if problem.kind == "compute" and options.cot_samples > 0 and problem.source:
        cot_t = BusyTimer()
        result.cot_answer, result.cot_votes, result.cot_samples = chain_of_thought(
            problem.source, TimedGenerator(generator, cot_t), params=params, k=options.cot_samples)
        result.timings["model_s"] += cot_t.seconds
        result.timings["total_s"] = time.perf_counter() - start
        if not result.verified:
            result.answer = result.cot_answer  # returned, but marked unverified
    return result
