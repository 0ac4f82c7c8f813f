"""The formalize loop: a scripted generator (not a model) for control flow, the real Lean kernel
for every elaboration check (prelude-dialect statements), and once the real tiny transformers model."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from autoformalize.faithfulness import CheapChecks, cheap_checks, lean_numbers, parse_verdict, quantities, score
from autoformalize.formalize import FormalizationResult, formalize, guess_kind
from autoformalize.metrics import format_table, metrics_by_dataset
from autoformalize.problem import FormalProblem
from lean_prelude import MINI_PRELUDE
from solve_in_lean.models.base import SamplingParams
from solve_in_lean.models.scripted import ScriptedGenerator

PARAMS = SamplingParams(temperature=0.8, max_new_tokens=64)


def statement(hyp: str = "Eq x (N.add N.two N.two)", concl: str = "Eq x a_answer", var: str = "x") -> str:
    """A compute statement in the prelude dialect, as a model would write it (with `sorry`)."""
    hyp, concl = hyp.replace("x", var), concl.replace("x", var)
    return f"```lean\nabbrev a_answer : N := sorry\ntheorem t ({var} : N) (h : {hyp}) : {concl} := by sorry\n```"


GOOD = statement()
TYPO = statement(hyp="Eq x (N.add N.two N.tw)")  # Lean: unknown constant


def task(prompt) -> str:
    last = prompt[-1]["content"]
    if last.startswith("Formalize this"):
        return "formalize"
    if "Lean rejected the statement" in last:
        return "repair"
    if last.startswith("Original problem:"):
        return "judge"
    assert last.startswith("```lean"), last
    return "backtranslate"


def scripted(first: list[str], repairs: list[str] | None = None, judge: str = "Same.\nVerdict: YES",
             english: str = "Let x be two plus two; find x.") -> ScriptedGenerator:
    """Answers by task: the first samples in order, repairs in order, a fixed judge and back-translation."""
    queue = list(repairs or [])

    def answer(prompt, i):
        t = task(prompt)
        if t == "formalize":
            return first[i]
        if t == "repair":
            return queue.pop(0)
        return judge(prompt) if callable(judge) else judge if t == "judge" else english
    return ScriptedGenerator(answer)


def prompts_of(gen: ScriptedGenerator, kind: str) -> list[str]:
    return [p[-1]["content"] for p in gen.prompts if task(p) == kind]


class CountingChecker:
    """Delegates to the real kernel, counting how many statements Lean was asked to elaborate."""

    def __init__(self, inner):
        self.inner, self.checked = inner, 0

    def check(self, code, *, header=None, timeout_s=None):
        self.checked += 1
        return self.inner.check(code, header=header, timeout_s=timeout_s)

    def check_many(self, requests, *, workers=None):
        self.checked += len(requests)
        return self.inner.check_many(requests, workers=workers)


def run(gen, checker, **kw):
    kw.setdefault("header", MINI_PRELUDE)
    kw.setdefault("k", 3)
    kw.setdefault("rounds", 2)
    return formalize("What is two plus two?", gen, checker, params=PARAMS, id="two", **kw)


def test_elaboration_filter_keeps_what_lean_accepts(kernel):
    gen = scripted([GOOD, TYPO, "I do not know.\x00\x01"])
    res = run(gen, kernel, rounds=0)
    good, typo, garbage = res.candidates
    assert good.elaborated and good.status == "ok"
    assert typo.status == "error" and typo.lean_errors[0]["span"] == "N.tw"
    assert "N.tw" in typo.lean_errors[0]["text"]  # Lean's own message
    assert garbage.status == "unread" and "not text" in garbage.reason
    assert res.best is good and res.ranking[0] == 0
    assert good.problem.statement == ("abbrev a_answer : N := sorry\n"  # the model's names and layout
                                      "theorem t (x : N) (h : Eq x (N.add N.two N.two)) : Eq x a_answer := by sorry\n")
    assert good.problem.provenance == {"model": "scripted", "task": "formalize", "prompt": "formalize",
                                       "prompt_sha": good.problem.provenance["prompt_sha"], "sample": 0,
                                       "round": 0, "parent": None}
    assert res.rounds_used == 0 and prompts_of(gen, "repair") == []


def test_repair_prompt_carries_leans_error_messages_and_repairs_are_checked(kernel):
    gen = scripted([TYPO, TYPO], repairs=[statement(concl="Eq a_answer x"), "still no idea", TYPO])
    res = run(gen, kernel, k=2, rounds=2)
    lean_text = res.candidates[0].lean_errors[0]["text"]
    repair_prompts = prompts_of(gen, "repair")
    assert len(repair_prompts) == 2  # round 1: two identical failures, one prompt sampled twice; round 2
    assert lean_text in repair_prompts[0] and "N.add N.two N.tw" in repair_prompts[0]
    repaired = [c for c in res.candidates if c.round == 1]
    assert [c.parent for c in repaired] == [0, 0] and [c.sample for c in repaired] == [0, 1]
    assert repaired[0].elaborated and res.best is repaired[0] and repaired[1].status == "unread"
    assert res.best.problem.provenance["task"] == "formalize_repair"
    # each failure keeps its own repair chain: the unreadable one went back once more, in round 2
    assert res.rounds_used == 2 and [c.parent for c in res.candidates if c.round == 2] == [3]
    assert "could not be read as a Lean statement" in prompts_of(gen, "repair")[1]
    assert res.candidates[0].feedback.startswith("- error at `N.tw`")


def test_repairs_stop_after_the_given_rounds(kernel):
    wrong = [statement(hyp="Eq x (N.add N.two N.zer)"), statement(hyp="Eq x (N.add N.two N.on)")]
    gen = scripted([TYPO], repairs=wrong)
    res = run(gen, kernel, k=1, rounds=2)
    assert res.best is None and res.rounds_used == 2
    assert [c.round for c in res.candidates] == [0, 1, 2]
    assert [c.parent for c in res.candidates] == [None, 0, 1]
    second = prompts_of(gen, "repair")[1]
    assert "N.zer" in second and res.candidates[1].lean_errors[0]["text"] in second
    assert res.summary().startswith("No candidate elaborated: 3 candidates over 2 repair rounds")


def test_dedup_groups_statements_up_to_whitespace_and_bound_names(kernel):
    same_1 = GOOD
    same_2 = statement(var="y").replace(" (h :", "\n    (hy :")
    other = statement(hyp="Eq x (N.add N.one N.three)")
    checker = CountingChecker(kernel)
    gen = scripted([same_1, other, same_2])
    res = run(gen, checker, rounds=0)
    a, b, c = res.candidates
    assert a.problem.statement != c.problem.statement and a.problem.key() == c.problem.key()
    assert a.group == c.group == 0 and b.group == 1
    assert res.groups == {0: [0, 2], 1: [1]}
    assert checker.checked == 2  # one elaboration per distinct statement
    assert len(prompts_of(gen, "backtranslate")) == 2 and len(prompts_of(gen, "judge")) == 2
    assert c.score == a.score and c.elaborated
    assert res.stats()["distinct_elaborated"] == 2
    assert res.ranking[:2] == [0, 2]  # equal scores: the larger group first


def test_ranking_follows_judge_then_cheap_checks(kernel):
    assumed = statement(hyp="Eq x a_answer", concl="Eq x (N.add N.two N.two)")  # answer only in a hypothesis
    other = statement(hyp="Eq x (N.add N.one N.three)")

    def judge(prompt):
        content = prompt[-1]["content"]
        return "Verdict: NO" if "N.one N.three" in content else "They match.\nVerdict: YES"
    gen = scripted([other, assumed, GOOD], judge=judge)
    res = run(gen, kernel, rounds=0)
    by_index = {c.index: c for c in res.candidates}
    assert [by_index[i].verdict for i in range(3)] == [False, True, True]
    assert by_index[1].checks["answer_assumed"] and not by_index[1].checks["asked"]
    assert by_index[2].checks["asked"]
    assert res.ranking == [2, 1, 0]
    assert by_index[2].score > by_index[1].score > by_index[0].score
    assert res.best.problem.scores["score"] == by_index[2].score


def test_no_judge_and_unreadable_verdicts_score_as_unknown(kernel):
    res = run(scripted([GOOD]), kernel, k=1, judge=False)
    assert res.best.verdict is None and res.best.judge_text is None
    res2 = run(scripted([GOOD], judge="I am not sure."), kernel, k=1)
    assert res2.best.verdict is None and res2.best.judge_text == "I am not sure."
    assert res.best.score == res2.best.score == score(True, None, CheapChecks(**{
        k: v for k, v in res.best.checks.items() if k not in ("asked", "passed")}))


def test_broken_header_is_reported_and_not_sent_for_repair(kernel):
    gen = scripted([GOOD, GOOD])
    res = run(gen, kernel, k=2, header=MINI_PRELUDE + "def broken : N := N.nope\n")
    assert {c.status for c in res.candidates} == {"header_error"}
    assert "header does not elaborate" in res.summary()
    assert prompts_of(gen, "repair") == []


def test_garbage_from_the_model_fails_candidates_not_the_run(kernel):
    class Short(ScriptedGenerator):
        """Returns one completion fewer than asked for the first prompt."""

        def generate(self, prompts, params):
            out = super().generate(prompts, params)
            return [out[0][:-1]] + out[1:]
    gen = Short(lambda p, i: ["", "x" * 30_000, "\x00\x01\x02 binary", "🙂" * 10, "unused"][i] if task(p) == "formalize" else "")
    res = run(gen, kernel, k=5, rounds=1)
    first = [c for c in res.candidates if c.round == 0]
    assert [c.status for c in first] == ["unread"] * 5
    assert "empty" in first[0].reason and "too long" in first[1].reason and "not text" in first[2].reason
    assert "fewer completions" in first[4].reason
    assert len(first[1].raw) <= 4000
    assert res.best is None and res.summary().startswith("No candidate elaborated")
    assert "\x00" not in "".join(prompts_of(gen, "repair"))  # garbage is not echoed back
    json.dumps(res.to_dict())


def test_result_record_round_trips_and_feeds_metrics(kernel):
    res = run(scripted([GOOD, TYPO], repairs=[TYPO]), kernel, k=2, rounds=1)
    d = json.loads(json.dumps(res.to_dict(), ensure_ascii=False))
    back = FormalizationResult.from_dict(d)
    assert back.to_dict() == res.to_dict()
    assert back.best.problem.header == MINI_PRELUDE
    nothing = run(scripted([TYPO], repairs=[TYPO]), kernel, k=1, rounds=1).to_dict()
    m = metrics_by_dataset([{**d, "dataset": "toy"}, {**nothing, "dataset": "toy"}])["toy"]
    assert m["problems"] == 2 and m["elaboration_rate"] == 0.5
    assert m["first_try_elaboration"] == pytest.approx(1 / 3, abs=1e-3)
    assert m["judge_yes"] == 1.0 and m["repair_rounds"] == 1.0
    assert "toy" in format_table({"toy": m})


def test_kind_is_guessed_and_passed_to_the_prompt(kernel):
    assert guess_kind("Prove that 2 + 2 = 4.") == "prove"
    assert guess_kind("Show that $x = 2$.") == "prove"
    assert guess_kind("How many apples? Show your work.") == "compute"
    prove = "```lean\ntheorem t : Eq (N.add N.two N.two) N.four := by sorry\n```"
    gen = scripted([prove])
    res = formalize("Prove that two plus two is four.", gen, kernel, params=PARAMS, k=1, header=MINI_PRELUDE)
    assert res.kind == "prove" and res.best.problem.kind == "prove"
    assert prompts_of(gen, "formalize")[0].startswith("Formalize this prove problem.")
    assert res.best.checks["answer_in_conclusion"] is None and res.best.checks["asked"]


# --- cheap checks: plain text, no Lean needed --------------------------------------------------


def problem(source: str, stmt: str) -> FormalProblem:
    return FormalProblem("p", source, "compute", stmt)


def test_quantities_of_word_problems():
    q = {x.text: x.alternatives for x in quantities(
        "Ten flowers are yellow and there are 80% more purple ones. A shirt costs $12.50, twice a hat. "
        "Half of 1,200 people came, 3/4 of them stayed for two dozen minutes.")}
    assert set(q) == {"Ten", "80%", "$12.50", "twice", "Half", "1,200", "3/4", "two dozen"}
    assert any(25 / 2 == float(v) for alt in q["$12.50"] for v in alt)
    assert quantities("What is the largest prime factor?") == []


def test_coverage_and_asked_quantity():
    src = "A jacket costs $80, 15% off. What does it cost?"
    ok = problem(src, "abbrev a_answer : ℚ := sorry\ntheorem j (p : ℚ) (h₀ : p = 80) : p - 15 / 100 * p = a_answer := by sorry")
    decimal = problem(src, "abbrev a_answer : ℚ := sorry\ntheorem j (p : ℚ) (h₀ : p = 80) : p * 0.85 = a_answer := by sorry")
    assumed = problem(src, "abbrev a_answer : ℚ := sorry\ntheorem j (h : a_answer = 80 * 0.85) (y : ℚ) (h₂ : y = 15) : True := by sorry")
    assert cheap_checks(ok).passed and cheap_checks(ok).coverage == 1.0
    assert cheap_checks(decimal).missing == ["15%"] and cheap_checks(decimal).coverage == 0.5
    c = cheap_checks(assumed)
    assert c.answer_assumed and c.answer_in_conclusion is False and c.trivial_conclusion and not c.asked
    assert lean_numbers("(x : ℝ) (h : x = (3 : ℝ) / 4) : x = 1.5") >= {0.75, 1.5, 3, 4}


def test_verdicts_and_score_formula():
    assert parse_verdict("They agree.\nVerdict: YES") is True
    assert parse_verdict("Verdict: **no**") is False
    assert parse_verdict("verdict: yes\n...on reflection\nVerdict: NO") is False
    assert parse_verdict("no") is False and parse_verdict("hmm") is None and parse_verdict("") is None
    full = CheapChecks(1.0)
    assert score(True, True, full) == 1.0
    assert score(True, None, full) == 0.7
    assert score(True, False, CheapChecks(0.5, ["x"], True, True)) == 0.125
    assert score(False, True, full) == 0.0


def test_autoformalize_imports_nothing_from_solve_in_lean():
    package = Path(__file__).resolve().parents[1] / "autoformalize"
    offenders = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "solve_in_lean"]
    assert len(list(package.rglob("*.py"))) >= 8
    assert offenders == []


# --- the real tiny transformers model, once, end to end -----------------------------------------


@pytest.mark.slow
def test_tiny_transformers_model_runs_the_whole_path(tiny_model_dir, kernel):
    from solve_in_lean.models.transformers_backend import TransformersGenerator

    gen = TransformersGenerator(str(tiny_model_dir))
    params = SamplingParams(temperature=1.0, max_new_tokens=24, seed=0)
    res = formalize("Natalia sold 48 clips in April and half as many in May. How many clips in total?",
                    gen, kernel, params=params, k=2, rounds=1, header=MINI_PRELUDE, id="clips")
    assert res.model == str(tiny_model_dir)
    assert len(res.candidates) >= 3 and res.rounds_used == 1
    assert res.best is None  # random weights write no Lean
    assert all(c.reason for c in res.candidates)
    assert res.summary().startswith("No candidate elaborated: ")
    json.dumps(res.to_dict())
