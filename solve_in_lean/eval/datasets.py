"""What the evaluation tasks need of a problem, a seeded sample of items, and CoT text from
GSM8K solutions. Problem files are read by solve_in_lean.problems.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from solve_in_lean.problems import DatasetError


def select(items: list[dict[str, Any]], limit: int | None, seed: int) -> list[dict[str, Any]]:
    """`limit` items drawn at random under `seed`, kept in file order; all items without a limit.
    The same file, limit and seed always give the same items."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit < 1:
        raise DatasetError(f"--limit must be at least 1, got {limit}")
    picked = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in picked]


TASK_NEEDS = {
    "cot": ("question", "answer"),
    "code": ("question", "answer"),
    "lean-solve": ("question|formal",),
    "via-lean": ("question", "answer"),
    "formalize": ("question",),
    "backtranslate": ("question", "formal"),
    "prove": ("formal:prove",),
    "rerank": ("question", "answer"),
}
"""What each task needs of an item: `a|b` either field, `formal:prove` a statement to prove."""


def missing_for(task: str, item: dict[str, Any]) -> str | None:
    """What `item` lacks for `task`, or None when the task can use it."""
    for need in TASK_NEEDS[task]:
        if need == "formal:prove":
            if not item.get("formal") or item["formal"].get("kind") != "prove":
                return "statement to prove (`formal` with kind prove, or miniF2F's formal_statement)"
        elif not any(item.get(field) for field in need.split("|")):
            return {"question": "English problem (question or problem)", "answer": "reference answer",
                    "formal": "formal statement (`formal`)",
                    "question|formal": "English problem or formal statement"}[need]
    return None


def usable(task: str, items: list[dict[str, Any]], path: str | Path) -> list[dict[str, Any]]:
    """The items `task` can use (a file may mix kinds: compute and prove problems); DatasetError
    when there are none."""
    keep = [it for it in items if missing_for(task, it) is None]
    if not keep:
        raise DatasetError(f"{path}: no problem has the {missing_for(task, items[0])} that the {task} task needs "
                           "(docs/evaluation.md describes the formats)")
    return keep


_CALCULATOR = re.compile(r"<<[^<>\n]*>>")


def gsm8k_cot_text(solution: str) -> str:
    """A GSM8K solution as our CoT prompt asks for it: no calculator annotations, and the final
    `#### N` line turned into "The answer is N."."""
    body, sep, answer = solution.rpartition("####")
    text = _CALCULATOR.sub("", body if sep else solution).strip()
    return f"{text}\nThe answer is {answer.strip()}." if sep else text
