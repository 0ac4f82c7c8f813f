"""The prompt registry, the unified format every task renders through, and the templates
themselves (their few-shot examples are data we wrote)."""

from __future__ import annotations

import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from autoformalize.prompting import FORMAT_FILE, PromptTemplate, load_templates, tomllib, unified_format
from solve_in_lean import prompts as registry
from solve_in_lean.prompts import get_prompt, list_tasks

ROOT = Path(__file__).resolve().parents[1]
TASKS = ["backtranslate", "code", "cot", "formalize", "formalize_repair", "harder_problem", "judge", "lean_goal",
         "lean_repair", "lean_solve", "lean_to_problem", "orm", "prm", "prove", "rephrase_problem", "tactic"]
LEAN_BLOCK = re.compile(r"\A```lean\n(.*)\n```\Z", re.S)
PYTHON_BLOCK = re.compile(r"```python\n.*?\n```", re.S)


def test_registry_holds_every_task_from_both_folders():
    assert list_tasks() == TASKS
    with pytest.raises(KeyError, match="no prompt for task 'poetry'; known tasks: backtranslate"):
        get_prompt("poetry")


def task_file(task: str) -> Path:
    found = [folder / f"{task}.toml" for folder in registry.FOLDERS if (folder / f"{task}.toml").is_file()]
    assert len(found) == 1, task
    return found[0]


@pytest.mark.parametrize("task", TASKS)
def test_every_task_renders_through_the_unified_format(task):
    """The system prompt is the format's one system prompt, filled with the task file's role,
    tag, guidance and the shared convention of its answer kind, and nothing of the task's own."""
    t, fmt = get_prompt(task), unified_format()
    data = tomllib.loads(task_file(task).read_text(encoding="utf-8"))
    assert "system" not in data and t.role in fmt.roles and t.answer in fmt.conventions
    assert t.system == fmt.system_for(task, data["role"], data["answer"], data["guidance"])
    head, _, _ = fmt.system.partition("{task}")
    assert t.system.startswith(head.format(role=t.role)) and f"Task [{task}]: " in t.system
    assert t.system.endswith(fmt.conventions[t.answer])


@pytest.mark.parametrize("task", TASKS)
def test_few_shot_answers_follow_their_convention(task):
    """The examples a model is shown obey the convention its system prompt states."""
    t = get_prompt(task)
    for _, out in t.examples:
        if t.answer == "lean":
            assert LEAN_BLOCK.match(out), out
        elif t.answer == "python":
            assert len(PYTHON_BLOCK.findall(out)) == 1 and out.rstrip().endswith("```"), out
        elif t.answer == "informal":
            assert re.search(r"The answer is [^\n]+\.\Z", out), out
        elif t.answer == "yes_no":
            assert out in ("yes", "no")
        elif t.answer == "verdict":
            assert re.search(r"\nVerdict: (YES|NO)\Z", out), out
        elif t.answer == "tactic":
            assert "\n" not in out and "sorry" not in out
        else:
            assert t.answer == "text" and "```" not in out, out


@pytest.mark.parametrize("task", TASKS)
def test_template_renders_chat_and_text(task):
    t = get_prompt(task)
    assert t.name == task and t.system and t.examples and t.fields
    values = {f: f"<{f} value>" for f in t.fields}
    messages = t.render(**values)
    assert messages[0] == {"role": "system", "content": t.system}
    assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * len(t.examples) + ["user"]
    assert all(v in messages[-1]["content"] for v in values.values())
    assert t.render_zero_shot(**values) == [messages[0], messages[-1]]
    text = t.render_text(**values)
    assert text.startswith(t.system) and text.endswith(t.instruction_for(**values) + "\n")
    assert all(out in text for _, out in t.examples)
    for stop in t.stop:  # a base model must not be cut off inside a pattern it is shown
        assert stop and not any(stop in out for _, out in t.examples)


def test_the_interpreter_turn_is_part_of_the_format():
    fmt = unified_format()
    ok = fmt.interpreter_turn("36")
    assert ok.startswith("```output\n36\n```\n") and ok.endswith(fmt.interpreter["ok"])
    failed = fmt.interpreter_turn("", error="The program ran out of time.")
    assert "(nothing was printed)" in failed and failed.endswith("The program ran out of time. Fix the code in a "
                                                                 "new ```python block.")
    for stop in get_prompt("code").stop:  # the model stops where the interpreter's turn starts
        assert ok.startswith(stop.strip()) or stop.startswith("\n\n")


def test_a_task_file_may_not_bring_its_own_system_prompt_or_an_unknown_role(tmp_path):
    (tmp_path / "t.toml").write_text('system = "Be brief."\nrole = "solver"\nanswer = "text"\n'
                                     'guidance = "g"\ninstruction = "{q}"\n')
    with pytest.raises(ValueError, match=r"t.toml: prompt 't': unknown keys \['system'\]"):
        load_templates(tmp_path)
    (tmp_path / "t.toml").write_text('role = "poet"\nanswer = "text"\nguidance = "g"\ninstruction = "{q}"\n')
    with pytest.raises(ValueError, match="role 'poet' is not one of"):
        load_templates(tmp_path)
    (tmp_path / "t.toml").write_text('role = "solver"\nanswer = "haiku"\nguidance = "g"\ninstruction = "{q}"\n')
    with pytest.raises(ValueError, match="answer 'haiku' is not one of"):
        load_templates(tmp_path)


# Where a prompt may come from: the registry's task files (through the format), the format
# itself, and a model preset's published protocol. Nothing else renders a prompt.
PROMPT_BUILDERS = re.compile(r"PromptTemplate\(|PromptTemplate\.from_dict|load_templates\(|"
                             r"\{\s*[\"']role[\"']:\s*[\"']system[\"']\s*,|```output")
ALLOWED = {"autoformalize/prompting.py", "autoformalize/templates.py", "solve_in_lean/prompts.py",
           "solve_in_lean/presets/__init__.py"}


def test_no_module_renders_prompts_another_way():
    """Grep: only the allowed modules build templates, write a system turn by hand or spell out
    the interpreter's ```output turn, and
    the only prompt folders are the registry's (the code solver's own folder is gone)."""
    offenders = []
    for package in ("autoformalize", "solve_in_lean"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel not in ALLOWED and PROMPT_BUILDERS.search(path.read_text(encoding="utf-8")):
                offenders.append(rel)
    assert offenders == []
    folders = sorted(p.parent.relative_to(ROOT).as_posix() for package in ("autoformalize", "solve_in_lean")
                     for p in (ROOT / package).rglob("*.toml") if "presets" not in p.parts)
    assert set(folders) == {f.relative_to(ROOT).as_posix() for f in registry.FOLDERS}
    assert FORMAT_FILE.parent in registry.FOLDERS


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
    (tmp_path / "typo.toml").write_text('role = "solver"\nanswer = "text"\nguidance = "g"\ninstruction = "{q}"\n'
                                        '[[examples]]\noutput = "o"\n')
    with pytest.raises(ValueError, match="needs an \\[examples.input\\] table"):
        load_templates(tmp_path)


def test_a_task_defined_in_two_folders_is_an_error(tmp_path, monkeypatch):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "cot.toml").write_text('name = "cot"\nrole = "solver"\nanswer = "informal"\n'
                                                    'guidance = "g"\ninstruction = "{q}"\n')
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


def test_the_documented_example_of_every_task_is_what_the_registry_renders():
    """docs/evaluation.md shows one example per task; it must not drift from the templates."""
    doc = (ROOT / "docs" / "evaluation.md").read_text(encoding="utf-8")
    section = doc[doc.index("## One unified task format"):doc.index("## Transfer experiments")]
    for task in TASKS:
        t = get_prompt(task)
        inputs, output = t.examples[0]
        assert f"**`{task}`** ({t.role}, `{t.answer}`)" in section, task
        assert f"````text\n[user]\n{t.instruction_for(**inputs)}\n[assistant]\n{output}\n````" in section, task
    head = unified_format().system.replace("\n", " ")
    assert " ".join(section.split("```text\n", 1)[1].split("```", 1)[0].split()) == " ".join(head.split())
