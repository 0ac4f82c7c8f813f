"""One function per evaluation task: an item, a model and Lean in; a per-item record out.

Each record keeps every intermediate artefact (samples, Lean code, Lean's messages, verdicts)
and a `scores` table: the item's outcome for each metric of its task. A run's metric is the
mean of those outcomes (a rate with a Wilson interval for yes/no outcomes); docs/evaluation.md
defines each one.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from autoformalize.backtranslate import backtranslate
from autoformalize.faithfulness import parse_verdict, quantities
from autoformalize.formalize import formalize
from autoformalize.metrics import dataset_metrics
from autoformalize.problem import FormalProblem
from solve_in_lean.answers import equivalent, extract_answer, parse_lean_value
from solve_in_lean.eval.code_task import METRICS as CODE_METRICS, run_code
from solve_in_lean.eval.metrics import auroc_estimate, estimate, pass_at_k
from solve_in_lean.lean.base import LeanChecker
from solve_in_lean.errors import InputError, UnavailableError
from solve_in_lean.models.base import Generator, SamplingParams
from solve_in_lean.options import SolveOptions
from solve_in_lean.pipeline import PipelineConfig, run_problem
from solve_in_lean.prompts import get_prompt
from solve_in_lean.solve import chain_of_thought, target_of
from solve_in_lean.verifier.values import same_number
from solve_in_lean.verify import Policy

TASKS = ("cot", "code", "lean-solve", "via-lean", "formalize", "backtranslate", "prove", "rerank")
SEARCHES = ("best-first",)
NEEDS_LEAN = frozenset({"lean-solve", "via-lean", "formalize", "prove", "rerank"})


@dataclass(frozen=True)
class TaskOptions:
    """How hard each task tries (recorded in the run's config): the solve options, unchanged,
    and the k of each pass@k the prove task reports.

    Per task: cot votes `cot_samples` chains of thought; lean-solve runs the whole pipeline with
    every option; formalize samples `formalize_samples` statements with `rounds` repairs; prove
    samples `samples` proofs and repairs each failed one for `prove_rounds` rounds (0 unless asked:
    `eval --task prove --rounds R` or the preset), reporting pass@k after each round."""

    solve: SolveOptions = field(default_factory=SolveOptions)
    ks: tuple[int, ...] = (1,)
    search: str | None = None
    """prove by "best-first" search over REPL tactic states (search.py) instead of whole proofs."""
    expansions: int = 64
    """Search budget: states expanded per problem (one model call each)."""
    tactics_per_state: int = 8
    """Tactics sampled per expanded state (each tried by Lean: one REPL call)."""
    search_seconds: float = 600.0
    prove_rounds: int = 0
    """Self-correction rounds of the prove task; 0 keeps its pass@k over independent samples."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "ks", tuple(sorted(set(self.ks))))
        if any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in self.ks):
            raise InputError(f"every k of pass@k must be a whole number of at least 1, not {list(self.ks)}")
        if isinstance(self.prove_rounds, bool) or not isinstance(self.prove_rounds, int) or self.prove_rounds < 0:
            raise InputError(f"rounds of the prove task must be a whole number of at least 0, "
                             f"not {self.prove_rounds!r}")
        if self.search is not None:
            if self.search not in SEARCHES:
                raise InputError(f"unknown search {self.search!r}; choose one of: {', '.join(SEARCHES)}")
            if self.ks != (1,):
                raise InputError("a search is one attempt per problem: it reports pass@1 only; drop -k")
            for name in ("expansions", "tactics_per_state"):
                value = getattr(self, name)
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise InputError(f"{name.replace('_', '-')} must be a whole number of at least 1, not {value!r}")
        elif self.ks and max(self.ks) > self.solve.samples:
            raise InputError(f"pass@{max(self.ks)} needs at least {max(self.ks)} samples per problem, "
                             f"got {self.solve.samples}; raise --samples")

    def to_dict(self) -> dict[str, Any]:
        search = {} if self.search is None else {"search": self.search, "expansions": self.expansions,
                                                 "tactics_per_state": self.tactics_per_state,
                                                 "search_seconds": self.search_seconds}
        rounds = {"prove_rounds": self.prove_rounds} if self.prove_rounds else {}
        return {**self.solve.to_dict(), "ks": list(self.ks), **search, **rounds}  # only what is set: old runs resume

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TaskOptions":
        d = dict(d)
        ks = tuple(d.pop("ks", (1,)))
        search = {k: d.pop(k) for k in ("search", "expansions", "tactics_per_state", "search_seconds", "prove_rounds")
                  if k in d}
        return cls(SolveOptions.from_dict(d), ks, **search)


@dataclass
class TaskContext:
    generator: Generator
    checker: LeanChecker | None
    params: SamplingParams
    options: TaskOptions = field(default_factory=TaskOptions)
    header: str = ""
    """Lean header for items that bring none (English problems, statements without a header)."""
    policy: Policy = field(default_factory=Policy)
    auto_temperature: bool = False
    """The generator applies the sampling rule (options.SamplingRule); recorded in the run's config."""
    preset: Any = None
    """The model preset (presets.Preset) whose prompts and extraction the prove task uses; None: generic."""


def formal_problem(item: dict[str, Any], header: str) -> FormalProblem:
    """The item's statement, under the run's header when it brings none of its own."""
    formal = dict(item["formal"])
    formal.setdefault("source", item.get("question") or "")
    if not formal.get("header"):
        formal["header"] = header
    return FormalProblem.from_dict(formal)


def run_cot(item: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Chain of thought in English; the majority answer of `cot_samples` samples against the reference."""
    answer, votes, samples = chain_of_thought(item["question"], ctx.generator, params=ctx.params,
                                              k=ctx.options.solve.cot_samples, template=_preset_prompt(ctx, "cot"))
    return {"prediction": answer, "reference": item["answer"], "votes": votes, "samples": samples,
            "sample_answers": [extract_answer(s) for s in samples],
            "scores": {"accuracy": equivalent(answer, item["answer"])}}


def run_lean_solve(item: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """The whole pipeline (formalize when needed, solve in Lean, explain); verified answers count."""
    cfg = PipelineConfig(options=ctx.options.solve, header=ctx.header, policy=ctx.policy, preset=ctx.preset)
    problem = {"id": item["id"], "question": item.get("question") or ""}
    if item.get("formal"):
        problem["formal"] = formal_problem(item, ctx.header).to_dict()
    if item.get("answer") is not None:
        problem["answer"] = item["answer"]
    rec = run_problem(problem, ctx.generator, _checker(ctx), params=ctx.params, cfg=cfg)
    ref = item.get("answer")
    correct = equivalent(rec["answer"], ref) if ref is not None else None
    tiers = answer_tiers(rec)

    def right(answer: str | None) -> bool | None:
        return None if ref is None else answer is not None and bool(equivalent(answer, ref))
    return {"pipeline": rec, "prediction": rec["answer"], "reference": ref, "status": rec["status"], "tiers": tiers,
            "scores": {"verified_accuracy": None if ref is None else bool(rec["verified"] and correct),
                       "computed_accuracy": right(tiers["computed"]), "informal_accuracy": right(tiers["informal"]),
                       "verified_rate": bool(rec["verified"]), "accuracy": correct, **vote_scores(rec, ref)}}


def vote_scores(pipeline_record: dict[str, Any], ref: str | None) -> dict[str, Any]:
    """Accuracy of each verified-voting rule (verifier/voting.py) and whether the statement was
    certified determinate; empty when the pipeline did not vote (no chain of thought)."""
    vote = pipeline_record.get("stages", {}).get("vote")
    if not vote:
        return {}
    scores: dict[str, Any] = {f"rule:{rule}_accuracy": None if ref is None else
                              answer is not None and bool(equivalent(answer, ref) or same_number(answer, ref))
                              for rule, answer in vote["rules"].items()}
    det = vote.get("determinacy")
    scores["determinate_rate"] = None if det is None else bool(det["determinate"])
    return scores


def answer_tiers(pipeline_record: dict[str, Any]) -> dict[str, str | None]:
    """The answer at each tier of trust: *verified* (Lean computed it and the kernel accepted the proof),
    *computed* (Lean evaluated it: InternLM-Math's "Solve this via Lean" figure) and *informal* (the
    chain-of-thought vote). A verified answer is the computed one too, whatever unverified programs
    printed (they may outnumber it, or none may have printed: a chain-of-thought answer Lean confirmed);
    only without one does the computed tier take the majority of the values Lean printed."""
    stage = pipeline_record.get("stages", {}).get("solve", {})
    verified = pipeline_record.get("answer") if pipeline_record.get("verified") else None
    votes: Counter[str] = Counter()
    for attempt in stage.get("attempts", []):
        raw = attempt.get("answer_raw")
        if raw:  # Lean printed the answer: `#eval`, or its body (`#print`) where Lean cannot evaluate
            votes[attempt.get("answer") or parse_lean_value(raw) or " ".join(raw.split())] += 1
    computed = verified if verified is not None else (votes.most_common(1)[0][0] if votes else None)
    return {"verified": verified, "computed": computed, "informal": stage.get("cot_answer")}


def run_via_lean(item: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """InternLM-Math's "Solve this via Lean" (presets/via_lean.py): `samples` completions of the preset's
    query, each one's `#eval` expression evaluated by Lean under an allow-listed type ascription; the
    majority of the values Lean computed against the reference is the computed tier, no proof asked."""
    from solve_in_lean.presets import get_preset
    from solve_in_lean.presets.via_lean import ViaLeanAttempt, evaluate, vote

    preset = ctx.preset if ctx.preset is not None and ctx.preset.has("via_lean") else get_preset("generic-instruct")
    n, checker = ctx.options.solve.samples, _checker(ctx)
    prompt = preset.render("via_lean", problem=item["question"])
    stop = tuple(dict.fromkeys((*preset.sampling(ctx.params).stop, *preset.template("via_lean").stop)))
    texts = [c.text for c in ctx.generator.generate([prompt], dataclasses.replace(ctx.params, n=n, stop=stop))[0]]
    attempts = []
    for text in texts:
        code = preset.extract_lean(text)
        attempt = ViaLeanAttempt(text, code)
        if code is None:
            attempt.reasons = ["no Lean code in the completion"]
        else:
            attempt.value, attempt.printed, attempt.reasons = evaluate(
                code, checker, header=ctx.header or None, policy=ctx.policy, timeout_s=ctx.options.solve.timeout_s)
        attempts.append(attempt)
    result = vote(attempts)
    ref = item["answer"]
    return {"via_lean": {**result.to_dict(), "preset": preset.name}, "prediction": result.answer, "reference": ref,
            "scores": {"computed_accuracy": result.answer is not None and bool(equivalent(result.answer, ref)),
                       "computed_rate": result.answer is not None}}


def run_formalize(item: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Autoformalize the English; score the best statement (elaborates, judged faithful, cheap checks,
    and whether it equals a reference statement when the item has one)."""
    o = ctx.options.solve
    reference = formal_problem(item, ctx.header) if item.get("formal") else None
    result = formalize(item["question"], ctx.generator, _checker(ctx), params=ctx.params, k=o.formalize_samples,
                       rounds=o.rounds, kind=reference.kind if reference else None, header=ctx.header,
                       id=item["id"], judge=o.judge, timeout_s=o.timeout_s, prompts=_formalize_prompts(ctx))
    best = result.best
    match = None
    if reference is not None:
        match = best is not None and best.problem.key() == reference.key()
    return {"formalization": {**result.to_dict(), "dataset": item["dataset"]},
            "scores": {"elaboration_rate": best is not None,
                       "faithful_rate": best is not None and best.verdict is True,
                       "cheap_pass_rate": best is not None and bool(best.checks and best.checks.get("passed")),
                       "reference_match": match}}


def quantity_recall(original: str, backtranslation: str) -> float | None:
    """Fraction of the original problem's quantities that the back-translation mentions (a quantity
    counts when any of its readings, e.g. 25% as 25 or 1/4, appears); None when it has none."""
    wanted = quantities(original)
    if not wanted:
        return None
    present = {v for q in quantities(backtranslation) for alt in q.alternatives for v in alt}
    found = sum(any(all(v in present for v in alt) for alt in q.alternatives) for q in wanted)
    return found / len(wanted)


def run_backtranslate(item: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Lean statement -> English; the model then judges it against the original English (the
    judge prompt of autoformalize), and the original's quantities are looked for in it."""
    problem = formal_problem(item, ctx.header)
    text = backtranslate(problem.statement, ctx.generator, params=ctx.params, prompts=_formalize_prompts(ctx))
    prompt = get_prompt("judge").render(problem=item["question"], lean=problem.statement.strip(),
                                        backtranslation=text or "(no back-translation)")
    stop = tuple(dict.fromkeys((*ctx.params.stop, *get_prompt("judge").stop)))
    judge_text = ctx.generator.generate([prompt], dataclasses.replace(ctx.params, n=1, stop=stop))[0][0].text
    verdict = parse_verdict(judge_text)
    return {"statement": problem.statement, "original": item["question"], "backtranslation": text,
            "judge_text": judge_text, "verdict": verdict,
            "scores": {"faithful_rate": verdict is True,
                       "quantity_recall": quantity_recall(item["question"], text)}}


def run_prove(item: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """`samples` whole proofs under the preset's protocol, each verified, then `rounds` rounds of
    self-correction (presets/proving.py); pass@k by the unbiased estimator after every round, a
    sample and its repairs counting as one. The headline pass@k is the last round's."""
    from solve_in_lean.presets.proving import prove

    if ctx.options.search is not None:
        return run_search(item, ctx)
    problem = formal_problem(item, ctx.header)
    rounds = ctx.options.prove_rounds
    result = prove(problem, ctx.generator, _checker(ctx), params=ctx.params,
                   options=ctx.options.solve.replace(rounds=rounds), policy=ctx.policy, preset=ctx.preset)
    n, ks = ctx.options.solve.samples, ctx.options.ks
    scores: dict[str, Any] = {}
    for r, c in enumerate(result.correct_by_round):
        for k in ks:
            value: Any = c > 0 if k == n else pass_at_k(n, c, k)  # pass@n: "any proof verified", yes/no
            scores[f"pass@{k}"] = value
            if rounds:
                scores[f"round{r}:pass@{k}"] = value
    return {"solve": result.to_dict(), "samples": n, "correct": result.correct_by_round[-1],
            "correct_by_round": result.correct_by_round, "proof": result.proof, "scores": scores}


def run_search(item: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Best-first search over REPL tactic states (InternLM-Math's miniF2F protocol); the proof found is
    then verified whole like any other. The record keeps the tree's size, the depth, the time and the
    budget spent in model and Lean calls."""
    from solve_in_lean.presets.proving import statement_head
    from solve_in_lean.search import counted_search, model_proposer
    from solve_in_lean.verify import verify

    o, checker = ctx.options, _checker(ctx)
    problem = formal_problem(item, ctx.header)
    theorem = statement_head(problem.statement)
    template = ctx.preset.prompts.get("tactic") if ctx.preset is not None else None
    propose = model_proposer(ctx.generator, ctx.params, n=o.tactics_per_state, template=template)
    with tactic_session(checker, problem.header, o.solve.timeout_s) as session:
        proof, result, calls = counted_search(theorem, session, propose, max_expansions=o.expansions,
                                              max_seconds=o.search_seconds)
    verdict = None
    if proof is not None:
        verdict = verify(proof, checker, header=problem.header or None, target=target_of(problem), policy=ctx.policy,
                         timeout_s=o.solve.timeout_s)
        calls.lean += 1
    verified = bool(verdict and verdict.verified)
    return {"search": {**dataclasses.asdict(result), "model_calls": calls.model, "lean_calls": calls.lean},
            "proof": proof if verified else None, "found": proof, "verified": verified,
            "reasons": verdict.reasons if verdict else [], "scores": {"pass@1": verified}}


def tactic_session(checker: LeanChecker, header: str, timeout_s: float) -> Any:
    """A REPL tactic session under `header`; a backend without proof states cannot search (it stops the run)."""
    open_session = getattr(checker, "tactic_session", None)
    if open_session is None:
        raise UnavailableError(f"best-first search needs Lean's tactic states, which the {checker.name} backend "
                               "does not give; use the repl backend (`-b repl`, installed by `lean-solve setup`)")
    return open_session(header=header or None, timeout_s=timeout_s)


def _preset_prompt(ctx: TaskContext, task: str) -> Any:
    """The preset's own template for `task` (its published query), or None for the project's."""
    return ctx.preset.prompts.get(task) if ctx.preset is not None else None


def _formalize_prompts(ctx: TaskContext) -> dict[str, Any] | None:
    """autoformalize's templates with the preset's formalize/backtranslate queries in their place."""
    return ctx.preset.autoformalize_prompts() if ctx.preset is not None else None


def _checker(ctx: TaskContext) -> LeanChecker:
    if ctx.checker is None:
        raise ValueError("this task needs a Lean checker")
    return ctx.checker


def run_rerank(item: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Best-of-n over `samples` chains of thought by reward model, majority and Lean (verifier/rerank.py);
    step labels by `cot_samples` rollouts per step (0: none)."""
    from solve_in_lean.verifier.rerank import rerank_item

    problem = formal_problem(item, ctx.header) if item.get("formal") else None
    return rerank_item(item, problem, ctx.generator, ctx.checker, params=ctx.params, options=ctx.options.solve,
                       policy=ctx.policy, rollouts=ctx.options.solve.cot_samples)


RUNNERS: dict[str, Callable[[dict[str, Any], TaskContext], dict[str, Any]]] = {
    "cot": run_cot, "code": run_code, "lean-solve": run_lean_solve, "via-lean": run_via_lean,
    "formalize": run_formalize,
    "backtranslate": run_backtranslate, "prove": run_prove, "rerank": run_rerank}


def metric_names(task: str, options: TaskOptions) -> list[str]:
    """The task's metrics, main one first."""
    if task == "prove":
        rounds = range(options.prove_rounds + 1) if options.prove_rounds else ()
        return [f"pass@{k}" for k in options.ks] + [f"round{r}:pass@{k}" for r in rounds for k in options.ks]
    return {"cot": ["accuracy"], "code": CODE_METRICS,
            "lean-solve": ["verified_accuracy", "computed_accuracy", "informal_accuracy", "verified_rate", "accuracy",
                           "rule:majority_accuracy", "rule:lean_accuracy", "rule:verified_accuracy",
                           "determinate_rate"],
            "via-lean": ["computed_accuracy", "computed_rate"],
            "formalize": ["elaboration_rate", "faithful_rate", "cheap_pass_rate", "reference_match"],
            "backtranslate": ["faithful_rate", "quantity_recall"],
            "rerank": ["best_of_n:reward", "best_of_n:prm", "best_of_n:majority", "best_of_n:lean", "pass@n"]}[task]


def item_scores(record: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """A record's outcome per metric; a record whose run raised counts as a failure."""
    if "error" in record:
        return {name: False for name in names}
    return {name: record.get("scores", {}).get(name) for name in names}


def task_metrics(task: str, records: list[dict[str, Any]], options: TaskOptions,
                 confidence: float = 0.95) -> dict[str, Any]:
    """Every metric of a task over a run's records, with intervals; `main` names the headline one
    (the first that has data)."""
    names = metric_names(task, options)
    scored = [item_scores(r, names) for r in records]
    metrics = {name: estimate([s[name] for s in scored], confidence).to_dict() for name in names}
    main = next((n for n in names if metrics[n]["value"] is not None), names[0])
    out: dict[str, Any] = {"task": task, "items": len(records), "errors": sum("error" in r for r in records),
                           "confidence": confidence, "main": main, "metrics": metrics}
    if task == "formalize":
        out["formalization"] = dataset_metrics([r["formalization"] for r in records if "formalization" in r])
    if task == "rerank":  # candidates, not items, are scored: AUROC of each reward against correctness
        from solve_in_lean.verifier.rerank import auroc_groups

        out["auroc"] = {score: auroc_estimate(auroc_groups(records, score), confidence).to_dict()
                        for score in ("reward", "prm_reward", "lrm")}
    return out
