"""Reading problem files: GSM8K, MATH, miniF2F, statement records and our own JSONL format.

`lean-solve solve -i`, `formalize -i` and `eval` all read problems here. Every loader gives
items of one shape, so nothing downstream looks at where an item came from:

    {"id": str, "dataset": str, "question": str | None, "answer": str | None,
     "solution": str | None, "formal": FormalProblem dict | None, "meta": {...}}

`question` is the English problem, `answer` the reference final answer, `solution` a worked
solution (CoT training data), `formal` a Lean statement that came with the problem. The
user format (docs/evaluation.md) is the same shape with a few aliases accepted.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

from autoformalize.problem import FormalProblem, minif2f_problem
from solve_in_lean.answers import extract_answer
from solve_in_lean.errors import InputError
from solve_in_lean.records import read_jsonl

FORMATS = ("auto", "gsm8k", "math", "minif2f", "jsonl", "formalized")
TEXT_FIELDS = ("question", "problem", "informal_statement", "text")


class DatasetError(InputError):
    """The data file cannot be read as the format asked for; the message says which line and why."""


def file_sha256(path: str | Path) -> str:
    """Content hash of a data file: a run records it, so it cannot silently resume on other data."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def detect_format(row: dict[str, Any]) -> str:
    """Which loader fits a file, from the fields of its first row."""
    if "candidates" in row and "source" in row:
        return "formalized"
    if "formal_statement" in row and "name" in row and "formal" not in row:
        return "minif2f"
    if {"question", "solution", "answer"} <= row.keys() and "formal" not in row:
        return "gsm8k"
    if {"problem", "solution"} <= row.keys() and "formal" not in row:
        return "math"
    return "jsonl"


def _text(row: dict[str, Any]) -> str | None:
    return next((row[f] for f in TEXT_FIELDS if isinstance(row.get(f), str) and row[f].strip()), None)


def _item(pid: str, dataset: str, *, question: str | None = None, answer: Any = None,
          solution: str | None = None, formal: dict | None = None, meta: dict | None = None) -> dict[str, Any]:
    return {"id": pid, "dataset": dataset, "question": question,
            "answer": None if answer is None else str(answer), "solution": solution, "formal": formal,
            "meta": meta or {}}


def gsm8k_item(row: dict[str, Any], n: int, dataset: str = "gsm8k") -> dict[str, Any]:
    """A GSM8K row: question, solution ending in `#### N`, answer N."""
    answer = row.get("answer")
    if answer is None and isinstance(row.get("solution"), str) and "####" in row["solution"]:
        answer = row["solution"].rsplit("####", 1)[1].strip()
    return _item(str(row.get("id", f"{dataset}-{n}")), dataset, question=row["question"], answer=answer,
                 solution=row.get("solution"))


def math_item(row: dict[str, Any], n: int, dataset: str = "math") -> dict[str, Any]:
    """A MATH row: problem, solution with the answer in the last `\\boxed{}` (or an `answer` field)."""
    answer = row.get("answer")
    if answer is None:
        answer = extract_answer(row["solution"]) if r"\boxed" in row["solution"] else None
    meta = {k: row[k] for k in ("level", "type", "subject") if k in row}
    return _item(str(row.get("id", row.get("unique_id", f"{dataset}-{n}"))), dataset, question=row["problem"],
                 answer=answer, solution=row["solution"], meta=meta)


def minif2f_item(row: dict[str, Any], dataset: str = "minif2f") -> dict[str, Any]:
    """A miniF2F row (name, split, header, formal_statement[, informal_statement])."""
    formal = minif2f_problem(row).to_dict()
    return _item(row["name"], dataset, question=row.get("informal_statement") or None, formal=formal,
                 solution=row.get("informal_proof"), meta={"split": row.get("split")})


def formalized_item(row: dict[str, Any], dataset: str = "formalized") -> dict[str, Any]:
    """A record of `lean-solve formalize` (or of the formalize task): its English and best statement."""
    best = row.get("best")
    formal = None
    if best is not None:
        cand = row["candidates"][best]["problem"]
        formal = {**cand, "source": row["source"], "header": row.get("header", "")}
    return _item(str(row["id"]), str(row.get("dataset") or dataset), question=row["source"], formal=formal)


def own_item(row: dict[str, Any], n: int, dataset: str) -> dict[str, Any]:
    """The documented user format: id, question|problem, answer, solution, formal, dataset."""
    pid = str(row.get("id", row.get("name", f"{dataset}-{n}")))
    question = _text(row)
    formal = row.get("formal")
    if formal is not None and not isinstance(formal, dict):
        raise DatasetError(f"problem {pid!r}: `formal` must be an object with kind and statement")
    if formal is None and "formal_statement" in row:
        formal = {"kind": "prove", "statement": row["formal_statement"], "header": row.get("header", ""),
                  "theorem_name": row.get("name", "")}
    if formal is not None:
        missing = [k for k in ("kind", "statement") if k not in formal]
        if missing:
            raise DatasetError(f"problem {pid!r}: `formal` lacks {', '.join(missing)}")
        formal = FormalProblem.from_dict({"id": pid, "source": question or "", **formal}).to_dict()
    meta = {k: v for k, v in row.items() if k not in {"id", "name", "answer", "solution", "formal", "dataset",
                                                       "formal_statement", "header", *TEXT_FIELDS}}
    return _item(pid, str(row.get("dataset") or dataset), question=question, answer=row.get("answer"),
                 solution=row.get("solution"), formal=formal, meta=meta)


def load_items(path: str | Path, fmt: str = "auto", *, split: str | None = None) -> list[dict[str, Any]]:
    """Every item of a data file in file order; ids must be unique (runs resume by id)."""
    path = Path(path)
    if fmt not in FORMATS:
        raise DatasetError(f"unknown data format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    rows = read_rows(path)
    if not rows:
        raise DatasetError(f"{path}: no problems in the file")
    if fmt == "auto":
        fmt = detect_format(rows[0])
    dataset = path.stem if fmt in ("jsonl", "formalized") else fmt
    items = collect_items(path, rows, fmt, lambda row, n: _read(row, n, fmt, dataset), split)
    if not items:
        raise DatasetError(f"{path}: no problems in split {split!r}")
    return items


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The JSON rows of a problem file, or DatasetError naming the file (and the bad line)."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        return list(read_jsonl(path, strict=True))
    except ValueError as e:
        raise DatasetError(str(e)) from e


def collect_items(path: Path, rows: list[dict[str, Any]], fmt: str,
                  read: Callable[[dict[str, Any], int], dict[str, Any]], split: str | None) -> list[dict[str, Any]]:
    """`read` over the rows (line numbers from 1), kept when in `split`; DatasetError naming the line
    of a row that does not fit or of an id seen twice (runs resume by id)."""
    items, seen = [], set()
    for n, row in enumerate(rows, start=1):
        try:
            item = read(row, n)
        except (KeyError, TypeError) as e:
            raise DatasetError(f"{path}:{n}: not a {fmt} row (missing or bad field {e})") from e
        except ValueError as e:  # a formal statement that cannot be read, a bad `formal` object
            raise DatasetError(f"{path}:{n}: {e}") from e
        if split is not None and item["meta"].get("split") != split:
            continue
        if item["id"] in seen:
            raise DatasetError(f"{path}:{n}: id {item['id']!r} appears twice; ids must be unique for resuming")
        seen.add(item["id"])
        items.append(item)
    return items


def _read(row: dict[str, Any], n: int, fmt: str, dataset: str) -> dict[str, Any]:
    if fmt == "gsm8k":
        return gsm8k_item(row, n)
    if fmt == "math":
        return math_item(row, n)
    if fmt == "minif2f":
        return minif2f_item(row)
    if fmt == "formalized":
        return formalized_item(row, dataset)
    return own_item(row, n, dataset)


def solvable(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The items `solve` can run (an English problem or a formal statement), and the ids of the others."""
    keep = [it for it in items if it.get("question") or it.get("formal")]
    if not keep:
        raise DatasetError("no row of the file has a problem text (" + ", ".join(TEXT_FIELDS)
                           + ") or a formal statement (formal, formal_statement)")
    return keep, [str(it["id"]) for it in items if not (it.get("question") or it.get("formal"))]


def english_problems(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The items `formalize` can run (an English problem, of kind compute or prove when a kind is
    given), and the ids of those without English."""
    keep = []
    for item in items:
        kind = item["meta"].get("kind")
        if kind not in (None, "compute", "prove"):
            raise DatasetError(f"problem {item['id']!r} has kind {kind!r}; expected compute or prove")
        if item["question"]:
            keep.append(item)
    if not keep:
        raise DatasetError(f"no row of the file has a problem text ({', '.join(TEXT_FIELDS)})")
    return keep, [str(it["id"]) for it in items if not it["question"]]
