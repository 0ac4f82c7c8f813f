"""One item of `eval --task rerank`: n chains of thought, each scored three ways, best-of-n chosen
by each rule, and every candidate labelled for the AUROC and for reward-model training data.

    reward     the candidate the reward model (orm prompt, P("yes")) scores highest (first on ties)
    prm        the same with the process reward: the lowest P("yes") over the candidate's steps
    majority   the most frequent answer among the candidates
    lean       the most frequent answer among those Lean confirmed (none confirmed: no answer)
Candidates carry: answer, correct (against the reference), Lean's verdict (items with a compute
statement), orm label (Lean first, then reference), reward, lrm score and, when rollouts > 0,
Math-Shepherd step labels (prm) toward the Lean-confirmed answer, else the reference.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from autoformalize.problem import FormalProblem
from solve_in_lean.answers import extract_answer, normalize, to_text
from solve_in_lean.lean.base import LeanChecker
from solve_in_lean.models.base import Generator, SamplingParams
from solve_in_lean.options import SolveOptions
from solve_in_lean.solve import chain_of_thought
from solve_in_lean.verifier.answer import check_model_answer
from solve_in_lean.verifier.reward import (lrm_score, orm_label, outcome_rewards, prm_labels, same_answer,
                                           split_steps, step_rewards)
from solve_in_lean.verify import Policy

def rerank_item(item: dict[str, Any], problem: FormalProblem | None, generator: Generator,
                checker: LeanChecker | None, *, params: SamplingParams, options: SolveOptions,
                policy: Policy, rollouts: int = 0) -> dict[str, Any]:
    """The record of one item: candidates with their labels and scores, each rule's pick and score."""
    question, reference = item["question"], item.get("answer")
    _, _, texts = chain_of_thought(question, generator, params=params, k=options.samples)
    answers = [_answer(t) for t in texts]
    rewards = outcome_rewards(generator, question, texts, params=params)
    process = [_lowest(step_rewards(generator, question, split_steps(t), params=params)) for t in texts]
    verdicts = _lean_verdicts(problem, answers, generator, checker, params, options, policy)
    confirmed = [a for a in answers if a is not None and verdicts.get(a, {}).get("verdict") == "confirmed"]
    target = Counter(confirmed).most_common(1)[0][0] if confirmed else reference
    candidates = []
    for text, answer, reward, prm_reward in zip(texts, answers, rewards, process):
        verdict = verdicts.get(answer, {}).get("verdict") if answer is not None else None
        cand = {"solution": text, "answer": answer, "reward": reward, "prm_reward": prm_reward, "lean_verdict": verdict,
                "lrm": lrm_score(verdict), "orm_label": orm_label(answer, lean_verdict=verdict, reference=reference),
                "correct": None if reference is None else same_answer(answer, reference)}
        if rollouts and target is not None:
            cand["prm"] = prm_labels(generator, question, split_steps(text), target, params=params,
                                     rollouts=rollouts)
        candidates.append(cand)
    picks = {"reward": _by_reward(candidates, "reward"), "prm": _by_reward(candidates, "prm_reward"),
             "majority": _majority(answers),
             "lean": Counter(confirmed).most_common(1)[0][0] if confirmed else None}
    scores: dict[str, Any] = {f"best_of_n:{rule}": None if reference is None else same_answer(pick, reference)
                              for rule, pick in picks.items()}
    scores["pass@n"] = None if reference is None else any(c["correct"] for c in candidates)
    return {"question": question, "reference": reference, "candidates": candidates, "picks": picks,
            "lean_checks": verdicts, "scores": scores}


def _answer(text: str) -> str | None:
    raw = extract_answer(text)
    value = normalize(raw) if raw else None
    return to_text(value) if value is not None else None


def _lean_verdicts(problem: FormalProblem | None, answers: list[str | None], generator: Generator,
                   checker: LeanChecker | None, params: SamplingParams, options: SolveOptions,
                   policy: Policy) -> dict[str, dict[str, Any]]:
    """Lean's verdict on each distinct answer (proof or disproof, no solver run); none without a
    compute statement."""
    if problem is None or checker is None or problem.kind != "compute":
        return {}
    out: dict[str, dict[str, Any]] = {}
    for answer in dict.fromkeys(a for a in answers if a is not None):
        res = check_model_answer(problem, answer, generator, checker, params=params, options=options, policy=policy)
        out[answer] = {k: res[k] for k in ("verdict", "how", "evidence", "reasons")}
    return out


def _lowest(scores: list[float | None]) -> float | None:
    """A solution is as good as its worst step (the usual PRM aggregate); None without any score."""
    present = [s for s in scores if s is not None]
    return min(present) if present else None


def _by_reward(candidates: list[dict[str, Any]], key: str) -> str | None:
    scored = [(c[key], -i) for i, c in enumerate(candidates) if c[key] is not None]
    return candidates[-max(scored)[1]]["answer"] if scored else None


def _majority(answers: list[str | None]) -> str | None:
    votes = Counter(a for a in answers if a is not None)
    return votes.most_common(1)[0][0] if votes else None


def auroc_groups(records: list[dict[str, Any]], score: str) -> list[list[tuple[float, bool]]]:
    """Per item, (score, correct) of each candidate that has both: the input of the AUROC."""
    return [[(c[score], bool(c["correct"])) for c in r.get("candidates", [])
             if c.get(score) is not None and c.get("correct") is not None] for r in records if "error" not in r]
