"""Whole-proof proving under a preset's protocol, with self-correction rounds.

`samples` independent proofs are sampled with the preset's prompt and extraction rule and checked
by Lean under the verification rules. Each round, every chain whose latest proof failed is sent back
with Lean's errors marked in the code and the goal at each (feedback.py), as Goedel-Prover-V2 and
Kimina do; a chain stops at its first verified proof. pass@k is reported after every round, so the
round-0 figure (independent samples) and the self-corrected one stand side by side.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from autoformalize.problem import FormalProblem
from solve_in_lean.lean.base import LeanChecker
from solve_in_lean.models.base import Generator, Prompt, SamplingParams
from solve_in_lean.options import SolveOptions
from solve_in_lean.presets import Preset, get_preset
from solve_in_lean.presets.feedback import lean_feedback
from solve_in_lean.solve import Attempt, target_of
from solve_in_lean.timing import BusyTimer, TimedChecker, TimedGenerator
from solve_in_lean.verify import Policy, VerifyRequest, verify_many

_PROOF_HOLE = re.compile(r"\s*:=\s*(?:by\s*)?(?:sorry\s*)?$")


@dataclass
class ProveResult:
    id: str
    preset: str
    attempts: list[Attempt] = field(default_factory=list)
    correct_by_round: list[int] = field(default_factory=list)
    """Chains with a verified proof after round 0, 1, ... (a chain is one sample and its repairs)."""
    verified: bool = False
    proof: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def statement_head(statement: str) -> str:
    """The theorem up to (without) its `:= by sorry`: what a REPL tactic session starts from."""
    return _PROOF_HOLE.sub("", statement.strip())


def open_statement(statement: str) -> str:
    """The statement ending in `:= by` and a newline, for a model that continues the code."""
    return statement_head(statement) + " := by\n"


def prompt_fields(problem: FormalProblem) -> dict[str, str]:
    """Every field a preset's prove or repair prompt may use."""
    header = problem.header or ""
    if header and not header.endswith("\n"):
        header += "\n"
    source = (problem.source or "").strip()
    return {"header": header + ("\n" if header else ""), "statement": problem.statement.strip(),
            "problem": source, "informal_prefix": f"/-- {source} -/\n" if source else ""}


def _fields_for(preset: Preset, problem: FormalProblem) -> dict[str, str]:
    fields = prompt_fields(problem)
    if preset.extract == "continue":
        fields["statement"] = open_statement(problem.statement)
    return fields


def _generate(generator: Generator, preset: Preset, task: str, prompts: list[Prompt], params: SamplingParams,
              n: int) -> list[list[str]]:
    stop = tuple(dict.fromkeys((*preset.sampling(params).stop, *preset.template(task).stop)))
    rows = generator.generate(prompts, replace(params, n=n, stop=stop))
    return [[c.text for c in row] for row in rows]  # a text cut by the budget may still hold a closed block


def prove(problem: FormalProblem, generator: Generator, checker: LeanChecker, *, params: SamplingParams,
          options: SolveOptions, policy: Policy | None = None, preset: Preset | None = None) -> ProveResult:
    """Sample `options.samples` proofs, then up to `options.rounds` repair rounds (see module doc)."""
    preset = preset or get_preset("generic-instruct")
    policy = policy or Policy()
    start = time.perf_counter()
    model_t, lean_t = BusyTimer(), BusyTimer()
    generator, checker = TimedGenerator(generator, model_t), TimedChecker(checker, lean_t)
    result = ProveResult(id=problem.id, preset=preset.name)
    fields = _fields_for(preset, problem)
    prefix = open_statement(problem.statement) if preset.extract == "continue" else ""
    target = target_of(problem)

    def check(texts: list[str], round_: int, parents: list[int | None], chains: list[int]) -> None:
        codes = [preset.extract_lean(t, prefix=prefix) for t in texts]
        todo = [i for i, c in enumerate(codes) if c]
        verdicts = dict(zip(todo, verify_many([VerifyRequest(codes[i], problem.header or None, target)
                                               for i in todo], checker, policy=policy,
                                              timeout_s=options.timeout_s)))
        for i, text in enumerate(texts):
            v = verdicts.get(i)
            lean = v.check.to_dict() if v else {}
            if v and not v.verified:
                lean["feedback"] = lean_feedback(codes[i], v)  # what a repair round sends back
            result.attempts.append(Attempt(round_, chains[i], text, codes[i], bool(v and v.verified),
                                           v.reasons if v else ["no Lean code in the completion"], lean=lean,
                                           parent=parents[i]))

    prompt = preset.render("prove", **fields)
    check(_generate(generator, preset, "prove", [prompt], params, options.samples)[0], 0,
          [None] * options.samples, list(range(options.samples)))
    result.correct_by_round.append(_solved(result))
    for round_ in range(1, options.rounds + 1):
        latest = _latest(result)
        failed = [i for i, a in latest.items() if not a.verified and a.code and not _chain_solved(result, a.sample)]
        if failed:
            prompts = [preset.render("lean_repair", **fields, code=latest[i].code, round=round_ - 1,
                                     errors=latest[i].lean.get("feedback", "")) for i in failed]
            texts = [row[0] for row in _generate(generator, preset, "lean_repair", prompts, params, 1)]
            where = {id(a): j for j, a in enumerate(result.attempts)}
            check(texts, round_, [where[id(latest[i])] for i in failed], failed)
        result.correct_by_round.append(_solved(result))
    verified = [a for a in result.attempts if a.verified]
    result.verified, result.proof = bool(verified), verified[0].code if verified else None
    result.timings = {"model_s": model_t.seconds, "lean_s": lean_t.seconds, "total_s": time.perf_counter() - start}
    return result


def _latest(result: ProveResult) -> dict[int, Attempt]:
    """The last attempt of each chain."""
    out: dict[int, Attempt] = {}
    for a in result.attempts:
        out[a.sample] = a
    return out


def _chain_solved(result: ProveResult, chain: int) -> bool:
    return any(a.verified for a in result.attempts if a.sample == chain)


def _solved(result: ProveResult) -> int:
    return len({a.sample for a in result.attempts if a.verified})
