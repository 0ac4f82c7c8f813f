"""English problem -> Lean statement -> Lean solution -> informal answer, one record per problem.

Every stage's inputs and outputs stay in the record (formalization candidates with Lean's
messages, every solution attempt with its verdict, the chain of thought), so a researcher
can see why an answer was reached. Timings per stage, and model and Lean time across stages.
A compute problem's answer is chosen by verified voting over verified programs and the chains of
thought Lean confirmed or refuted (verifier/voting.py; the rule is in docs/evaluation.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from autoformalize.backtranslate import backtranslate
from autoformalize.formalize import DEFAULT_HEADER, formalize
from autoformalize.problem import FormalProblem, minif2f_problem
from solve_in_lean.informal import informal_answer, template_explanation
from solve_in_lean.lean.base import LeanChecker
from solve_in_lean.models.base import Generator, SamplingParams
from solve_in_lean.options import SolveOptions
from solve_in_lean.solve import chain_of_thought, solve
from solve_in_lean.timing import BusyTimer, TimedChecker, TimedGenerator
from solve_in_lean.verifier.values import PRELUDE_NAT, prelude_numeral, prelude_value
from solve_in_lean.verifier.voting import verified_vote
from solve_in_lean.verify import Policy


@dataclass
class PipelineConfig:
    """One problem's run: the options (samples, rounds, the one Lean timeout for statements and
    solutions alike, ...), the Lean header and the verification policy."""

    options: SolveOptions = field(default_factory=SolveOptions)
    header: str = DEFAULT_HEADER
    policy: Policy = field(default_factory=Policy)
    explain_with_model: bool = True
    """Back-translate the verified Lean into an explanation; else a plain template."""
    preset: Any = None
    """The model preset (presets.Preset; presets.preset_of resolves it): its formalize, backtranslate and
    chain-of-thought queries replace the project's, and a statement to prove is proved under its protocol
    (its prove prompt and extraction, presets/proving.py). None: the project's prompts."""


def problem_text(item: dict[str, Any]) -> str:
    """The English of a problem record in any of the formats we read."""
    for key in ("question", "problem", "informal_statement", "text"):
        if isinstance(item.get(key), str) and item[key].strip():
            return item[key]
    return ""


def formal_of(item: dict[str, Any]) -> FormalProblem | None:
    """A formal statement that came with the problem (our record, or a miniF2F row)."""
    if isinstance(item.get("formal"), dict):
        return FormalProblem.from_dict(item["formal"])
    if "formal_statement" in item:
        return minif2f_problem(item)
    return None


def run_problem(item: dict[str, Any], generator: Generator, checker: LeanChecker, *, params: SamplingParams,
                cfg: PipelineConfig | None = None) -> dict[str, Any]:
    """Run every stage for one problem. Never raises for bad model output or bad Lean; raises
    InputError for a problem text longer than the options allow (a batch records it)."""
    cfg = cfg or PipelineConfig()
    o = cfg.options
    model_t, lean_t = BusyTimer(), BusyTimer()
    gen, lean = TimedGenerator(generator, model_t), TimedChecker(checker, lean_t)
    start = time.perf_counter()
    question = problem_text(item)
    if question:
        o.check_problem(question)
    record: dict[str, Any] = {"id": str(item.get("id", item.get("name", ""))), "question": question,
                              "stages": {}, "timings": {}}
    if item.get("answer") is not None:
        record["reference"] = str(item["answer"])

    formal = formal_of(item)
    t = time.perf_counter()
    if formal is None and question:
        fres = formalize(question, gen, lean, params=params, k=o.formalize_samples, rounds=o.rounds,
                         header=cfg.header, id=record["id"] or "problem", judge=o.judge, timeout_s=o.timeout_s,
                         prompts=cfg.preset.autoformalize_prompts() if cfg.preset is not None else None)
        record["stages"]["formalize"] = fres.to_dict()
        formal = fres.best.problem if fres.best else None
    record["timings"]["formalize_s"] = time.perf_counter() - t

    t = time.perf_counter()
    cot_template = cfg.preset.prompts.get("cot") if cfg.preset is not None else None
    if formal is not None and formal.kind == "prove" and cfg.preset is not None and cfg.preset.has("prove"):
        from solve_in_lean.presets.proving import prove

        pres = prove(formal, gen, lean, params=params, options=o, policy=cfg.policy, preset=cfg.preset)
        record["stages"]["solve"] = {**pres.to_dict(), "kind": "prove",
                                     "status": "verified" if pres.verified else "no answer"}
        record["formal"] = formal.to_dict()
        answer, verified, proof = None, pres.verified, pres.proof
    elif formal is not None:
        sres = solve(formal, gen, lean, params=params, options=o.replace(cot_samples=0) if cot_template else o,
                     policy=cfg.policy)
        if cot_template is not None and formal.kind == "compute" and o.cot_samples > 0 and formal.source:
            sres.cot_answer, sres.cot_votes, sres.cot_samples = chain_of_thought(
                formal.source, gen, params=params, k=o.cot_samples, template=cot_template)
        record["stages"]["solve"] = sres.to_dict()
        record["formal"] = formal.to_dict()
        answer, verified, proof = sres.answer, sres.verified, sres.proof
        if formal.kind == "compute" and sres.cot_votes:  # verified voting (verifier/voting.py)
            vote = verified_vote(formal, sres, gen, lean, params=params, options=o, policy=cfg.policy)
            record["stages"]["vote"] = vote.to_dict()
            answer, verified, proof = vote.answer, vote.verified, vote.proof
    else:
        cot = chain_of_thought(question, gen, params=params, k=o.cot_samples, template=cot_template) \
            if question and o.cot_samples else (None, {}, [])
        record["stages"]["solve"] = {"skipped": "no statement elaborated", "cot_answer": cot[0],
                                     "cot_votes": cot[1], "cot_samples": cot[2]}
        answer, verified, proof = cot[0], False, None
    record["timings"]["solve_s"] = time.perf_counter() - t

    t = time.perf_counter()
    number = lean_number(formal, answer, proof, lean, o.timeout_s) if verified else None
    explanation = _explain(formal, answer if verified else None, number, verified, gen, params, cfg)
    record["timings"]["explain_s"] = time.perf_counter() - t
    informal = informal_answer(question, number or answer, verified=verified, explanation=explanation)
    record.update(answer=answer, verified=verified, status=_status(answer, verified), lean_code=proof,
                  informal=informal.to_dict())
    if number is not None:
        record["answer_number"] = number
    record["timings"].update(model_s=model_t.seconds, lean_s=lean_t.seconds, total_s=time.perf_counter() - start)
    return record


def _status(answer: str | None, verified: bool) -> str:
    return "verified" if verified else ("unverified" if answer is not None else "no answer")


def lean_number(formal: FormalProblem | None, answer: str | None, proof: str | None, checker: LeanChecker,
                timeout_s: float | None) -> str | None:
    """A verified answer Lean printed as a term of the prelude's naturals (`N.three.add N.two`), as
    the decimal a person reads ("5"), when Lean agrees: the term is read by the prelude's rules,
    and the kernel must accept `answer = that numeral` by `Eq.refl` after the verified code, so
    the English number is Lean's too (a solution that redefined a name the term uses is caught
    there). None for other answers (a number already, or not the prelude's naturals)."""
    if formal is None or formal.answer_type != PRELUDE_NAT or not formal.answer_name or not answer or not proof:
        return None
    value = prelude_value(answer)
    if value is None or answer.strip() == str(value):
        return None
    numeral = prelude_numeral(value).replace("N.", "_root_.N.")
    check = (f"{proof.rstrip()}\n\ntheorem _root_.lean_solve_number_check : "
             f"_root_.Eq _root_.{formal.answer_name} ({numeral}) := _root_.Eq.refl _\n")
    result = checker.check(check, header=formal.header or None, timeout_s=timeout_s)
    return str(value) if result.ok and not result.errors and not result.sorry else None


def _explain(formal: FormalProblem | None, value: str | None, number: str | None, verified: bool, gen: Any,
             params: SamplingParams, cfg: PipelineConfig) -> str:
    """What Lean verified, in words: the template states Lean's value and theorem; the model reads the
    statement back into English (without the value: the value is Lean's to state, not the model's)."""
    if formal is None or not verified:
        return "Lean did not verify an answer for this problem."
    shown = f"{value} (= {number}, checked by the kernel)" if number is not None else value
    fallback = template_explanation(theorem=formal.theorem_name, statement=formal.proposition(),
                                    answer_name=formal.answer_name, value=shown, proof_checked=True)
    if not cfg.explain_with_model:
        return fallback
    prompts = cfg.preset.autoformalize_prompts() if cfg.preset is not None else None
    text = backtranslate(formal.statement, gen, params=params, prompts=prompts).strip()
    return f"{fallback}\nThe model reads the statement back as: {text}" if text else fallback
