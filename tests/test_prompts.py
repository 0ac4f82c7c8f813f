"""The prompt registry and the templates themselves (their few-shot examples are data we wrote)."""

from __future__ import annotations

import re
import subprocess
import sys
from fractions import Fraction

import pytest

from autoformalize.prompting import PromptTemplate, load_templates
from solve_in_lean import prompts as registry
from solve_in_lean.prompts import get_prompt, list_tasks

TASKS = ["backtranslate", "cot", "formalize", "judge", "lean_solve", "prove"]
LEAN_BLOCK = re.compile(r"\A```lean\n(.*)\n```\Z", re.S)


def test_registry_holds_every_task_from_both_folders():
    assert set(TASKS) <= set(list_tasks())
    with pytest.raises(KeyError, match="no prompt for task 'poetry'; known tasks: backtranslate"):
        get_prompt("poetry")


@pytest.mark.parametrize("task", TASKS)
def test_template_renders_chat_and_text(task):
    t = get_prompt(task)
    assert t.name == task and t.system and t.examples and t.fields
    values = {f: f"<{f} value>" for f in t.fields}
    messages = t.render(**values)
    assert messages[0] == {"role": "system", "content": t.system}
    assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * len(t.examples) + ["user"]
    assert all(v in messages[-1]["content"] for v in values.values())
    text = t.render_text(**values)
    assert text.startswith(t.system) and text.endswith(t.instruction_for(**values) + "\n")
    assert all(out in text for _, out in t.examples)
    for stop in t.stop:  # a base model must not be cut off inside a pattern it is shown
        assert stop.strip() and not any(stop in out for _, out in t.examples)


def test_missing_field_names_the_fields():
    with pytest.raises(KeyError, match=r"needs fields \['statement'\]; it takes \['problem', 'statement'\]"):
        get_prompt("lean_solve").render(problem="p")


def test_literal_braces_and_bad_fields():
    t = PromptTemplate(name="t", instruction="Prove {{x | x > {n}}} is infinite.")
    assert t.fields == ("n",) and t.render_text(n=3) == "Prove {x | x > 3} is infinite.\n"
    with pytest.raises(ValueError, match="not a plain name"):
        PromptTemplate(name="t", instruction="{a.b}")
    with pytest.raises(KeyError, match="example 1"):
        PromptTemplate(name="t", instruction="{q}", examples=(({"x": 1}, "out"),))


def test_toml_errors_name_the_file(tmp_path):
    (tmp_path / "typo.toml").write_text('instruction = "{q}"\nstops = ["x"]\n')
    with pytest.raises(ValueError, match=r"typo.toml: .*unknown keys \['stops'\]"):
        load_templates(tmp_path)
    (tmp_path / "typo.toml").write_text('instruction = "{q}"\n[[examples]]\noutput = "o"\n')
    with pytest.raises(ValueError, match="needs an \\[examples.input\\] table"):
        load_templates(tmp_path)


def test_a_task_defined_in_two_folders_is_an_error(tmp_path, monkeypatch):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "cot.toml").write_text('name = "cot"\ninstruction = "{q}"\n')
    monkeypatch.setattr(registry, "FOLDERS", (tmp_path / "a", tmp_path / "b"))
    registry._registry.cache_clear()
    try:
        with pytest.raises(ValueError, match="'cot' is defined in more than one"):
            list_tasks()
    finally:
        monkeypatch.undo()
        registry._registry.cache_clear()


def test_autoformalize_imports_nothing_from_solve_in_lean():
    code = ("import sys, autoformalize.prompting as p; p.load_templates(p.PROMPTS_DIR);"
            "assert not [m for m in sys.modules if m.startswith('solve_in_lean')]")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the solving tasks' few-shot examples say what they should ------------------------------
# (autoformalize/prompts/ belongs to autoformalization, which tests its own examples)

def test_cot_examples_end_with_the_right_answer():
    for inputs, output in get_prompt("cot").examples:
        steps = re.findall(r"(\d+(?:\.\d+)?) ([*+-]) (\d+(?:\.\d+)?) = \$?(\d+(?:\.\d+)?)", output)
        assert steps, output
        for a, op, b, result in steps:  # every written calculation is right
            a, b, result = Fraction(a), Fraction(b), Fraction(result)
            assert {"*": a * b, "+": a + b, "-": a - b}[op] == result, (a, op, b, result)
        final = re.fullmatch(r".*The answer is (\d+)\.", output, re.S)
        assert final and final.group(1) == str(int(steps[-1][3])), output


def test_lean_solve_examples_fill_both_sorries_of_their_statement():
    for inputs, output in get_prompt("lean_solve").examples:
        code = LEAN_BLOCK.match(output).group(1)
        statement = inputs["statement"]
        assert statement.count("sorry") == 2 and "sorry" not in code
        name = re.match(r"abbrev (\w+)_answer", statement).group(1)
        assert re.match(rf"abbrev {name}_answer : \S+ := \S", code)
        theorem = statement[statement.index("theorem"):statement.index(":= by sorry")]
        assert theorem in code and f"[{name}_answer]" in code


def test_prove_examples_restate_the_theorem_and_prove_it():
    for inputs, output in get_prompt("prove").examples:
        code = LEAN_BLOCK.match(output).group(1)
        assert inputs["statement"].endswith(":= by") and code.startswith(inputs["statement"] + "\n  ")
        assert "sorry" not in code
