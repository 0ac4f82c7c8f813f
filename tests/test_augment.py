"""`lean-solve augment`: numbers aligned between English and Lean, variants certified by the real
bundled kernel on prelude-dialect problems (numbers built from constructors), the command end to
end (resume, config check, dedup against evaluation splits), and Mathlib numerals under `mathlib`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lean_prelude import MINI_PRELUDE, needs_mathlib
from autoformalize.problem import FormalProblem
from solve_in_lean.augment.dedup import Seen, text_key
from solve_in_lean.augment.numbers import augment, plan, source_of
from solve_in_lean.augment.numerals import align, english_numbers, lean_numerals
from solve_in_lean.verifier.values import prelude_value
from solve_in_lean.problems import load_items, own_item
from solve_in_lean.solve import target_of
from solve_in_lean.verify import VerifyRequest, verify_many
from solve_in_lean.world.curriculum import TEMPLATES, export, make_problem, numeral, value_of

ROOT = Path(__file__).resolve().parents[1]


def item(p) -> dict:
    return own_item(p.to_row("lean"), 1, "world")


# --- alignment, no Lean ---------------------------------------------------------------------

def test_only_plain_integers_may_change():
    spans, fixed = english_numbers("Tom buys 3 dozen eggs for $5, eats 2.5 of them, twice as many as 7 and "
                                   "3/4 of 1,000 cups; 12 remain.")
    plain = {s.value for s in spans}
    assert 12 in plain and 7 in plain and 1000 not in plain and 5 not in plain
    assert {3, 12, 36, 5, 2, 4} <= fixed  # dozen, money, twice, the fraction: the values they read as stay


def test_prelude_numerals_are_found_with_their_values():
    text = "Eq x (N.add (N.mul N.three (N.add N.four (N.add N.four N.one))) N.two)"
    values = sorted(s.value for s in lean_numerals(text))
    assert values == [1, 2, 3, 4, 4, 5, 9]
    assert prelude_value("(N.three.mul (N.four.add (N.four.add N.one))).add N.two") == 29
    assert prelude_value("N.succ N.two") == 3 and prelude_value("N.two.foo N.one") is None


def test_a_numeral_that_is_also_a_sum_of_english_numbers_is_ambiguous():
    # "4 eggs, 2 more and 6 more": Lean writes 4 + 2 and 6 the same way, so no alignment is trusted
    p = make_problem("add-three", 0, (4, 2, 6), id="x", name="Ann", other="Tom", obj="eggs")
    assert "N.add (N.add N.four N.two) (N.add N.four N.two)" in p.statement
    assert "ambiguous" in plan(source_of(item(p)))
    # "4 packs of 5" reads 5 as one numeral (the reading that matches the English counts)
    q = make_problem("two-step", 2, (4, 5, 3), id="y", name="Ann", other="Tom", obj="pens")
    claimed = plan(source_of(item(q))).spans["statement"]
    assert sorted(s.value for s in claimed) == [3, 4, 5]


def test_decimal_numerals_follow_the_english():
    stmt = ("abbrev clips_answer : ℕ := sorry\ntheorem clips (april may : ℕ) (h₀ : april = 48)"
            " (h₁ : may = april / 2) : april + may = clips_answer := by sorry\n")
    fp = {"kind": "compute", "statement": stmt}
    src = source_of({"id": "c", "question": "Natalia sold 48 clips in April and half as many in May. How many?",
                     "formal": fp, "proof": "abbrev clips_answer : ℕ := 48 + 48 / 2\n..."})
    p = plan(src)
    assert p.values == [48] and 2 in p.avoid  # `half` keeps the 2
    assert [s.value for s in p.spans["program"]] == [48, 48]
    claimed, _ = align(stmt, {48}, {48: 1})
    assert len(claimed) == 1


def test_a_division_that_stops_being_exact_is_caught_in_the_text():
    from solve_in_lean.augment.numbers import _floored, _inexact, _whole

    assert _inexact("abbrev a : ℕ := 48 + 48 / 2") is None and _inexact("x := 51 + 51 / 2") == "51 / 2"
    # a division of a variable: Lean floors it in ℕ, so a numbers variant over ℕ is not trusted
    assert _floored("h₁ : may = april / 2") and _floored("(a + b) / 2")
    assert not _floored("abbrev a : ℕ := 48 + 48 / 2 -- april / 2 in a comment")
    assert _whole("72") and _whole("N.four.add N.two") and not _whole("51/2") and not _whole(None)


def test_sources_without_a_program_or_statement_are_skipped_with_the_reason():
    assert "no verified Lean program" in source_of({"id": "a", "question": "q 3",
                                                    "formal": {"kind": "compute", "statement": "x"}})
    assert "no compute statement" in source_of({"id": "a", "question": "q 3", "proof": "x"})
    # a `lean-solve solve` record, read back as a problem file, brings its verified code as `lean_code`
    stmt = "abbrev a_answer : N := sorry\ntheorem a (x : N) (h : Eq x N.two) : Eq x a_answer := by sorry\n"
    solved = own_item({"id": "a", "question": "Sam has 2 pens.", "formal": {"kind": "compute", "statement": stmt},
                       "lean_code": "noncomputable abbrev a_answer : N := N.two\n..."}, 1, "results")
    assert source_of(solved).program.startswith("noncomputable abbrev a_answer")


def test_dedup_by_normalized_text():
    seen = Seen()
    seen.add([{"question": "Tom has  3 apples.", "formal": {"statement": "theorem t : True := by sorry"}}], "test")
    assert seen.clash({"question": "tom has 3 APPLES."}) == "its question is already in test"
    assert seen.clash({"question": "Tom has 4 apples."}) is None
    assert text_key("a\u00a0b") == text_key("A b")


# --- through the kernel ----------------------------------------------------------------------

WORLD = [(t, f, n) for t, f, n in (
    ("add", 0, (6, 7)), ("add", 2, (1, 8)), ("multiply", 1, (3, 4)), ("multiply", 3, (5, 2)),
    ("compare", 0, (2, 5)), ("compare", 4, (9, 3)), ("add-three", 1, (1, 2, 8)), ("add-three", 3, (5, 3, 7)),
    ("two-step", 0, (2, 5, 9)), ("two-step", 2, (4, 3, 1)))]


@pytest.mark.parametrize("template, frame, numbers", WORLD)
def test_numbers_variants_are_certified_by_the_kernel(kernel, template, frame, numbers):
    t = TEMPLATES[template]
    p = make_problem(template, frame, numbers, id=f"{template}-{frame}", name="Ann", other="Tom", obj="shells")
    result = augment(item(p), kernel, k=2, header=MINI_PRELUDE, seed=1)
    assert "skipped" not in result and result["dropped"] == []  # these programs compute from the hypothesis
    assert len(result["problems"]) == 2
    for row in result["problems"]:
        changes = {int(a): b for a, b in row["provenance"]["changes"].items()}
        assert changes and all(a != b for a, b in changes.items())
        new = tuple(changes.get(n, n) for n in numbers)
        # the certified value is the template's arithmetic on the new numbers (computed apart from Lean),
        # and the English is the same frame with the new numbers
        assert row["value"] == value_of(t.lean(*new))
        assert row["question"] == t.frames[frame].format(**dict(zip("abc", new)), name="Ann", other="Tom",
                                                         obj="shells")
        assert sorted(new) == sorted(set(new)) or len(set(numbers)) < len(numbers)  # distinct stay distinct
        assert [a < b for a, b in zip(numbers, numbers[1:])] == [a < b for a, b in zip(new, new[1:])]  # order kept
        assert row["provenance"]["source_id"] == p.id and row["provenance"]["lean"]["backend"] == "kernel"
        # and the kernel accepts the new program for the new statement again, independently
        fp = FormalProblem.from_dict({"id": row["id"], "source": row["question"], **row["formal"]})
        again = verify_many([VerifyRequest(row["proof"], MINI_PRELUDE, target_of(fp), fp.answer_name)], kernel)[0]
        assert again.verified and " ".join(again.answer.split()) == row["answer"]
        # negative control: the new statement with the old program does not verify
        old = verify_many([VerifyRequest(p.proof, MINI_PRELUDE, target_of(fp), fp.answer_name)], kernel)[0]
        assert not old.verified


def test_a_program_that_no_longer_verifies_is_dropped_with_leans_reason(kernel):
    p = make_problem("two-step", 1, (3, 4, 2), id="hard", name="Ann", other="Tom", obj="cups")
    # the answer written out as a constant: right for 3, 4, 2, wrong for any new numbers
    written = p.proof.replace("abbrev cups_count_answer : N := N.add (N.mul N.three N.four) N.two",
                              f"abbrev cups_count_answer : N := {numeral(p.value)}")
    assert written != p.proof
    row = {**p.to_row("lean"), "proof": written}
    result = augment(own_item(row, 1, "w"), kernel, k=3, header=MINI_PRELUDE)
    assert result["problems"] == [] and len(result["dropped"]) == 3
    assert all("Type mismatch" in d["reason"] and "no theorem named `cups_count` was proved" in d["reason"]
               for d in result["dropped"])
    # control: the same numbers with the honest program are kept
    assert len(augment(item(p), kernel, k=3, header=MINI_PRELUDE)["problems"]) == 3


# --- model-written problems (a scripted generator, named as such: given completions, not a model) -----

def _formalize(prompt, index):
    """Answer a formalize prompt as a model might: the two-step shape over the numbers of the problem."""
    import re

    text = prompt[-1]["content"]
    nums = [numeral(int(n)) for n in re.findall(r"\d+", text)]
    term = f"N.mul {_p(nums[0])} {_p(nums[1])}"
    for n in nums[2:]:
        term = f"N.add ({term}) {_p(n)}"
    return ("```lean\nabbrev shells_answer : N := sorry\n"
            f"theorem shells (x : N) (h : Eq x ({term})) : Eq x shells_answer := by sorry\n```")


def _p(t: str) -> str:
    return f"({t})" if " " in t else t


def _fill(prompt, index):
    """Answer a lean_solve prompt: the answer is the hypothesis' computation, the proof the hypothesis."""
    stmt = prompt[-1]["content"].split("```lean\n")[1].split("```")[0]
    name = stmt.split("abbrev ")[1].split(" ")[0]
    hyp = stmt.split("(h : Eq x (")[1].split(")) :")[0]
    return ("```lean\n" + stmt.replace(f"abbrev {name} : N := sorry", f"noncomputable abbrev {name} : N := {hyp}")
            .replace(":= by sorry", ":= h") + "```")


def scripted(**answers):
    from scripting import by_task
    from solve_in_lean.models.scripted import ScriptedGenerator

    return ScriptedGenerator(by_task({"formalize": _formalize, "lean_solve": _fill, "backtranslate": "shells",
                                      "judge": "Verdict: yes", "cot": "The answer is 14.", **answers}))


def _pipeline():
    from solve_in_lean.models.base import SamplingParams
    from solve_in_lean.options import SolveOptions
    from solve_in_lean.pipeline import PipelineConfig

    return SamplingParams(temperature=0.5, max_new_tokens=64), PipelineConfig(
        options=SolveOptions(samples=1, rounds=0, formalize_samples=1, cot_samples=1), header=MINI_PRELUDE,
        explain_with_model=False)


SOURCE = make_problem("two-step", 0, (3, 4, 2), id="src", name="Ann", other="Tom", obj="shells")


def test_rephrase_is_kept_only_with_the_same_verified_answer(kernel):
    from solve_in_lean.augment.generative import augment as generative

    same = "Ann carries 3 bags holding 4 shells each, plus 2 shells in a pocket. How many shells does Ann have?"
    changed = "Ann carries 5 bags holding 4 shells each, plus 2 shells in a pocket. How many shells does Ann have?"
    params, cfg = _pipeline()
    gen = scripted(rephrase_problem=[same, changed, SOURCE.question])
    result = generative(item(SOURCE), "rephrase", gen, kernel, k=3, params=params, cfg=cfg)
    assert [r["question"] for r in result["problems"]] == [same]
    row = result["problems"][0]
    assert prelude_value(row["answer"]) == 14 and row["provenance"]["source_id"] == "src"
    assert "same answer as the source" in row["provenance"]["certified"]
    assert "re-verified" in row["provenance"]["certified"] and row["provenance"]["cot_agrees"] is True
    reasons = [d["reason"] for d in result["dropped"]]
    assert any("not the source's" in r for r in reasons) and "the model copied the source problem" in reasons


def test_harder_and_from_lean_are_kept_after_the_loop_verifies(kernel):
    from solve_in_lean.augment.generative import augment as generative

    params, cfg = _pipeline()
    harder = ("Ann has 3 bags with 4 shells in each bag and 2 more shells in a pocket, then finds 5 shells. "
              "How many shells does Ann have?")
    result = generative(item(SOURCE), "harder", scripted(harder_problem=harder, cot="The answer is 19."), kernel,
                        k=1, params=params, cfg=cfg)
    row = result["problems"][0]
    assert prelude_value(row["answer"]) == 19 and row["provenance"]["cot_agrees"] is True
    assert row["provenance"]["certified"].startswith("formalize -> solve -> verify")
    # from-lean: the word problem's answer must be the statement's (14); a wrong story is dropped
    story, wrong = ("Tom packs 3 boxes of 4 shells and adds 2 loose shells. How many shells are there?",
                    "Tom packs 3 boxes of 4 shells and adds 6 loose shells. How many shells are there?")
    result = generative(item(SOURCE), "from-lean", scripted(lean_to_problem=[story, wrong]), kernel, k=2,
                        params=params, cfg=cfg)
    assert [r["question"] for r in result["problems"]] == [story]
    assert "not the source's" in result["dropped"][0]["reason"]


def test_model_modes_skip_sources_they_cannot_certify(kernel):
    from solve_in_lean.augment.generative import augment as generative

    params, cfg = _pipeline()
    gen = scripted(formalize="no Lean here", formalize_repair="none", cot="The answer is 3.")
    result = generative({"id": "q", "question": "Sam has 3 pens. How many pens?"}, "rephrase", gen, kernel, k=1,
                        params=params, cfg=cfg)
    assert "no Lean-verified answer" in result["skipped"] and result["problems"] == []
    assert "no Lean statement" in generative({"id": "q", "question": "x"}, "from-lean", gen, kernel, k=1,
                                             params=params, cfg=cfg)["skipped"]


# --- the command, end to end -----------------------------------------------------------------

def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LEAN_SOLVE_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "solve_in_lean", "augment", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_command_end_to_end_resumes_and_keeps_test_items_out(kernel, tmp_path):
    paths = export(tmp_path / "w", {"train": 10, "test": 4}, seed=0)
    header = tmp_path / "prelude.lean"
    header.write_text(MINI_PRELUDE)
    out = tmp_path / "new.jsonl"
    common = ["-i", str(paths["train"]), "-m", "numbers", "-k", "2", "-b", "kernel", "--header", str(header),
              "--exclude", str(paths["test"]), "--json"]
    first = cli(*common, "-o", str(out))
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    rows = load_items(out)
    assert summary["kept"] == len(rows) >= 10 and summary["resumed"] == 0 and summary["errors"] == 0
    assert all(r["meta"]["provenance"]["mode"] == "numbers" and r["meta"]["provenance"]["lean"]["verified"]
               for r in rows)
    # a rerun resumes every source and writes the same file
    before = out.read_text()
    again = cli(*common, "-o", str(out))
    assert again.returncode == 0 and json.loads(again.stdout)["resumed"] == 10 and out.read_text() == before
    # another -k is refused rather than mixed into the log
    other = cli(*[a if a != "2" else "3" for a in common], "-o", str(out))
    assert other.returncode == 2 and "log was made with" in other.stderr
    assert "Traceback" not in other.stderr and other.stderr.strip().count("\n") == 0
    # a new problem that is in an evaluation split is dropped as a leak
    leaked = tmp_path / "eval.jsonl"
    first_row = json.loads(before.splitlines()[0])
    leaked.write_text(json.dumps({"id": "e1", "question": first_row["question"], "answer": "1"}) + "\n")
    out2 = tmp_path / "new2.jsonl"
    third = cli(*common, "--exclude", str(leaked), "-o", str(out2))
    assert third.returncode == 0, third.stderr
    assert first_row["question"] not in out2.read_text()
    assert any("evaluation split" in reason for reason in json.loads(third.stdout)["dropped"])
    # and a resumed run applies a newly given split to the problems it made before
    fourth = cli(*common, "--exclude", str(leaked), "-o", str(out))
    assert json.loads(fourth.stdout)["resumed"] == 10 and first_row["question"] not in out.read_text()
    assert len(out.read_text().splitlines()) == len(before.splitlines()) - 1


def test_command_with_the_tiny_model_ends_cleanly(kernel, tiny_model_dir, tmp_path, torch_one_thread):
    """The real transformers path: the tiny model writes gibberish, so nothing is certified and
    every dropped variant says why; the run still finishes and resumes."""
    header = tmp_path / "prelude.lean"
    header.write_text(MINI_PRELUDE)
    src = tmp_path / "src.jsonl"
    src.write_text(json.dumps(SOURCE.to_row("lean")) + "\n")
    out = tmp_path / "new.jsonl"
    args = ["-i", str(src), "-m", "rephrase", "-k", "1", "-o", str(out), "-b", "kernel", "--header", str(header),
            "--model", str(tiny_model_dir), "--model-backend", "transformers", "-n", "1", "--formalize-samples", "1",
            "--cot-samples", "0", "--rounds", "0", "--max-new-tokens", "8", "--no-judge", "--json"]
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["kept"] == 0 and sum(summary["dropped"].values()) == 1 and summary["errors"] == 0
    assert out.read_text() == ""
    assert json.loads(cli(*args).stdout)["resumed"] == 1


@pytest.mark.parametrize("args, says", [
    (["-m", "shuffle"], "unknown mode"),
    (["-m", "numbers", "-k", "0"], "-k must be at least 1"),
])
def test_bad_input_is_one_sentence(tmp_path, args, says):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "question": "q"}\n')
    proc = cli("-i", str(src), "-o", str(tmp_path / "o.jsonl"), *args)
    assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr


# --- Mathlib numerals ------------------------------------------------------------------------

@needs_mathlib
@pytest.mark.mathlib
def test_numbers_with_mathlib_numerals():
    from solve_in_lean.lean import get_checker

    stmt = ("abbrev apples_answer : ℕ := sorry\ntheorem apples (a b : ℕ) (h₀ : a = 12) (h₁ : b = 7) :"
            " a + 3 * b = apples_answer := by sorry\n")
    program = ("abbrev apples_answer : ℕ := 12 + 3 * 7\ntheorem apples (a b : ℕ) (h₀ : a = 12) (h₁ : b = 7) :"
               " a + 3 * b = apples_answer := by subst h₀; subst h₁; rfl\n")
    src = {"id": "m", "question": "Ann has 12 apples and 3 bags of 7 apples. How many apples does she have?",
           "formal": {"kind": "compute", "statement": stmt, "header": "import Mathlib\n"}, "proof": program}
    with get_checker("repl", mathlib=True, timeout_s=300) as checker:
        result = augment(src, checker, k=2, header="import Mathlib\n")
    assert len(result["problems"]) == 2, result["dropped"]
    for row in result["problems"]:
        ch = {int(a): b for a, b in row["provenance"]["changes"].items()}
        assert row["answer"] == str(ch.get(12, 12) + ch.get(3, 3) * ch.get(7, 7))
