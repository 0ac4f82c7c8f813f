"""The shipped autoformalization prompts: coverage of the issue's cases, and (with Mathlib) that
every Lean statement in them elaborates."""

from __future__ import annotations

import pytest

from autoformalize.extract import extract
from autoformalize.faithfulness import cheap_checks
from autoformalize.formalize import DEFAULT_HEADER
from autoformalize.templates import TASKS, default_prompts
from lean_prelude import needs_mathlib


def formalize_examples():
    return [(inputs, output) for inputs, output in default_prompts()["formalize"].examples]


def test_every_task_has_a_template_with_examples():
    prompts = default_prompts()
    assert set(TASKS) <= set(prompts)
    for task in TASKS:
        assert len(prompts[task].examples) >= 2, task


def test_formalize_examples_cover_answer_types_and_kinds_and_read_back_cleanly():
    types, kinds = set(), set()
    for i, (inputs, output) in enumerate(formalize_examples()):
        got = extract(output, problem_id=f"ex{i}", source=inputs["problem"], kind=inputs["kind"])
        assert got.ok and got.notes == (), (i, got.error, got.notes)
        kinds.add(got.problem.kind)
        types.add(got.problem.answer_type)
        checks = cheap_checks(got.problem)
        assert checks.passed, (i, checks)  # our own examples must pass our own cheap checks
    assert {"ℕ", "ℤ", "ℚ", "ℝ"} <= types and kinds == {"compute", "prove"}
    problems = " ".join(inputs["problem"] for inputs, _ in formalize_examples())
    for case in ("$", "%", "minutes", "Prove", "Show"):
        assert case in problems, case


def lean_statements() -> list[str]:
    """Every Lean statement the shipped prompts show the model, as extracted candidates would be."""
    prompts = default_prompts()
    texts = [out for _, out in prompts["formalize"].examples + prompts["formalize_repair"].examples]
    texts += [inputs["lean"] for inputs, _ in prompts["backtranslate"].examples + prompts["judge"].examples]
    return texts


@needs_mathlib
@pytest.mark.mathlib
def test_every_statement_in_the_prompts_elaborates_with_mathlib():
    from solve_in_lean.lean import CheckRequest, get_checker

    problems = [extract(t, problem_id=f"ex{i}", source="").problem for i, t in enumerate(lean_statements())]
    with get_checker("repl", mathlib=True, timeout_s=300) as checker:
        results = checker.check_many([CheckRequest(p.elaboration_check(), DEFAULT_HEADER) for p in problems])
    failed = [(p.statement, [m.text for m in r.errors]) for p, r in zip(problems, results) if not r.ok]
    assert failed == []
