"""The whole pipeline (formalize -> solve -> explain) with a scripted generator and the real kernel."""

import pytest

from lean_prelude import MINI_PRELUDE
from scripting import by_task
from scripting import task_of
from solve_in_lean.errors import InputError
from solve_in_lean.models.base import SamplingParams
from solve_in_lean.models.scripted import ScriptedGenerator
from solve_in_lean.options import SAMPLED_TEMPERATURE, SamplingRule, SolveOptions
from solve_in_lean.pipeline import PipelineConfig, run_problem
from solve_in_lean.prompts import get_prompt

QUESTION = "Sam has two apples and gets two more. How many apples does Sam have?"
STATEMENT = ("```lean\nabbrev apples_answer : N := sorry\n"
             "theorem apples (x : N) (h : Eq x (N.add N.two N.two)) : Eq x apples_answer := by sorry\n```")
SOLUTION = ("```lean\nnoncomputable abbrev apples_answer : N := N.four\n"
            "theorem apples (x : N) (h : Eq x (N.add N.two N.two)) : Eq x apples_answer := h\n```")
PARAMS = SamplingParams(temperature=0.5, max_new_tokens=64)


def fill_statement(prompt, index):
    """Answer a lean_solve prompt as a model would: the given statement with its holes filled."""
    stmt = prompt[-1]["content"].split("```lean\n")[1].split("```")[0]
    name = stmt.split("abbrev ")[1].split(" ")[0]
    return ("```lean\n" + stmt.replace(f"abbrev {name} : N := sorry", f"noncomputable abbrev {name} : N := N.four")
            .replace(":= by sorry", ":= h") + "```")


def cfg(**kw):
    return PipelineConfig(options=SolveOptions(samples=2, rounds=1, formalize_samples=2, cot_samples=2),
                          header=MINI_PRELUDE, **kw)


def test_verified_end_to_end(kernel):
    gen = ScriptedGenerator(by_task({
        "formalize": STATEMENT, "backtranslate": "Sam has 2 + 2 apples; how many?",
        "judge": "They match. Verdict: yes", "lean_solve": fill_statement, "cot": "The answer is 4.",
    }))
    rec = run_problem({"id": "a1", "question": QUESTION, "answer": "4"}, gen, kernel, params=PARAMS, cfg=cfg())
    assert rec["status"] == "verified" and rec["verified"] is True
    assert rec["answer"] == "N.four" and "apples_answer : N := N.four" in rec["lean_code"]  # the model's names
    # Lean printed `N.four`; the English number is read from it and confirmed by the kernel
    assert rec["answer_number"] == "4" and rec["informal"]["text"] == "The answer is 4 apples (verified in Lean)."
    assert "The kernel accepted the theorem `apples`" in rec["informal"]["explanation"]
    assert rec["stages"]["formalize"]["best"] is not None
    assert rec["stages"]["solve"]["cot_answer"] == "4"
    t = rec["timings"]
    assert t["lean_s"] > 0 and t["total_s"] >= t["lean_s"] + t["model_s"] - 1e-6
    assert {"formalize_s", "solve_s", "explain_s"} <= set(t)


def test_nothing_elaborates_falls_back_to_cot_unverified(kernel):
    gen = ScriptedGenerator(by_task({
        "formalize": "```lean\ntheorem apples : Eq x := by sorry\n```",
        "formalize_repair": "I cannot do this.", "cot": ["The answer is 4.", "The answer is 4."],
    }))
    rec = run_problem({"id": "a2", "question": QUESTION}, gen, kernel, params=PARAMS, cfg=cfg())
    assert rec["status"] == "unverified" and rec["answer"] == "4"
    assert rec["stages"]["solve"]["skipped"] == "no statement elaborated"
    assert "unverified" in rec["informal"]["text"]
    assert "No candidate elaborated" in rec["stages"]["formalize"]["summary"]


def test_formal_statement_given_skips_formalize(kernel):
    formal = {"id": "f1", "source": QUESTION, "kind": "compute", "header": MINI_PRELUDE,
              "statement": STATEMENT.strip("`").removeprefix("lean\n")}
    gen = ScriptedGenerator(by_task({"lean_solve": SOLUTION, "cot": "The answer is 4.",
                                     "backtranslate": "Two plus two apples."}))
    rec = run_problem({"id": "f1", "formal": formal, "question": QUESTION}, gen, kernel, params=PARAMS,
                      cfg=cfg(explain_with_model=False))
    assert "formalize" not in rec["stages"]
    assert rec["verified"] and rec["answer"] == "N.four"
    assert rec["informal"]["explanation"].startswith(
        "Lean evaluated `apples_answer` to N.four (= 4, checked by the kernel).")


def test_the_english_number_of_a_prelude_answer_is_the_kernels(kernel):
    """lean_number reads `N.four.add N.two` as 6 only when the kernel agrees after the verified code:
    a solution that declares its own `N.four.add` (so the printed term means something else) gets none."""
    from autoformalize.problem import FormalProblem
    from solve_in_lean.pipeline import lean_number

    formal = FormalProblem("n", QUESTION, "compute", STATEMENT.strip("`").removeprefix("lean\n"), header=MINI_PRELUDE)
    honest = "noncomputable abbrev apples_answer : N := N.four.add N.two\n"
    assert lean_number(formal, "N.four.add N.two", honest, kernel, 60) == "6"
    tricked = "noncomputable def N.four.add (m : N) : N := m\n" + honest  # prints the same, is 2
    assert lean_number(formal, "N.four.add N.two", tricked, kernel, 60) is None
    assert lean_number(formal, "6", honest, kernel, 60) is None  # already a number: nothing to read


def test_no_answer_at_all(kernel):
    gen = ScriptedGenerator(by_task({"formalize": "", "formalize_repair": "", "cot": "I don't know."}))
    rec = run_problem({"id": "a3", "question": QUESTION}, gen, kernel, params=PARAMS, cfg=cfg())
    assert rec["status"] == "no answer" and rec["answer"] is None
    assert rec["informal"]["text"].startswith("No answer")


class Recording(ScriptedGenerator):
    """The scripted generator, remembering the task and sampling params of every request."""

    def __init__(self, script):
        super().__init__(script)
        self.requests = []

    def generate(self, prompts, params):
        self.requests += [(task_of(p), params) for p in prompts]
        return super().generate(prompts, params)


def test_every_stage_gets_its_prompts_stop_strings_and_the_sampling_rule(kernel):
    inner = Recording(by_task({
        "formalize": STATEMENT, "backtranslate": "Sam has 2 + 2 apples; how many?",
        "judge": "They match. Verdict: yes", "lean_solve": fill_statement, "cot": "The answer is 4.",
    }))
    greedy = SamplingParams(temperature=0.0, max_new_tokens=64, stop=("<|end|>",))
    options = SolveOptions(samples=1, rounds=0, formalize_samples=3, cot_samples=2)
    rec = run_problem({"id": "r1", "question": QUESTION}, SamplingRule(inner, auto_temperature=True), kernel,
                      params=greedy, cfg=PipelineConfig(options=options, header=MINI_PRELUDE))
    assert rec["verified"]
    tasks = {task for task, _ in inner.requests}
    assert {"formalize", "backtranslate", "judge", "lean_solve", "cot"} <= tasks
    for task, params in inner.requests:
        assert set(get_prompt(task).stop) <= set(params.stop) and "<|end|>" in params.stop, task
        # several samples are sampled (with -n 1 too: formalizations and chains of thought), one stays greedy
        assert params.temperature == (SAMPLED_TEMPERATURE if params.n > 1 else 0.0), (task, params)
    assert {t for t, p in inner.requests if p.n > 1} == {"formalize", "cot"}

    chosen = Recording(by_task({"formalize": STATEMENT, "lean_solve": fill_statement, "cot": "4",
                                "backtranslate": "x", "judge": "Verdict: yes"}))
    run_problem({"id": "r2", "question": QUESTION}, SamplingRule(chosen, auto_temperature=False), kernel,
                params=greedy, cfg=PipelineConfig(options=options, header=MINI_PRELUDE))
    assert all(p.temperature == 0.0 for _, p in chosen.requests)  # a temperature the user chose is kept


def test_problem_longer_than_the_cap_is_an_input_error_before_any_model_call(kernel):
    gen = Recording(by_task({}))
    with pytest.raises(InputError, match="more than max_problem_chars=50"):
        run_problem({"id": "long", "question": "x" * 51}, gen, kernel, params=PARAMS,
                    cfg=PipelineConfig(options=SolveOptions(max_problem_chars=50), header=MINI_PRELUDE))
    assert gen.requests == []
