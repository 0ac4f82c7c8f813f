"""Seeded word problems over small quantities, in English and in the prelude dialect of Lean.

Every problem comes with everything each task trains or evaluates on: the English question, a
chain-of-thought solution ending "The answer is N.", the answer, a Lean statement in the
PutnamBench shape (answer abstracted) against `examples/prelude.lean`, a Lean solution (the
answer as a Lean computation plus a proof the kernel accepts) and a back-translation reference.
A `prove` twin states the arithmetic as a theorem with the value written out as a numeral.

Numbers are the prelude's `N`: `N.zero`..`N.four`, and above four `N.add N.four (…)`. The
proof of a solution is the hypothesis itself, which the kernel accepts only if the answer
reduces to the same value as the story's computation; the prove twin's `Eq.refl` only if the
numeral is that value. The kernel cannot `#eval`, so the verified answer Lean reports is the
answer's body as it prints it back (`printed`), and that is the lean-solve reference.

Splits are disjoint twice over: each template's phrasings (frames) are dealt to train, valid
and test, and so are the numbers of each template (by a hash of the operands). A test problem
therefore has both a wording and numbers that no training problem has. The generator draws as
many problems as asked for (names and objects vary; the arithmetic repeats).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union

SPLITS = ("train", "valid", "test")

NAMES = ("Tom", "Ann", "Sam", "Mia", "Ben", "Eva", "Leo", "Zoe", "Max", "Ivy", "Dan", "Amy", "Raj", "Kim",
         "Noah", "Lily", "Omar", "Nina", "Paul", "Rosa")
OBJECTS = ("apples", "pears", "pens", "books", "cards", "shells", "stones", "coins", "marbles", "stamps",
           "cookies", "flowers", "toys", "plums", "beads", "cups", "eggs", "kites")


Term = Union[int, tuple]
"""A prelude term: an int 0..4 is `N.zero`..`N.four`; ("add" | "mul", left, right) is `N.add left right`."""
SMALL = ("N.zero", "N.one", "N.two", "N.three", "N.four")


def num(n: int) -> Term:
    """The canonical numeral of n >= 0 as a term: 0..4 themselves, above four `N.add N.four (…)`."""
    if n < 0:
        raise ValueError(f"no natural-number numeral for {n}")
    return n if n <= 4 else ("add", 4, num(n - 4))


def source(term: Term) -> str:
    """A term as written: `N.add (N.mul N.three N.four) N.two`."""
    if isinstance(term, int):
        return SMALL[term]
    op, left, right = term
    return f"N.{op} {_paren(source, left)} {_paren(source, right)}"


def printed(term: Term) -> str:
    """A term as Lean prints it back (`#print`, field notation): `(N.three.mul N.four).add N.two`."""
    if isinstance(term, int):
        return SMALL[term]
    op, left, right = term
    return f"{_paren(printed, left)}.{op} {_paren(printed, right)}"


def _paren(show: Callable[[Term], str], term: Term) -> str:
    return show(term) if isinstance(term, int) else f"({show(term)})"


def numeral(n: int) -> str:
    """The canonical prelude numeral of n >= 0: `N.zero`..`N.four`, then `N.add N.four (…)`."""
    return source(num(n))


def value_of(term: Term) -> int:
    if isinstance(term, int):
        return term
    op, left, right = term
    return value_of(left) + value_of(right) if op == "add" else value_of(left) * value_of(right)


@dataclass(frozen=True)
class Template:
    """One kind of problem: its operands' ranges, frames (phrasings) and how it computes."""

    name: str
    ranges: tuple[tuple[int, int], ...]
    frames: tuple[str, ...]
    """English with {name}, {other}, {obj} and {a}, {b}, {c}; dealt to splits by index."""
    lean: Callable[..., Term]
    """The computation as a prelude term over numerals."""
    steps: Callable[..., list[str]]
    """The arithmetic, one step per entry ("3 + 4 = 7")."""
    cot: str
    """The worked solution's first sentence, then the steps; `{steps}` is filled in."""
    words: Callable[..., str]
    """The computation in words, for `prove` twins and back-translations."""


TEMPLATES: dict[str, Template] = {t.name: t for t in (
    Template("add", ((1, 9), (1, 9)), (
        "{name} has {a} {obj} and buys {b} more. How many {obj} does {name} have now?",
        "{name} picks {a} {obj} in the morning and {b} {obj} in the afternoon. How many {obj} does {name} pick in all?",
        "There are {a} {obj} on the table. {name} puts {b} more {obj} on the table. How many {obj} are on the table?",
        "A box holds {a} {obj}. {name} adds {b} {obj} to the box. How many {obj} are in the box now?",
        "{name} found {a} {obj} on Monday and {b} {obj} on Tuesday. How many {obj} did {name} find?",
    ), lambda a, b: ("add", num(a), num(b)), lambda a, b: [f"{a} + {b} = {a + b}"],
        "Together that is {steps}.", lambda a, b: f"{a} plus {b}"),
    Template("multiply", ((2, 5), (2, 4)), (
        "{name} has {a} bags with {b} {obj} in each bag. How many {obj} does {name} have?",
        "There are {a} rows of {obj} with {b} {obj} in each row. How many {obj} are there?",
        "{name} buys {a} packs of {obj}. Each pack has {b} {obj}. How many {obj} does {name} buy?",
        "{a} children each bring {b} {obj}. How many {obj} do they bring in all?",
        "{name} fills {a} boxes with {b} {obj} each. How many {obj} are in the boxes?",
    ), lambda a, b: ("mul", num(a), num(b)), lambda a, b: [f"{a} * {b} = {a * b}"],
        "There are {a} groups of {b}, so {steps}.", lambda a, b: f"{a} times {b}"),
    Template("compare", ((1, 9), (1, 6)), (
        "{name} has {a} {obj}. {other} has {b} more {obj} than {name}. How many {obj} does {other} have?",
        "{name} made {a} {obj}. {other} made {b} {obj} more than {name}. How many {obj} did {other} make?",
        "A red box has {a} {obj}. A blue box has {b} more {obj} than the red box. How many {obj} are in the blue box?",
        "{name} is given {a} {obj}. {other} is given {b} more than {name}. How many {obj} is {other} given?",
        "Last week {name} sold {a} {obj}. This week {name} sold {b} more than last week. How many {obj} did {name} sell this week?",
    ), lambda a, b: ("add", num(a), num(b)), lambda a, b: [f"{a} + {b} = {a + b}"],
        "{b} more than {a} is {steps}.", lambda a, b: f"{a} plus {b}"),
    Template("add-three", ((1, 9), (1, 9), (1, 9)), (
        "{name} has {a} {obj}, gets {b} more on Monday and {c} more on Tuesday. How many {obj} does {name} have?",
        "There are {a} red {obj}, {b} blue {obj} and {c} green {obj}. How many {obj} are there?",
        "{name} picks {a} {obj}, {other} picks {b} {obj} and their friend picks {c} {obj}. How many {obj} do they pick?",
        "A shelf holds {a} {obj}. {name} adds {b} {obj} and {other} adds {c} {obj}. How many {obj} are on the shelf?",
        "{name} saw {a} {obj} in the morning, {b} at noon and {c} in the evening. How many {obj} did {name} see?",
    ), lambda a, b, c: ("add", ("add", num(a), num(b)), num(c)),
        lambda a, b, c: [f"{a} + {b} = {a + b}", f"{a + b} + {c} = {a + b + c}"],
        "First {a} and {b}, then {c} more: {steps}.", lambda a, b, c: f"{a} plus {b} plus {c}"),
    Template("two-step", ((2, 4), (2, 5), (1, 9)), (
        "{name} has {a} bags with {b} {obj} in each bag and {c} more {obj} in a pocket. How many {obj} does {name} have?",
        "There are {a} plates with {b} {obj} on each plate, and {c} {obj} on the table. How many {obj} are there in all?",
        "{name} buys {a} packs of {b} {obj} and then finds {c} {obj}. How many {obj} does {name} have?",
        "{a} children each bring {b} {obj}, and the teacher brings {c} {obj}. How many {obj} are there?",
        "{name} fills {a} boxes with {b} {obj} each and keeps {c} {obj} aside. How many {obj} are there?",
    ), lambda a, b, c: ("add", ("mul", num(a), num(b)), num(c)),
        lambda a, b, c: [f"{a} * {b} = {a * b}", f"{a * b} + {c} = {a * b + c}"],
        "First {a} groups of {b}, then {c} more: {steps}.", lambda a, b, c: f"{a} times {b}, plus {c}"),
)}

FRAME_SPLITS = ("train", "train", "train", "valid", "test")
"""Which split each frame index of a template belongs to."""
NUMBER_SHARES = {"valid": 0.1, "test": 0.2}
"""The share of each template's operand tuples held out for valid and test (at least one each)."""


def _rank(template: str, numbers: tuple[int, ...]) -> bytes:
    """A stable pseudo-random order of operand tuples: the same on every machine and run."""
    return hashlib.sha256(f"{template}:{','.join(map(str, numbers))}".encode()).digest()


def split_numbers(template: Template, split: str) -> list[tuple[int, ...]]:
    """The template's operand tuples in `split`: all tuples in a hashed order, the first ones to
    test, the next to valid, the rest to train."""
    tuples: list[tuple[int, ...]] = [()]
    for lo, hi in template.ranges:
        tuples = [t + (n,) for t in tuples for n in range(lo, hi + 1)]
    tuples.sort(key=lambda t: _rank(template.name, t))
    n_test = max(1, round(NUMBER_SHARES["test"] * len(tuples)))
    n_valid = max(1, round(NUMBER_SHARES["valid"] * len(tuples)))
    parts = {"test": tuples[:n_test], "valid": tuples[n_test:n_test + n_valid], "train": tuples[n_test + n_valid:]}
    return sorted(parts[split])


def split_frames(template: Template, split: str) -> list[int]:
    return [i for i in range(len(template.frames)) if FRAME_SPLITS[i % len(FRAME_SPLITS)] == split]


@dataclass
class WorldProblem:
    """One problem with everything each task needs; `to_row` writes it in the eval JSONL format."""

    id: str
    split: str
    template: str
    frame: int
    numbers: tuple[int, ...]
    question: str
    solution: str
    """Chain of thought ending "The answer is N."."""
    value: int
    term: Term
    """The story's computation in Lean; the solution's answer is this computation, which the kernel
    reduces (Lean cannot `#eval` here, so it prints the answer's body: `printed(term)`)."""
    statement: str
    """abbrev ID_answer : N := sorry / theorem ID (...) : ... := by sorry"""
    proof: str
    """A Lean solution the kernel accepts: the answer as a computation and the theorem's proof."""
    backtranslation: str
    """What the statement says, in English (the reference for reading Lean back)."""
    prove_question: str = ""
    prove_statement: str = ""
    prove_proof: str = ""

    @property
    def lean_answer(self) -> str:
        """The answer as Lean prints the solution's answer definition (the reference of lean-solve)."""
        return printed(self.term)

    def to_row(self, task: str = "lean") -> dict[str, Any]:
        """A row of our JSONL format. `lean`: the compute problem with the Lean computation as the answer
        (lean-solve, formalize, backtranslate); `cot`: the same with the decimal answer; `prove`:
        the arithmetic as a theorem to prove."""
        common = {"split": self.split, "template": self.template, "frame": self.frame,
                  "numbers": list(self.numbers)}
        if task == "prove":
            return {"id": f"{self.id}_prove", "question": self.prove_question,
                    "formal": {"kind": "prove", "statement": self.prove_statement},
                    "proof": self.prove_proof, **common}
        if task not in ("lean", "cot"):
            raise ValueError(f"unknown row kind {task!r}; choose lean, cot or prove")
        return {"id": self.id, "question": self.question,
                "answer": self.lean_answer if task == "lean" else str(self.value),
                "solution": self.solution, "formal": {"kind": "compute", "statement": self.statement},
                "proof": self.proof, "backtranslation": self.backtranslation, **common}


def make_problem(template: str, frame: int, numbers: tuple[int, ...], *, id: str, name: str, other: str,
                 obj: str) -> WorldProblem:
    """One problem from its template, frame, operands and story names."""
    t = TEMPLATES[template]
    keys = dict(zip("abc", numbers))
    question = t.frames[frame].format(name=name, other=other, obj=obj, **keys)
    tree = t.lean(*numbers)
    value, term = value_of(tree), source(tree)
    steps = t.steps(*numbers)
    solution = f"{t.cot.format(steps=', then '.join(steps), **keys)} The answer is {value}."
    # Lean names come from the story, not the problem id: a solver copies a word it has read
    theorem, fact = f"{obj}_count", f"{template.replace('-', '_')}_fact"
    binder = f"({obj} : N) (h₀ : Eq {obj} ({term}))"
    statement = (f"abbrev {theorem}_answer : N := sorry\n"
                 f"theorem {theorem} {binder} : Eq {obj} {theorem}_answer := by sorry\n")
    proof = (f"noncomputable abbrev {theorem}_answer : N := {term}\n"
             f"theorem {theorem} {binder} : Eq {obj} {theorem}_answer :=\n  h₀\n")
    words = t.words(*numbers)
    back = f"The number of {obj} is {words}. How many {obj} are there?"
    prove_statement = f"theorem {fact} : Eq ({term}) ({numeral(value)}) := by sorry\n"
    prove_proof = f"theorem {fact} : Eq ({term}) ({numeral(value)}) :=\n  Eq.refl ({numeral(value)})\n"
    return WorldProblem(id, "", template, frame, tuple(numbers), question, solution, value, tree, statement, proof,
                        back, f"Show that {words} equals {value}.", prove_statement, prove_proof)


def generate(split: str, n: int, *, seed: int = 0, templates: tuple[str, ...] | None = None) -> list[WorldProblem]:
    """`n` problems of `split`, templates in turn, frames, operands and names drawn under `seed`.
    The same arguments always give the same problems; any `n` can be asked for."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    chosen = [TEMPLATES[t] for t in (templates or tuple(TEMPLATES))]
    rng = random.Random(f"{seed}:{split}")
    pools = {t.name: (split_frames(t, split), split_numbers(t, split)) for t in chosen}
    out = []
    for i in range(n):
        t = chosen[i % len(chosen)]
        frames, numbers = pools[t.name]
        name, other = rng.sample(NAMES, 2)
        p = make_problem(t.name, rng.choice(frames), rng.choice(numbers), id=f"{split}-{t.name}-{i}", name=name,
                         other=other, obj=rng.choice(OBJECTS))
        p.split = split
        out.append(p)
    return out


def write_jsonl(rows: list[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def export(out: str | Path, sizes: dict[str, int] | None = None, *, seed: int = 0,
           sample: int = 300) -> dict[str, Path]:
    """Write every split in the formats `eval` reads: SPLIT.jsonl (compute problems, Lean numeral
    answers: lean-solve, formalize, backtranslate, and all training tasks), SPLIT_cot.jsonl (decimal
    answers: cot) and SPLIT_prove.jsonl (theorems: prove); also train_sample[_prove].jsonl, the
    first `sample` training problems (pools the transfer harness verifies with Lean in seconds).
    Returns the paths by file stem."""
    sizes = sizes or {"train": 2000, "valid": 100, "test": 100}
    out = Path(out)
    paths: dict[str, Path] = {}
    for split, n in sizes.items():
        problems = generate(split, n, seed=seed)
        if split == "train" and sample:
            paths["train_sample"] = write_jsonl([p.to_row("lean") for p in problems[:sample]],
                                                out / "train_sample.jsonl")
            paths["train_sample_prove"] = write_jsonl([p.to_row("prove") for p in problems[:sample]],
                                                      out / "train_sample_prove.jsonl")
        paths[split] = write_jsonl([p.to_row("lean") for p in problems], out / f"{split}.jsonl")
        paths[f"{split}_cot"] = write_jsonl([p.to_row("cot") for p in problems], out / f"{split}_cot.jsonl")
        paths[f"{split}_prove"] = write_jsonl([p.to_row("prove") for p in problems], out / f"{split}_prove.jsonl")
    return paths


def describe() -> dict[str, Any]:
    """The world's shape, for docs and bench output: templates, frames and operands per split."""
    return {t.name: {s: {"frames": len(split_frames(t, s)), "operand_tuples": len(split_numbers(t, s))}
                     for s in SPLITS} for t in TEMPLATES.values()}
