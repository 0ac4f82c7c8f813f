"""Training examples for every task in one chat format, built from datasets and earlier runs.

An example is {"task", "source": {"data_sha256", "id"}, "messages": [system, user, assistant]}:
the system and user turns are the task's prompt in the unified format (autoformalize/prompting.py;
no few-shot examples), the last assistant turn is what the model should answer. So training and
evaluation speak the same format, and one loader trains on any mixture of tasks.

    cot            GSM8K solutions (calculator notes removed, "The answer is N." at the end),
                   MATH solutions, or the `solution` of our own items
    formalize      English -> the item's statement in a ```lean block (items with a statement,
                   `lean-solve formalize` records, or run directories of the formalize task)
    backtranslate  the statement -> the English
    lean-solve     verified programs: records of earlier `eval --task lean-solve` runs (or
                   `lean-solve solve` results), or an item's `proof`, verified with Lean first
    prove          verified proofs: records of earlier `eval --task prove` runs, or an item's
                   `proof`, verified with Lean first
    orm            solution -> "yes"/"no" (is its final answer right): candidates of earlier
                   `eval --task rerank` runs with their label (Lean's verdict first, then the
                   reference; unlabelled ones skipped), and items' own solutions as positives
    prm            step -> "yes"/"no": the Math-Shepherd step labels of rerank candidates
    code           problem -> one ```python block, and its printed output -> "The answer is N."
                   (the code solver's two turns): programs built from GSM8K calculator notes, or
                   the Python-backed correct samples of earlier `eval --task code` runs, each run in
                   the sandbox first and kept only when what it prints equals the reference
    augment        lean-solve examples of new problems made by `augment`'s certified `numbers`
                   mode from a training split (Lean verified each changed program), with provenance;
                   none repeats an evaluation item (the augmenter's dedup filter)
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any, Iterable, Iterator

from autoformalize.problem import FormalProblem
from solve_in_lean.answers import equivalent
from solve_in_lean.code.runcache import cached_run
from solve_in_lean.code.sandbox import SandboxLimits
from solve_in_lean.code.solver import COMPUTED_BY_PYTHON, interpreter_turn, printed_answer
from solve_in_lean.errors import UnavailableError
from solve_in_lean.eval.datasets import gsm8k_cot_text
from solve_in_lean.lean.base import LeanChecker
from solve_in_lean.parallel import default_workers, ordered_map
from solve_in_lean.problems import DatasetError, file_sha256, formalized_item, load_items
from solve_in_lean.prompts import get_prompt
from solve_in_lean.records import read_jsonl
from solve_in_lean.solve import target_of
from solve_in_lean.verify import Policy, VerifyRequest, verify_many

TRAIN_TASKS = ("cot", "formalize", "backtranslate", "lean-solve", "prove", "orm", "prm", "code", "augment")
_PROMPT = {"cot": "cot", "formalize": "formalize", "backtranslate": "backtranslate", "lean-solve": "lean_solve",
           "prove": "prove", "orm": "orm", "prm": "prm", "code": "code", "augment": "lean_solve"}


def chat_example(task: str, fields: dict[str, Any], answer: str, source: dict[str, str]) -> dict[str, Any]:
    """One example in the unified format: the task's system prompt and instruction (no few-shot
    turns), then the answer to learn."""
    messages = get_prompt(_PROMPT[task]).render_zero_shot(**fields)
    return {"task": task, "source": source, "messages": [*messages, {"role": "assistant", "content": answer}]}


def _lean_block(code: str) -> str:
    return f"```lean\n{code.strip()}\n```"


def _with_header(formal: dict[str, Any], header: str) -> FormalProblem:
    problem = FormalProblem.from_dict({"source": "", **formal})
    if not problem.header:
        problem.header = header
    return problem


def item_examples(task: str, items: Iterable[dict[str, Any]], sha: str) -> list[dict[str, Any]]:
    """cot, formalize and backtranslate examples from dataset items that have what the task needs."""
    out = []
    for it in items:
        src = {"data_sha256": sha, "id": it["id"]}
        formal, question = it.get("formal"), it.get("question")
        if task == "cot" and question and it.get("solution"):
            text = gsm8k_cot_text(it["solution"]) if it["dataset"] == "gsm8k" else it["solution"].strip()
            out.append(chat_example("cot", {"problem": question}, text, src))
        elif task == "formalize" and question and formal:
            out.append(chat_example("formalize", {"problem": question, "kind": formal["kind"]},
                                    _lean_block(formal["statement"]), src))
        elif task == "orm" and question and it.get("solution"):
            text = gsm8k_cot_text(it["solution"]) if it["dataset"] == "gsm8k" else it["solution"].strip()
            out.append(chat_example("orm", {"problem": question, "solution": text}, "yes", src))
        elif task == "backtranslate" and question and formal:
            out.append(chat_example("backtranslate", {"lean": formal["statement"].strip(), "result": ""},
                                    question.strip(), src))
    return out


def given_proof_examples(task: str, items: list[dict[str, Any]], sha: str, checker: LeanChecker | None,
                         header: str, policy: Policy) -> list[dict[str, Any]]:
    """lean-solve/prove examples from items carrying a `proof`, kept only if Lean verifies it."""
    kind = "compute" if task == "lean-solve" else "prove"
    todo = [(it, _with_header(it["formal"], header)) for it in items
            if it.get("formal") and it["formal"]["kind"] == kind and isinstance(it["meta"].get("proof"), str)]
    if not todo:
        return []
    if checker is None:
        raise DatasetError(f"verifying the given proofs for {task} training data needs a Lean checker")
    requests = [VerifyRequest(it["meta"]["proof"], p.header or None, target_of(p), p.answer_name) for it, p in todo]
    verdicts = verify_many(requests, checker, policy=policy)
    return [_solution_example(task, it.get("question") or "", p.statement, it["meta"]["proof"],
                              {"data_sha256": sha, "id": it["id"]})
            for (it, p), v in zip(todo, verdicts) if v.verified]


def _solution_example(task: str, question: str, statement: str, code: str, src: dict[str, str]) -> dict[str, Any]:
    if task == "lean-solve":
        return chat_example("lean-solve", {"problem": question, "statement": statement.strip()}, _lean_block(code), src)
    return chat_example("prove", {"statement": statement.strip()}, _lean_block(code), src)


def record_examples(task: str, records: Iterable[dict[str, Any]], sha: str) -> list[dict[str, Any]]:
    """Examples from earlier runs' records: verified solutions (lean-solve, prove), and the best
    statements of formalize runs (formalize, backtranslate)."""
    if task in ("formalize", "backtranslate"):
        return item_examples(task, [formalized_item({**r["formalization"], "id": r["id"]}) for r in records
                                    if "formalization" in r], sha)
    if task in ("orm", "prm"):
        return [ex for r in records if "candidates" in r for ex in reward_examples(task, r, sha)]
    out = []
    for r in records:
        rec = r.get("pipeline", r)  # eval lean-solve records wrap the pipeline record; `solve` writes it bare
        src = {"data_sha256": sha, "id": str(r["id"])}
        if task == "lean-solve" and rec.get("verified") and rec.get("lean_code") and rec.get("formal"):
            if rec["formal"].get("kind") == "compute":
                out.append(_solution_example(task, rec.get("question", ""), rec["formal"]["statement"],
                                             rec["lean_code"], src))
        elif task == "prove" and r.get("task") == "prove" and r.get("proof"):
            out.append(_solution_example(task, "", r["item"]["formal"]["statement"], r["proof"], src))
    return out


def reward_examples(task: str, record: dict[str, Any], sha: str) -> list[dict[str, Any]]:
    """orm/prm examples from one rerank record (verifier/rerank.py): labelled candidates only."""
    src = {"data_sha256": sha, "id": str(record["id"])}
    question, out = record["question"], []
    for c in record["candidates"]:
        if task == "orm" and c.get("orm_label") is not None:
            out.append(chat_example("orm", {"problem": question, "solution": c["solution"].strip()},
                                    "yes" if c["orm_label"] else "no", src))
        for i, s in enumerate(c.get("prm", []) if task == "prm" else []):
            previous = " ".join(x["step"] for x in c["prm"][:i]) or "(none)"
            out.append(chat_example("prm", {"problem": question, "previous": previous, "step": s["step"]},
                                    "yes" if s["label"] else "no", src))
    return out


# --- code: programs whose sandbox output is the reference ------------------------------------
_ANNOTATION = re.compile(r"<<([^<>=\n]+)=[^<>\n]*>>")
_CALCULATOR = re.compile(r"<<[^<>\n]*>>")
_DECIMAL = re.compile(r"(?<![\w.])(\d*\.\d+)")
_DIVISOR = re.compile(r"/\s*(\d+)(?![\w.])")


def _exact(expr: str) -> str:
    """A calculator expression in exact arithmetic (decimals and divisors as Fractions), so
    `25/100*28` prints 7 and not 7.000000000000001."""
    return _DIVISOR.sub(r"/Fraction(\1)", _DECIMAL.sub(r'Fraction("\1")', expr.strip()))


def gsm8k_program(solution: str) -> str | None:
    """A GSM8K solution as a Python program: each line a comment, each calculator note
    `<<48/2=24>>` a step, the last step printed. None without calculator notes. Unchecked: the
    sandbox decides whether it prints the answer."""
    body, sep, _ = solution.rpartition("####")
    lines, steps = [], 0
    for raw in (body if sep else solution).splitlines():
        if text := " ".join(_CALCULATOR.sub("", raw).split()):
            lines.append(f"# {text}")
        for expr in _ANNOTATION.findall(raw):
            steps += 1
            lines.append(f"step{steps} = {_exact(expr)}")
    if not steps:
        return None
    head = ["from fractions import Fraction"] if any("Fraction(" in line for line in lines) else []
    return "\n".join([*head, *lines, f"print(step{steps})"])


CodeCandidate = tuple[dict[str, str], str, str, str]
"""(source, question, reference answer, program)."""


def _item_programs(items: Iterable[dict[str, Any]], sha: str) -> Iterator[CodeCandidate]:
    for it in items:
        if it.get("question") and it.get("answer") and isinstance(it.get("solution"), str):
            if (program := gsm8k_program(it["solution"])) is not None:
                yield {"data_sha256": sha, "id": it["id"]}, it["question"], str(it["answer"]), program


def _record_programs(records: Iterable[dict[str, Any]], sha: str) -> Iterator[CodeCandidate]:
    """Per correct `eval --task code` record, the cells of its first Python-backed sample with the
    reference answer (the cells the sandbox ran successfully, which it replays in order)."""
    for r in records:
        if r.get("task") != "code" or not r.get("scores", {}).get("accuracy"):
            continue
        for sample in r.get("samples", []):
            if sample.get("source") == COMPUTED_BY_PYTHON and equivalent(sample.get("answer"), r["reference"]):
                cells = [t["code"] for t in sample["turns"]
                         if t.get("code") and (t.get("run") or {}).get("status") == "ok"]
                if cells:
                    yield ({"data_sha256": sha, "id": str(r["id"])}, r["item"]["question"], str(r["reference"]),
                           "\n\n".join(cells))
                    break


def code_examples(candidates: Iterable[CodeCandidate], *, limits: SandboxLimits | None = None,
                  workers: int | None = None) -> list[dict[str, Any]]:
    """Two examples per program that the sandbox runs and whose printed answer equals the
    reference: writing the program, and answering from its output (the solver's second turn).
    A program that fails or prints something else is dropped: no unverified target is learned.
    Runs come from the user cache when this exact program ran under these limits before
    (code/runcache.py)."""
    todo, limits = list(candidates), limits or SandboxLimits()
    runs = ordered_map(lambda c: cached_run(c[3], limits), todo, workers or default_workers())
    out = []
    for (src, question, reference, program), result in zip(todo, runs):
        if result.status == "sandbox_error":
            raise UnavailableError(f"{result.message} Verifying code training data needs the sandbox "
                                   "(Linux with Landlock and libseccomp2, docs/code_interpreter.md).")
        if result.ok and equivalent(printed_answer(result.stdout), reference):
            block = f"```python\n{program}\n```"
            write = chat_example("code", {"problem": question}, block, src)
            answer = chat_example("code", {"problem": question}, f"The answer is {reference}.", src)
            answer["messages"][-1:-1] = [{"role": "assistant", "content": block},
                                         {"role": "user", "content": interpreter_turn(result)}]
            out += [write, answer]
    return out


# --- augment: Lean-certified new problems from a training split -------------------------------
def augmented_examples(path: str | Path, checker: LeanChecker, *, header: str, output: Path,
                       exclude: Iterable[dict[str, Any]], held_out: set[tuple[str, str]] = frozenset(),
                       k: int = 2, seed: int = 0, policy: Policy | None = None) -> tuple[list[dict[str, Any]], Any]:
    """`augment` examples and the augmentation summary. `augment --mode numbers` on the problems
    of `path` (a training split; items in `held_out` skipped), its resumable log and new problems
    at `output`; a new problem whose question or statement is in `exclude` (the evaluation items)
    or the source set is dropped. Each example is a lean-solve example of a new problem whose
    program Lean verified, with the augmenter's provenance (source id, changes, Lean evidence)."""
    from solve_in_lean.augment.dedup import Seen
    from solve_in_lean.augment.numbers import augment
    from solve_in_lean.augment.run import run

    path = Path(path)
    sha = file_sha256(path)
    items = [it for it in load_items(path) if (sha, it["id"]) not in held_out]
    seen = Seen()
    seen.add(exclude, "an evaluation split")
    seen.add(items, f"the source set {path}")
    output.parent.mkdir(parents=True, exist_ok=True)
    policy = policy or Policy()
    summary = run(items, output, lambda it: augment(it, checker, k=k, header=header, seed=seed, policy=policy),
                  config={"mode": "numbers", "k": k, "seed": seed, "source": sha}, seen=seen, progress=False)
    examples = []
    for row in read_jsonl(output):
        ex = chat_example("augment", {"problem": row["question"], "statement": row["formal"]["statement"].strip()},
                          _lean_block(row["proof"]), {"data_sha256": sha, "id": row["id"]})
        examples.append({**ex, "provenance": row["provenance"]})
    return examples, summary


def _records_file(path: Path) -> tuple[Path, str] | None:
    """(records file, data hash) when `path` is a run directory or its records.jsonl, or a
    `lean-solve solve` results file; None for a plain data file."""
    from solve_in_lean.eval.run import RECORDS, load_run

    if path.is_dir():
        run = load_run(path)
        return path / RECORDS, run.config["data_sha256"]
    if path.name == RECORDS and (path.parent / "config.json").is_file():
        return path, load_run(path.parent).config["data_sha256"]
    first = next(read_jsonl(path), {})
    if "stages" in first and "lean_code" in first:
        return path, file_sha256(path)
    return None


def examples_from(task: str, path: str | Path, *, checker: LeanChecker | None = None, header: str = "",
                  policy: Policy | None = None) -> list[dict[str, Any]]:
    """Every training example of `task` that the file or run directory at `path` yields."""
    if task not in TRAIN_TASKS:
        raise DatasetError(f"unknown training task {task!r}; choose from {', '.join(TRAIN_TASKS)}")
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or run directory")
    if task == "augment":
        raise DatasetError("augment examples are made by a transfer run, which gives the augmenter its evaluation "
                           "splits to keep out (trainingdata.augmented_examples)")
    found = _records_file(path)
    if found is not None:
        if task == "code":
            return code_examples(_record_programs(read_jsonl(found[0]), found[1]))
        return record_examples(task, read_jsonl(found[0]), found[1])
    items, sha = load_items(path), file_sha256(path)
    if task == "code":
        return code_examples(_item_programs(items, sha))
    if task in ("lean-solve", "prove"):
        return given_proof_examples(task, items, sha, checker, header, policy or Policy())
    return item_examples(task, items, sha)


def allocate(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Split `total` examples over tasks in proportion to `weights` (largest remainders)."""
    live = {t: w for t, w in weights.items() if w > 0}
    norm = sum(live.values())
    exact = {t: total * w / norm for t, w in live.items()}
    counts = {t: int(x) for t, x in exact.items()}
    for t in sorted(live, key=lambda t: (counts[t] - exact[t], t))[: total - sum(counts.values())]:
        counts[t] += 1
    return counts


def mix(pools: dict[str, list[dict[str, Any]]], weights: dict[str, float], total: int,
        seed: int) -> list[dict[str, Any]]:
    """`total` examples drawn from the task pools by weight, shuffled; a pool smaller than its
    share is repeated (whole passes, then a random part), never padded with other tasks."""
    rng = random.Random(seed)
    chosen: list[dict[str, Any]] = []
    for task, count in sorted(allocate(total, weights).items()):
        pool = pools.get(task) or []
        if count and not pool:
            raise DatasetError(f"the mixture gives weight to {task} but no {task} training examples were found")
        full, rest = divmod(count, len(pool)) if pool else (0, 0)
        chosen += pool * full + rng.sample(pool, rest)
    rng.shuffle(chosen)
    return chosen


def write_examples(examples: list[dict[str, Any]], path: str | Path) -> Path:
    """The examples as JSONL (the training set of a mixture, kept next to the model it trained)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples), encoding="utf-8")
    return path
