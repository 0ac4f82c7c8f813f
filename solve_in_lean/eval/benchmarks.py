"""Loaders for the benchmarks the provers and InternLM-Math report on, from files already on disk.

Nothing is downloaded at run time: get each file where there is internet (docs/evaluation.md says
where and which split the papers used), then `lean-solve eval --format NAME --data FILE`. Every
loader gives items of the one shape solve_in_lean.problems documents.

    proofnet     ProofNet, Lean 4 port (DeepSeek-Prover's datasets/proofnet.jsonl): name, split,
                 header, informal_prefix, formal_statement[, goal]          -> prove items
    putnambench  PutnamBench Lean 4: name, lean4_statement (the whole .lean file: imports, an
                 `abbrev putnam_..._solution : T := sorry` when the problem asks for a value, the
                 theorem), informal_statement, informal_solution            -> compute or prove items
    mathbench    MathBench (open-compass): question, options (single choice) or none (cloze),
                 answer; file names like `college/single_choice_en.jsonl`   -> answer items
    hungarian    Hungarian national high-school finals exam 2023: Question[, Answer][, Reference]
                 (problems + references; answers are judged, not matched)  -> question items
    math500      MATH-500 (PRM800K test subset): problem, solution, answer, subject, level,
                 unique_id                                                  -> answer items
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from autoformalize.problem import FormalProblem
from solve_in_lean.lean.source import split_header
from solve_in_lean.problems import DatasetError, collect_items, math_item, read_rows


def _item(pid: str, dataset: str, *, question: str | None = None, answer: Any = None, solution: str | None = None,
          formal: dict | None = None, meta: dict | None = None) -> dict[str, Any]:
    return {"id": pid, "dataset": dataset, "question": question, "answer": None if answer is None else str(answer),
            "solution": solution, "formal": formal, "meta": meta or {}}


def _doc(text: str | None) -> str | None:
    """The text of a `/-- ... -/` doc comment (ProofNet's and PutnamBench's informal statements)."""
    if not text:
        return None
    return re.sub(r"^\s*/--?\s*|\s*-/\s*$", "", text, flags=re.S).strip() or None


def proofnet_item(row: dict[str, Any], n: int) -> dict[str, Any]:
    """A ProofNet (Lean 4) row: the theorem to prove under its own header."""
    name = str(row.get("name") or row.get("id") or f"proofnet-{n}")
    question = row.get("nl_statement") or _doc(row.get("informal_prefix"))
    formal = FormalProblem(id=name, source=question or "", kind="prove", statement=row["formal_statement"],
                           header=row.get("header", ""), provenance={"dataset": "proofnet", "split": row.get("split")})
    return _item(name, "proofnet", question=question, solution=row.get("nl_proof"), formal=formal.to_dict(),
                 meta={"split": row.get("split")})


_SOLUTION = re.compile(r"(?m)^[ \t]*(?:noncomputable[ \t]+)?abbrev[ \t]+(\S+_solution)[ \t]*:[ \t]*(.+?)[ \t]*"
                       r":=[ \t]*sorry"
                       r"(?:[ \t]*\n?[ \t]*--[ \t]*(.*))?")


def putnambench_item(row: dict[str, Any], n: int) -> dict[str, Any]:
    """A PutnamBench (Lean 4) row. With an `abbrev ..._solution := sorry` the problem asks for a value
    (compute: the model fills the hole and proves the theorem, as PutnamBench scores it); the value in
    the comment after it is the reference answer. Without one it is a plain theorem (prove)."""
    name = str(row.get("name") or row.get("problem_name") or f"putnam-{n}")
    text = row["lean4_statement"]
    header, body = split_header(text)
    opens = [ln for ln in body.split("\n") if re.match(r"\s*(open|set_option)\b", ln)]
    statement = "\n".join(ln for ln in body.split("\n") if ln not in opens).strip() + "\n"
    question = row.get("informal_statement") or None
    m = _SOLUTION.search(statement)
    kind = "compute" if m else "prove"
    formal = FormalProblem(id=name, source=question or "", kind=kind, statement=statement,
                           header=(header + "\n".join(opens)).strip() + "\n", theorem_name=name,
                           answer_name=m.group(1) if m else None, answer_type=m.group(2).strip() if m else None,
                           provenance={"dataset": "putnambench"})
    answer = ((m.group(3) or "").strip() or None) if m else None
    return _item(name, "putnambench", question=question, answer=answer, solution=row.get("informal_solution"),
                 formal=formal.to_dict(), meta={"tags": row.get("tags", [])})


def mathbench_item(row: dict[str, Any], n: int, source: str) -> dict[str, Any]:
    """A MathBench row: a single-choice question (options rendered A., B., ...; the answer is a letter)
    or a cloze question (the answer is a value)."""
    options = row.get("options") or []
    question = row["question"].strip()
    if options:
        letters = "ABCDEFGH"
        question += "\n" + "\n".join(f"{letters[i]}. {opt}" for i, opt in enumerate(options))
    kind = "single_choice" if options else "cloze"
    return _item(str(row.get("id", f"mathbench-{source}-{n}")), "mathbench", question=question,
                 answer=str(row["answer"]).strip(), meta={"type": kind, "file": source})


def hungarian_item(row: dict[str, Any], n: int) -> dict[str, Any]:
    """A Hungarian exam problem: the question, the reference solution for the judge, and the final
    answer when the row gives one (the exam is graded by people, not by matching)."""
    question = row.get("Question") or row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise KeyError("Question")
    reference = row.get("Reference") or row.get("reference") or row.get("solution")
    return _item(str(row.get("id", f"hungarian-{n}")), "hungarian", question=question.strip(),
                 answer=row.get("Answer") or row.get("answer"), solution=reference,
                 meta={"points": row.get("points"), "judged": True})


def _math500(row: dict[str, Any], n: int) -> dict[str, Any]:
    return math_item(row, n, dataset="math500")


LOADERS: dict[str, Callable[[dict[str, Any], int], dict[str, Any]]] = {
    "proofnet": proofnet_item, "putnambench": putnambench_item, "hungarian": hungarian_item, "math500": _math500}
BENCHMARKS = (*LOADERS, "mathbench")


def load_benchmark(path: str | Path, fmt: str, *, split: str | None = None) -> list[dict[str, Any]]:
    """Every item of a benchmark file in file order; DatasetError naming the line that does not fit."""
    path = Path(path)
    if fmt not in BENCHMARKS:
        raise DatasetError(f"unknown benchmark {fmt!r}; choose one of: {', '.join(BENCHMARKS)}")
    read = (lambda row, n: mathbench_item(row, n, path.stem)) if fmt == "mathbench" else LOADERS[fmt]
    items = collect_items(path, read_rows(path), fmt, read, split)
    if not items:
        raise DatasetError(f"{path}: no problems" + (f" in split {split!r}" if split else ""))
    return items
