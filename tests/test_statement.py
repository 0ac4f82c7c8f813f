"""Taking theorem statements apart (autoformalize.statement) and the FormalProblem record."""

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoformalize.problem import FormalProblem, minif2f_problem
from autoformalize.statement import StatementError, normalize_statement, parse_theorem

MINIF2F = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "minif2f" / "minif2f_lean4.jsonl"


def test_every_minif2f_statement_parses():
    rows = [json.loads(line) for line in MINIF2F.read_text().splitlines()]
    assert len(rows) == 488
    for row in rows:
        p = minif2f_problem(row)
        prop = p.proposition()
        assert p.theorem_name == row["name"]
        assert ":= by" not in prop and prop.strip()


def test_parts_of_a_theorem():
    parts = parse_theorem("theorem foo (x : ℕ) {y : ℤ} [inst : Fact (1 < 2)]\n  (h : x = (2 : ℕ)) : x + 1 = 3 := by\n  simp")
    assert parts.name == "foo"
    assert parts.binders == "(x : ℕ) {y : ℤ} [inst : Fact (1 < 2)] (h : x = (2 : ℕ))"
    assert parts.conclusion == "x + 1 = 3"
    assert parts.proposition() == "∀ (x : ℕ) {y : ℤ} [inst : Fact (1 < 2)] (h : x = (2 : ℕ)), x + 1 = 3"


def test_named_theorem_among_several_and_comments():
    text = ("theorem aux : True := trivial\n-- theorem fake : False := x\n"
            "theorem main (a : ℕ) : a = a := rfl\n")
    assert parse_theorem(text, "main").conclusion == "a = a"
    assert parse_theorem(text).name == "main"
    with pytest.raises(StatementError):
        parse_theorem(text, "missing")
    with pytest.raises(StatementError):
        parse_theorem("def x := 1")


def test_compute_problem_answer_slot():
    p = FormalProblem("c", "Natalia sold clips...", "compute",
                      "abbrev clips_answer : ℕ := sorry\n"
                      "theorem clips (april may : ℕ) (h₀ : april = 48) (h₁ : may = april / 2) :\n"
                      "    april + may = clips_answer := by sorry\n")
    assert (p.theorem_name, p.answer_name, p.answer_type) == ("clips", "clips_answer", "ℕ")
    assert p.answer_params() == ("(clips_answer : ℕ)", "clips_answer")
    assert p.elaboration_check().startswith("def _lean_solve_statement (clips_answer : ℕ) : Prop :=")
    assert FormalProblem.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_normalization_ignores_whitespace_and_bound_names():
    a = normalize_statement("∀ (x y : ℕ) (h : x = y),  y = x")
    b = normalize_statement("∀ (m n : ℕ)\n (hmn : m = n), n = m")
    assert a == b
    assert normalize_statement("∀ (x : ℕ), x = 1") != normalize_statement("∀ (x : ℕ), x = 2")
    assert normalize_statement("∀ (x : ℕ), x + y = 1") != normalize_statement("∀ (x : ℕ), x + z = 1")


idents = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(lambda s: s not in {"fun", "by"})


@given(st.lists(idents, min_size=1, max_size=4, unique=True), st.lists(idents, min_size=1, max_size=4, unique=True))
def test_renaming_binders_gives_same_key(xs, ys):
    n = min(len(xs), len(ys))
    xs, ys = xs[:n], ys[:n]
    def stmt(names):
        return f"∀ ({' '.join(names)} : ℕ), {' + '.join(names)} = {' + '.join(reversed(names))}"
    assert normalize_statement(stmt(xs)) == normalize_statement(stmt(ys))


@given(idents, st.lists(st.tuples(idents, st.sampled_from(["ℕ", "ℤ", "ℝ", "Finset ℕ"])), max_size=4),
       st.sampled_from(["x = 1", "a + b ≤ (c : ℝ)", "(f 2) = 3 ∧ True"]),
       st.sampled_from([" := by", " := by sorry", " :=\n  rfl", ""]), st.sampled_from(["\n", " ", "\n    "]))
def test_parse_generated_theorems(name, binders, concl, proof, sep):
    bind = " ".join(f"({b} : {t})" for b, t in binders)
    text = f"theorem {name} {bind}{sep}: {concl}{proof}\n"
    parts = parse_theorem(text)
    assert parts.name == name
    assert parts.binders == bind
    assert parts.conclusion == " ".join(concl.split())
