"""Reading statements out of model output (autoformalize.extract), property-tested."""

import re

import pytest

from hypothesis import example, given, settings
from hypothesis import strategies as st

from autoformalize.extract import MAX_COMPLETION_CHARS, extract, extract_lean, garbage_reason, lean_name
from autoformalize.statement import parse_theorem

KEYWORDS = {"fun", "by", "at", "in", "do", "if", "then", "else", "let", "have", "show", "from", "with",
            "sorry", "admit", "match", "end", "open", "def", "theorem", "lemma", "example", "abbrev", "where",
            "axiom", "local", "macro", "syntax", "calc", "this", "mutual", "import", "forall", "exists"}
"""Words no generated name may be (the extractor renames reserved words, so a kept name is never one)."""
idents = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True).filter(lambda s: s not in KEYWORDS)
types = st.sampled_from(["ℕ", "ℤ", "ℚ", "ℝ", "Finset ℕ", "ℕ → ℝ"])
conclusions = st.sampled_from(["{a} = 1", "{a} + 2 ≤ (3 : ℝ)", "(f 2) = 3 ∧ True", "∀ y : ℕ, y + 0 = y",
                               "Real.sqrt {a} = {a} / 2", "{a} ∣ 12"])
proofs = st.sampled_from([" := by sorry", " := by\n  simp", " := by", "", " :=\n  rfl", " := by\n  norm_num [h]"])
fences = st.sampled_from([("```lean\n", "\n```"), ("```lean4\n", "\n```"), ("```\n", "\n```"), ("", ""),
                          ("```lean\n", "")])
before = st.sampled_from(["", "Here is the formalization:\n", "Sure! The statement is below.\n\n"])
after = st.sampled_from(["", "\nThis formalizes the problem.", "\n\nNote that we use natural numbers here.",
                         "\nThe answer hole stands for the value asked for."])
separators = st.sampled_from([" ", "\n", "\n    "])


def binder_text(binders):
    return " ".join(f"({b} : {t})" for b, t in binders)


@settings(max_examples=300, deadline=None)
@given(idents, st.lists(st.tuples(idents, types), max_size=3, unique_by=lambda x: x[0]), conclusions,
       st.sampled_from(["theorem", "lemma", "example", ""]), proofs, fences, before, after, separators)
def test_statement_survives_fences_prose_keywords_and_proofs(name, binders, concl, keyword, proof, fence,
                                                             pre, post, sep):
    a = binders[0][0] if binders else "x"
    concl = concl.format(a=a)
    bind = binder_text(binders)
    if keyword == "" and not bind:
        head = ":"
    elif keyword == "":
        head = f"{bind} :"
    else:
        head = " ".join(p for p in [keyword, name if keyword != "example" else "", bind, ":"] if p)
    text = f"{pre}{fence[0]}{head}{sep}{concl}{proof}{fence[1]}{post}"
    got = extract(text, problem_id="gsm8k-train-5", source="English", kind="prove")
    assert got.ok, (got.error, text)
    parts = got.problem.theorem()
    # the model's own name is kept; a missing one (example, no keyword) comes from the problem id
    assert parts.keyword == "theorem" and parts.name == (name if keyword in ("theorem", "lemma") else "gsm8k_train_5")
    assert parts.binders == " ".join(bind.split())
    assert parts.conclusion == " ".join(concl.split())
    assert got.problem.statement.rstrip().endswith(":= by sorry")
    # the normal form reads back as itself
    again = extract(got.problem.statement, problem_id="gsm8k-train-5", source="English", kind="prove")
    assert again.problem.statement == got.problem.statement


@settings(max_examples=100, deadline=None)
@given(idents, idents, st.sampled_from(["ℕ", "ℚ", "ℝ", "ℤ"]), st.sampled_from(["sorry", "72", "48 + 24"]),
       st.booleans(), fences)
def test_answer_hole_found_in_same_or_other_block_and_its_name_kept(answer, var, typ, value, split, fence):
    answer = f"{answer}_answer"
    abbrev = f"abbrev {answer} : {typ} := {value}"
    thm = f"theorem t ({var} : {typ}) (h₀ : {var} = 48) : {var} + {var} / 2 = {answer} := by\n  norm_num"
    if split:
        text = f"{fence[0]}{abbrev}{fence[1]}\nand then\n{fence[0]}{thm}{fence[1]}"
    else:
        text = f"{fence[0]}{abbrev}\n{thm}{fence[1]}"
    got = extract(text, problem_id="clips", source="Natalia sold clips", kind="compute")
    assert got.ok, (got.error, text)
    p = got.problem
    assert (p.kind, p.answer_name, p.answer_type, p.theorem_name) == ("compute", answer, typ, "t")
    assert p.statement == f"abbrev {answer} : {typ} := sorry\n{thm.split(' := ')[0]} := by sorry\n"
    assert ("answer value replaced by `sorry`" in got.notes) == (value != "sorry")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
@example("```lean\n")
@example("theorem")
@example("theorem x : := by")
@example("(((( : ")
@example("```lean\ntheorem t : True\n```\n```lean\ntheorem u : False\n```")
def test_any_text_gives_a_problem_or_a_reason_never_an_exception(text):
    got = extract(text, problem_id="p", source="s")
    assert got.ok != (got.error is not None)
    if got.ok:
        assert got.problem.statement.rstrip().endswith(":= by sorry")
    assert extract_lean(text) is None or extract_lean(text).strip()


@given(st.binary(min_size=1, max_size=200).map(lambda b: b.decode("latin-1")).filter(
    lambda s: s.strip() and any(ord(c) < 32 and c not in "\n\t\r" for c in s)))
def test_binary_garbage_is_refused_with_a_reason(text):
    got = extract(text, problem_id="p", source="s")
    assert not got.ok and "not text" in got.error


def test_empty_and_huge_completions_have_reasons():
    assert "empty" in extract("  \n ", problem_id="p", source="s").error
    huge = "theorem t : 1 = 1 := by sorry\n" + "x" * MAX_COMPLETION_CHARS
    assert "too long" in extract(huge, problem_id="p", source="s").error
    assert garbage_reason("ok\ufffd") is not None and garbage_reason("theorem t : True") is None


def test_first_block_with_a_theorem_is_taken_and_other_languages_ignored():
    text = ("```python\nprint('theorem t : False')\n```\n"
            "```lean\ntheorem a (x : ℕ) : x = x := by sorry\n```\n"
            "```lean\ntheorem b (y : ℕ) : y = 2 := by sorry\n```")
    got = extract(text, problem_id="p", source="s")
    assert got.problem.theorem().conclusion == "x = x"
    assert "3 code blocks" not in got.notes  # the python block is not a Lean block


def test_trailing_prose_without_proof_is_cut_and_imports_are_dropped():
    text = ("import Mathlib\nopen Real\n\ntheorem t (x : ℝ) (h : 0 < x) :\n  x ^ 2 > 0\n"
            "This holds because squares of positive numbers are positive.")
    got = extract(text, problem_id="p", source="s")
    assert got.problem.theorem().conclusion == "x ^ 2 > 0"
    assert "import" not in got.problem.statement


def test_missing_keyword_forms():
    only_binders = extract("(x : ℕ) (h : x = 2) : x + 1 = 3", problem_id="p", source="s")
    assert only_binders.problem.proposition() == "∀ (x : ℕ) (h : x = 2), x + 1 = 3"
    assert "added the `theorem` keyword" in only_binders.notes
    bare = extract("```lean\n∀ n : ℕ, n + 0 = n\n```", problem_id="p", source="s")
    assert bare.problem.proposition() == "∀ n : ℕ, n + 0 = n"
    prose = extract("I am not sure how to formalize this problem.", problem_id="p", source="s")
    assert not prose.ok and "no Lean statement" in prose.error


def test_statements_that_say_nothing_or_have_the_wrong_kind_are_refused():
    assert "sorry" in extract("theorem t (x : ℕ) : x = sorry := by sorry", problem_id="p", source="s").error
    hole = "abbrev a_answer : ℕ := sorry\ntheorem t : 2 + 2 = a_answer := by sorry"
    assert "answer hole" in extract(hole, problem_id="p", source="s", kind="prove").error
    assert extract(hole, problem_id="p", source="s").problem.kind == "compute"
    plain = "theorem t : 2 + 2 = 4 := by sorry"
    assert "`compute` problem needs" in extract(plain, problem_id="p", source="s", kind="compute").error


def test_provenance_and_header_are_kept():
    got = extract("theorem t : True := trivial", problem_id="p", source="s", header="import Mathlib\n",
                  provenance={"model": "m", "sample": 3})
    assert got.problem.provenance == {"model": "m", "sample": 3}
    assert got.problem.header == "import Mathlib\n"


def test_extract_lean_joins_blocks_or_takes_code_after_prose():
    two = "First:\n```lean\ndef a : ℕ := 1\n```\nthen\n```lean4\ntheorem t : a = 1 := rfl\n```\nDone."
    assert extract_lean(two) == "def a : ℕ := 1\n\ntheorem t : a = 1 := rfl\n"
    assert extract_lean("We compute.\nabbrev x_answer : ℕ := 3\n#eval x_answer") == "abbrev x_answer : ℕ := 3\n#eval x_answer\n"
    assert extract_lean("no code at all") is None
    assert extract_lean("") is None


def test_lean_names_from_ids():
    assert lean_name("gsm8k-train-5") == "gsm8k_train_5"
    assert lean_name("123") == "p_123"
    assert lean_name("---") == "problem"
    assert lean_name("theorem") == "p_theorem"
    parse_theorem(f"theorem {lean_name('MATH/algebra 12.json')} : True")


def test_auxiliary_definitions_are_not_answer_holes():
    text = ("def f : ℕ → ℕ := fun n => 2 * n\nabbrev result : ℕ := sorry\n"
            "theorem t (x : ℕ) (h : x = f 3) : x = result := by sorry")
    got = extract(text, problem_id="p", source="s")
    assert (got.problem.kind, got.problem.answer_name) == ("compute", "result")
    assert "def f" not in got.problem.statement
    only_aux = extract("def f : ℕ := 3\ntheorem t : f = 3 := by sorry", problem_id="p", source="s")
    assert only_aux.problem.kind == "prove"


# ---------------------------------------------------------------------------------------------
# Names: the model's own are kept (it copies them into its solution); unsafe ones are renamed or
# the statement refused, and a statement read this way never lets a wrong solution verify.
# ---------------------------------------------------------------------------------------------
WORLD = ("```lean\nabbrev cards_count_answer : N := sorry\ntheorem cards_count (cards : N) "
         "(h₀ : Eq cards (N.add N.four N.two)) : Eq cards cards_count_answer := by sorry\n```")


def test_the_models_names_and_one_line_layout_are_kept():
    from lean_prelude import MINI_PRELUDE

    got = extract(WORLD, problem_id="test-add-0", source="s", header=MINI_PRELUDE)
    assert got.ok and not got.notes
    assert got.problem.statement == WORLD.split("```lean\n")[1].split("```")[0]  # exactly as written
    assert (got.problem.theorem_name, got.problem.answer_name) == ("cards_count", "cards_count_answer")
    laid_out = ("theorem t (x : ℕ) -- the count\n    (h : x = 2) :\n    x + 1 = 3 := by\n  simp")
    assert extract(laid_out, problem_id="p", source="s").problem.statement == (
        "theorem t (x : ℕ)\n    (h : x = 2) :\n    x + 1 = 3 := by sorry\n")


def hostile(statement: str) -> str:
    from lean_prelude import MINI_PRELUDE

    return extract(statement, problem_id="test-1", source="s", header=MINI_PRELUDE)


@pytest.mark.parametrize("theorem, why", [
    ("Eq.symm", "not one plain ASCII identifier"),       # the prelude's own theorem
    ("N", "header already declares"),                     # a prelude type
    ("_root_.cards", "not one plain ASCII identifier"),
    ("«cards count»", "not one plain ASCII identifier"),
    ("«Eq»", "not one plain ASCII identifier"),
    ("cαrds", "not one plain ASCII identifier"),          # a Greek α (Lean reads it)
    ("_missing", "not one plain ASCII identifier"),
    ("cards_answer", "the answer's name too"),
])
def test_unsafe_theorem_names_are_renamed_with_a_note(theorem, why):
    got = hostile(f"abbrev cards_answer : N := sorry\ntheorem {theorem} (cards : N) (h₀ : Eq cards N.two) : "
                  "Eq cards cards_answer := by sorry")
    assert got.ok, got.error
    assert got.problem.theorem_name == "test_1" and got.problem.answer_name == "cards_answer"
    assert any(n.startswith(f"theorem `{theorem}` renamed `test_1`") and why in n for n in got.notes), got.notes


@pytest.mark.parametrize("declared, used", [("«cards_answer»", "cards_answer"), ("cards_answer", "«cards_answer»"),
                                            ("_root_.cards_answer", "cards_answer"), ("Foo.cards_answer", "Foo.cards_answer"),
                                            ("cαrds_answer", "cαrds_answer")])  # a Greek α
def test_answer_names_that_are_not_plain_are_renamed_everywhere(declared, used):
    got = hostile(f"abbrev {declared} : N := sorry\ntheorem cards (cards : N) (h₀ : Eq cards N.two) : "
                  f"Eq cards {used} := by sorry")
    assert got.ok, got.error
    new = got.problem.answer_name
    if declared == "cards_answer":  # a plain name, referred to in another spelling: kept, and the reference read
        assert new == "cards_answer" and got.problem.theorem().conclusion == "Eq cards «cards_answer»"
        return
    assert new == "cards_answer" and any(n.startswith(f"answer `{declared}` renamed") for n in got.notes)
    assert got.problem.theorem().conclusion == "Eq cards cards_answer"
    assert declared not in got.problem.statement and used not in got.problem.statement.replace("cards_answer", "")


@pytest.mark.parametrize("statement, why", [
    ("abbrev N.two : N := sorry\ntheorem t (x : N) (h : Eq x N.four) : Eq x N.two := by sorry", "header already"),
    ("abbrev Eq : N := sorry\ntheorem t (x : N) : Eq x Eq := by sorry", "header already"),
    ("abbrev x_answer : N := sorry\ntheorem t (x_answer : N) : Eq x_answer x_answer := by sorry", "binds the answer"),
    ("abbrev x_answer : N := sorry\ntheorem t (x : N) (h : ∀ x_answer : N, Eq x x_answer) : Eq x x_answer := by sorry",
     "binds the answer"),
    ("abbrev x_answer : N := sorry\ntheorem t : Eq (fun x_answer => x_answer) (fun y => x_answer) := by sorry",
     "binds the answer"),
])
def test_answers_that_cannot_be_made_safe_are_refused(statement, why):
    got = hostile(statement)
    assert not got.ok and why in got.error


def test_renaming_reads_lean_tokens_not_text():
    got = hostile('abbrev «a b» : N := sorry\ntheorem t (x : N) (h : Eq x «a b».succ) : Eq x N.two := by sorry')
    # `«a b»` with a space is not read as a hole at all (the statement has none): a plain theorem
    assert got.ok and got.problem.kind == "prove"
    got = hostile("abbrev «t_answer» : N := sorry\ntheorem t (x : N) (t_answer_2 : N) : Eq x t_answer.succ := by sorry")
    assert got.problem.answer_name == "t_answer"  # the plain spelling of the same name
    assert got.problem.theorem().binders == "(x : N) (t_answer_2 : N)"  # a longer name is another name
    assert got.problem.theorem().conclusion == "Eq x t_answer.succ"


def test_kept_names_never_let_a_wrong_solution_verify(kernel):
    """End to end on the real kernel: the statement as extracted (names kept), then hostile solutions."""
    from lean_prelude import MINI_PRELUDE
    from solve_in_lean.solve import target_of
    from solve_in_lean.verify import verify

    problem = extract(WORLD, problem_id="p", source="s", header=MINI_PRELUDE).problem

    def verdict(code):
        return verify(code, kernel, header=MINI_PRELUDE, target=target_of(problem), answer_name=problem.answer_name)

    right = ("noncomputable abbrev cards_count_answer : N := N.add N.four N.two\n"
             "theorem cards_count (cards : N) (h₀ : Eq cards (N.add N.four N.two)) : Eq cards cards_count_answer := h₀\n")
    assert verdict(right).verified
    wrong_value = right.replace(":= N.add N.four N.two\n", ":= N.four\n")
    other_theorem = right.replace("(h₀ : Eq cards (N.add N.four N.two))", "(h₀ : Eq cards N.four)").replace(
        ":= N.add N.four N.two\n", ":= N.four\n")
    elsewhere = ("namespace Foo\n" + right + "end Foo\n")  # the names, but in another namespace
    for code in (wrong_value, other_theorem, elsewhere, "theorem unrelated : True := True.intro\n"):
        v = verdict(code)
        assert not v.verified, code
    # why a theorem named after the header's is renamed: the solution could not declare it (the header
    # has), and the header's own theorem would stand in for a proof the solution never gave, which
    # verify refuses on its own too (the code must declare the target)
    symm = hostile("theorem Eq.symm {α : Sort u} {a b : α} (h : Eq a b) : Eq b a := by sorry").problem
    assert symm.theorem_name == "test_1"
    from solve_in_lean.verify import Target
    nothing = "theorem unrelated : True := True.intro\n"
    unrenamed = Target("Eq.symm", symm.proposition())
    v = verify(nothing, kernel, header=MINI_PRELUDE, target=unrenamed)
    assert not v.verified and v.reasons == ["the code does not declare `Eq.symm`: a theorem of that name from "
                                            "the header or a library is not the code's proof"], v.reasons
    assert not verify(nothing, kernel, header=MINI_PRELUDE, target=target_of(symm)).verified


def test_the_quantities_of_a_prelude_statement_are_read_whole():
    """The cheap faithfulness check reads the prelude's numerals: the world model's statement of
    "6 cards on Monday and 8 on Tuesday" covers 6 and 8; one with 4 and 2 in place of the 6 does not."""
    from autoformalize.faithfulness import cheap_checks

    question = "Max found 6 cards on Monday and 8 cards on Tuesday. How many cards did Max find?"
    right = extract(WORLD.replace("(N.add N.four N.two)", "(N.add (N.add N.four N.two) (N.add N.four N.four))"),
                    problem_id="p", source=question).problem
    assert cheap_checks(right).coverage == 1.0
    wrong = extract(WORLD.replace("(N.add N.four N.two)", "(N.add (N.add N.four N.four) (N.add N.four N.two))")
                    .replace("N.add N.four N.four", "N.add N.four (N.add N.four N.one)"),
                    problem_id="p", source=question).problem
    checks = cheap_checks(wrong)
    assert checks.coverage == 0.5 and checks.missing == ["8"]
