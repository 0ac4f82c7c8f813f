"""Reward tasks from Lean's verdicts: outcome (orm), process (prm) and Lean-as-reward (lrm).

Labels (docs/evaluation.md, "Reward tasks"):
  orm  a solution is positive when Lean confirmed its answer (a verified proof, or equal to a
       verified program's value), negative when Lean refuted it; with no Lean verdict, the
       dataset's reference decides; otherwise unlabelled (None), never guessed.
  prm  Math-Shepherd hard estimation: a step is positive when at least one of `rollouts`
       continuations of the solution up to and including it reaches the target answer (the
       verified answer, else the reference).
  lrm  the reward is Lean's verdict itself: 1 for confirmed/verified, 0 otherwise.
A reward model is our own model through the same backends, asked the orm/prm prompt and read as
generative yes/no: the reward is its probability of "yes" (from the completion's log-probability
where the backend reports it, else the share of "yes" among the samples).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

from solve_in_lean.answers import equivalent, extract_answer
from solve_in_lean.models.base import Completion, Generator, SamplingParams
from solve_in_lean.prompts import get_prompt
from solve_in_lean.verifier.values import same_number

MAX_STEPS = 6
"""Steps of a solution labelled or scored; later ones are merged into the last (rollouts cost)."""
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9$(])|\n+")
_STATES_ANSWER = re.compile(r"\banswer is\b|\\boxed\{", re.I)
"""A final answer stated in so many words (extract_answer alone would also take a step's last number)."""
_YES, _NO = re.compile(r"^\W*yes\b", re.I), re.compile(r"^\W*no\b", re.I)


def split_steps(solution: str) -> list[str]:
    """The solution's steps: its lines, or its sentences; at most MAX_STEPS."""
    steps = [s.strip() for s in _SENTENCE.split(solution.strip()) if s and s.strip()]
    if len(steps) > MAX_STEPS:
        steps = steps[: MAX_STEPS - 1] + [" ".join(steps[MAX_STEPS - 1:])]
    return steps


def same_answer(a: str | None, b: str | None) -> bool:
    """Equal as numbers (Lean terms included) or as normalized answers."""
    if a is None or b is None:
        return False
    return bool(same_number(a, b) or equivalent(a, b))


def orm_label(answer: str | None, *, lean_verdict: str | None = None, reference: str | None = None) -> bool | None:
    """Outcome label: Lean's verdict first, then the reference, else None."""
    if lean_verdict == "confirmed":
        return True
    if lean_verdict == "refuted":
        return False
    if reference is not None:
        return same_answer(answer, reference)
    return None


def lrm_score(lean_verdict: str | None) -> float:
    return 1.0 if lean_verdict in ("confirmed", "verified") else 0.0


def yes_probability(completions: list[Completion]) -> float | None:
    """P("yes") from generative yes/no answers; None when no completion says yes or no."""
    probs = []
    for c in completions:
        yes, no = bool(_YES.match(c.text)), bool(_NO.match(c.text))
        if not (yes or no):
            continue
        p = math.exp(c.logprob) if c.logprob is not None and c.logprob <= 0 else 1.0
        probs.append(p if yes else 1.0 - p)
    return sum(probs) / len(probs) if probs else None


def _ask(generator: Generator, task: str, fields: list[dict[str, str]], params: SamplingParams,
         samples: int) -> list[float | None]:
    template = get_prompt(task)
    prompts = [template.render(**f) for f in fields]
    if not prompts:
        return []
    stop = tuple(dict.fromkeys((*params.stop, *template.stop)))
    rows = generator.generate(prompts, replace(params, n=samples, stop=stop, max_new_tokens=min(params.max_new_tokens, 4)))
    return [yes_probability(row) for row in rows]


def outcome_rewards(generator: Generator, problem: str, solutions: list[str], *, params: SamplingParams,
                    samples: int = 1) -> list[float | None]:
    """The reward model's P(yes) that each solution's final answer is right."""
    return _ask(generator, "orm", [{"problem": problem, "solution": s} for s in solutions], params, samples)


def step_rewards(generator: Generator, problem: str, steps: list[str], *, params: SamplingParams,
                 samples: int = 1) -> list[float | None]:
    """The reward model's P(yes) for each step given the ones before it."""
    fields = [{"problem": problem, "previous": " ".join(steps[:i]) or "(none)", "step": s}
              for i, s in enumerate(steps)]
    return _ask(generator, "prm", fields, params, samples)


def prm_labels(generator: Generator, problem: str, steps: list[str], target: str, *, params: SamplingParams,
               rollouts: int) -> list[dict[str, Any]]:
    """Math-Shepherd labels: for each prefix, `rollouts` continuations of the chain of thought;
    the step is positive when any reaches `target`; a prefix that already states an answer is
    labelled by that answer alone. Each label keeps the answers it rests on."""
    if not steps or rollouts < 1:
        return []
    template = get_prompt("cot")
    base = template.render_text(problem=problem)
    prefixes = [" ".join(steps[: i + 1]) for i in range(len(steps))]
    stated = [extract_answer(p) if _STATES_ANSWER.search(p) else None for p in prefixes]
    todo = [i for i, a in enumerate(stated) if a is None]
    stop = tuple(dict.fromkeys((*params.stop, *template.stop)))
    rows = generator.generate([base + prefixes[i] + " " for i in todo], replace(params, n=rollouts, stop=stop)) \
        if todo else []
    rolled = {i: [extract_answer(prefixes[i] + " " + c.text) for c in row] for i, row in zip(todo, rows)}
    out = []
    for i, step in enumerate(steps):
        answers = rolled.get(i, [stated[i]])
        out.append({"step": step, "label": any(same_answer(a, target) for a in answers), "rollout_answers": answers})
    return out
