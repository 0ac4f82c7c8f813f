"""The modes where a model writes the new problem: `rephrase`, `harder`, `from-lean`.

A model's problem is hostile text, so nothing it says is taken on trust: each new problem goes
through the whole loop (formalize -> solve -> verify, pipeline.py) and is kept only with a
Lean-verified answer, labelled with how it was certified:

* rephrase: the rephrasing's formalization verifies the *same answer* as the source (the
  source's answer verified by Lean first: its program re-checked, else the loop on the source);
* from-lean: the word problem's formalization verifies the same answer as the source statement,
  when that statement is a compute problem with a verifiable answer; else Lean's verified
  answer for the new problem;
* harder: Lean's verified answer for the new problem; whether a chain of thought agrees is
  recorded beside it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from solve_in_lean.answers import equivalent, parse_lean_value
from solve_in_lean.augment.numbers import Source, source_of
from solve_in_lean.verifier.values import prelude_value
from solve_in_lean.lean.base import LeanChecker
from solve_in_lean.models.base import Generator, SamplingParams
from solve_in_lean.pipeline import PipelineConfig, run_problem
from solve_in_lean.prompts import get_prompt
from solve_in_lean.solve import target_of
from solve_in_lean.verify import verify

PROMPTS = {"rephrase": "rephrase_problem", "harder": "harder_problem", "from-lean": "lean_to_problem"}


def same_value(a: str | None, b: str | None) -> bool:
    """Two verified answers denote the same value (prelude terms by their value, others as answers.py reads them)."""
    if a is None or b is None:
        return False
    pa, pb = prelude_value(a), prelude_value(b)
    return equivalent(a if pa is None else str(pa), b if pb is None else str(pb))


def problem_texts(completions: list[str], source: str, max_chars: int) -> list[tuple[str | None, str]]:
    """(the problem a completion wrote, or None, and why not): its first paragraph, label removed."""
    out = []
    for text in completions:
        first = (text or "").strip().split("\n\n")[0].strip()
        for label in ("Rewritten problem:", "Harder problem:", "Word problem:", "Problem:"):
            first = first.removeprefix(label).strip()
        if not first:
            out.append((None, "the model wrote no problem"))
        elif len(first) > max_chars:
            out.append((None, f"the model's problem is longer than {max_chars} characters"))
        elif " ".join(first.split()).casefold() == " ".join(source.split()).casefold():
            out.append((None, "the model copied the source problem"))
        else:
            out.append((first, ""))
    return out


def source_answer(item: dict[str, Any], generator: Generator, checker: LeanChecker, params: SamplingParams,
                  cfg: PipelineConfig) -> tuple[str | None, dict[str, Any]]:
    """The source's Lean-verified answer and how it was obtained: its program re-verified when it has
    one, else the loop run on it. (None, why) when Lean verifies no answer."""
    src = source_of(item)
    if isinstance(src, Source):
        header = src.formal.header or cfg.header
        v = verify(src.program, checker, header=header, target=target_of(src.formal),
                   answer_name=src.formal.answer_name, policy=cfg.policy, timeout_s=cfg.options.timeout_s)
        if v.verified and v.answer:
            raw = " ".join(v.answer.split())
            return parse_lean_value(raw) or raw, {"how": "the source's program re-verified", "backend": v.check.backend}
        return None, {"how": "the source's program no longer verifies", "reasons": v.reasons}
    rec = run_problem({**item, "id": str(item["id"])}, generator, checker, params=params, cfg=cfg)
    if rec["verified"]:
        return rec["answer"], {"how": "formalize -> solve -> verify on the source", "lean_code": rec["lean_code"]}
    return None, {"how": "formalize -> solve -> verify on the source", "status": rec["status"]}


def augment(item: dict[str, Any], mode: str, generator: Generator, checker: LeanChecker, *, k: int,
            params: SamplingParams, cfg: PipelineConfig) -> dict[str, Any]:
    """Up to `k` model-written problems from one source, each kept only with a Lean certificate."""
    sid = str(item["id"])
    result: dict[str, Any] = {"mode": mode, "source_id": sid, "problems": [], "dropped": []}
    question = item.get("question") or ""
    formal = item.get("formal") if isinstance(item.get("formal"), dict) else None
    if mode == "from-lean" and formal is None:
        return {**result, "skipped": "no Lean statement (`formal`) to write a problem for"}
    if mode != "from-lean" and not question.strip():
        return {**result, "skipped": "no English problem text"}
    reference, how = None, {}
    if mode == "rephrase" or (mode == "from-lean" and formal.get("kind") == "compute"):
        reference, how = source_answer(item, generator, checker, params, cfg)
        if reference is None and mode == "rephrase":
            return {**result, "skipped": f"the source has no Lean-verified answer to compare with ({how['how']})"}
    task = PROMPTS[mode]
    prompt = get_prompt(task).render(problem=question, statement=(formal or {}).get("statement", "").strip())
    stop = tuple(dict.fromkeys((*params.stop, *get_prompt(task).stop)))
    completions = [c.text for c in generator.generate([prompt], replace(params, n=k, stop=stop))[0]]
    for i, (text, why) in enumerate(problem_texts(completions, question, cfg.options.max_problem_chars)):
        if text is None:
            result["dropped"].append({"variant": i, "reason": why})
            continue
        new_id = f"{sid}.{mode}.{i}"
        rec = run_problem({"id": new_id, "question": text}, generator, checker, params=params, cfg=cfg)
        if not rec["verified"]:
            result["dropped"].append({"variant": i, "question": text,
                                      "reason": f"the loop did not verify an answer ({rec['status']})"})
            continue
        if reference is not None and not same_value(rec["answer"], reference):
            result["dropped"].append({"variant": i, "question": text, "reason": f"Lean verified {rec['answer']}, "
                                      f"not the source's {reference}"})
            continue
        result["problems"].append(_row(new_id, text, rec, sid, mode, reference, how))
    return result


def _row(new_id: str, text: str, rec: dict[str, Any], sid: str, mode: str, reference: str | None,
         how: dict[str, Any]) -> dict[str, Any]:
    formal = rec["formal"]
    cot = rec["stages"]["solve"].get("cot_answer")
    if reference is not None:
        certified = f"Lean verified the same answer as the source ({reference}; source: {how['how']})"
    else:
        certified = "formalize -> solve -> verify: Lean verified the answer of the model's formalization"
    return {"id": new_id, "question": text, "answer": rec["answer"],
            "formal": {"kind": formal["kind"], "statement": formal["statement"]}, "proof": rec["lean_code"],
            "provenance": {"source_id": sid, "mode": mode, "certified": certified,
                           "lean": {"verified": True, "answer": rec["answer"],
                                    "formalization_score": (formal.get("scores") or {}).get("score")},
                           "cot_answer": cot, "cot_agrees": None if cot is None else same_value(cot, rec["answer"])}}
