"""The small world: curriculum (determinism, disjoint splits, kernel-checked solutions), and the
CPU-trained model on the verified path and in the transfer harness (positive controls).

The model tests are `slow`: they train the model once (minutes on two cores) into the user cache,
or reuse it there, and then evaluate through `eval.run.evaluate`, `eval.transfer` and `eval.iterate`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoformalize.problem import FormalProblem
from solve_in_lean.eval.datasets import usable
from solve_in_lean.problems import load_items
from solve_in_lean.solve import target_of
from solve_in_lean.verify import VerifyRequest, verify_many
from solve_in_lean.world.curriculum import (SPLITS, TEMPLATES, export, generate, make_problem, num, numeral,
                                            printed, source, split_frames, split_numbers, value_of)

ROOT = Path(__file__).resolve().parents[1]
PRELUDE = (ROOT / "examples" / "prelude.lean").read_text(encoding="utf-8")


def _value(term: str) -> int:
    """A numeral's value, read independently of `numeral` (N.add N.four X is 4 + X)."""
    small = {"N.zero": 0, "N.one": 1, "N.two": 2, "N.three": 3, "N.four": 4}
    term = term.strip()
    while term.startswith("(") and term.endswith(")"):
        term = term[1:-1].strip()
    if term in small:
        return small[term]
    head = "N.add N.four "
    assert term.startswith(head), term
    return 4 + _value(term[len(head):])


@pytest.mark.parametrize("n", range(0, 25))
def test_numerals_denote_their_value(n):
    assert _value(numeral(n)) == n and value_of(num(n)) == n
    assert printed(num(n)) == numeral(n).replace("N.add N.four", "N.four.add")


def test_generation_is_seeded_and_unlimited():
    a, b = generate("train", 50, seed=3), generate("train", 50, seed=3)
    assert [p.to_row() for p in a] == [p.to_row() for p in b]
    assert [p.question for p in generate("train", 50, seed=4)] != [p.question for p in a]
    many = generate("train", 5000, seed=0)
    assert len({p.id for p in many}) == 5000
    assert {p.template for p in many} == set(TEMPLATES)


def test_splits_are_disjoint_by_wording_and_by_numbers():
    for t in TEMPLATES.values():
        frames = {s: set(split_frames(t, s)) for s in SPLITS}
        numbers = {s: set(split_numbers(t, s)) for s in SPLITS}
        for i, s in enumerate(SPLITS):
            assert frames[s] and numbers[s], (t.name, s)
            for other in SPLITS[i + 1:]:
                assert not frames[s] & frames[other] and not numbers[s] & numbers[other]
    problems = {s: generate(s, 400, seed=1) for s in SPLITS}
    seen = {(p.template, p.frame) for p in problems["train"]}, {(p.template, p.numbers) for p in problems["train"]}
    for p in problems["test"] + problems["valid"]:
        assert (p.template, p.frame) not in seen[0] and (p.template, p.numbers) not in seen[1]
    assert {p.id for p in problems["train"]}.isdisjoint(p.id for p in problems["test"])


def test_problem_fields_agree():
    p = make_problem("two-step", 0, (3, 4, 2), id="two_step_9", name="Tom", other="Ann", obj="pens")
    assert p.value == 14 and p.solution.endswith("The answer is 14.")
    assert "3 * 4 = 12" in p.solution and "12 + 2 = 14" in p.solution
    assert source(p.term) == "N.add (N.mul N.three N.four) N.two" and f":= {source(p.term)}\n" in p.proof
    assert "3" in p.question and "4" in p.question and "2" in p.question
    assert p.statement.startswith("abbrev pens_count_answer : N := sorry\ntheorem pens_count (pens : N)")
    assert p.to_row("cot")["answer"] == "14" and p.to_row("lean")["answer"] == "(N.three.mul N.four).add N.two"
    assert p.to_row("prove")["formal"]["kind"] == "prove"
    with pytest.raises(ValueError):
        p.to_row("nonsense")
    with pytest.raises(ValueError):
        generate("holdout", 1)


def test_export_is_read_by_eval(tmp_path):
    paths = export(tmp_path, {"train": 8, "test": 4}, seed=0)
    assert set(paths) == {"train", "train_sample", "train_sample_prove", "train_cot", "train_prove", "test",
                          "test_cot", "test_prove"}
    assert len(load_items(paths["train_sample"])) == 8
    for task, name in (("lean-solve", "test"), ("formalize", "test"), ("backtranslate", "test"),
                       ("cot", "test_cot"), ("prove", "test_prove")):
        items = load_items(paths[name])
        assert len(usable(task, items, paths[name])) == 4
    item = load_items(paths["test"])[0]
    assert item["formal"]["kind"] == "compute" and item["meta"]["proof"] and item["solution"]


def test_export_command(tmp_path):
    import subprocess
    import sys

    def run(*args):
        return subprocess.run([sys.executable, "-m", "solve_in_lean", "world", "export", *args],
                              capture_output=True, text=True, timeout=120)

    done = run("--out", str(tmp_path / "w"), "--train", "6", "--valid", "0", "--test", "2")
    assert done.returncode == 0, done.stderr
    assert len(load_items(tmp_path / "w" / "train.jsonl")) == 6 and not (tmp_path / "w" / "valid.jsonl").exists()
    bad = run("--out", str(tmp_path / "w"), "--test", "-1")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "Traceback" not in bad.stderr


def _requests(rows):
    out = []
    for row in rows:
        fp = FormalProblem.from_dict({"id": row["id"], "source": row["question"], **row["formal"], "header": PRELUDE})
        out.append((row, VerifyRequest(row["proof"], PRELUDE, target_of(fp),
                                       fp.answer_name if fp.kind == "compute" else None)))
    return out


def test_the_kernel_verifies_every_template_and_rejects_a_wrong_answer(kernel):
    problems = [p for s in SPLITS for p in generate(s, 8, seed=2)]
    rows = [p.to_row("lean") for p in problems] + [p.to_row("prove") for p in problems[:8]]
    reqs = _requests(rows)
    verdicts = verify_many([r for _, r in reqs], kernel)
    assert all(v.verified for v in verdicts), [v.reasons for v in verdicts if not v.verified]
    for (row, _), v in zip(reqs, verdicts):
        if row["formal"]["kind"] == "compute":
            assert " ".join(v.answer.split()) == row["answer"]  # the reference is what Lean prints
    # negative control: an answer one too high does not verify (the kernel decides, not the text)
    p = problems[0]
    wrong = p.proof.replace(f":= {source(p.term)}\n", f":= {numeral(p.value + 1)}\n")
    assert wrong != p.proof
    same = p.proof.replace(f":= {source(p.term)}\n", f":= {numeral(p.value)}\n")  # the value itself
    verdicts = verify_many([_requests([{**p.to_row("lean"), "proof": code}])[0][1] for code in (wrong, same)], kernel)
    assert not verdicts[0].verified and verdicts[1].verified
    assert " ".join(verdicts[1].answer.split()) == printed(num(p.value))  # Lean reports what was written


def test_the_refine_stage_trains_on_training_problems_only(tmp_path):
    """The build's refine stage is an ordinary iterate config: its pool is the training split, its
    evaluation the validation split (so the test split stays unseen), starting from the world stage."""
    import shutil

    from solve_in_lean.eval.iterate import load_config
    from solve_in_lean.world.model import DEFAULT_RECIPE, PRELUDE, WorldModel, refine_config

    wm = WorldModel(tmp_path, DEFAULT_RECIPE)
    (tmp_path / "data").mkdir()
    shutil.copyfile(PRELUDE, tmp_path / "data" / "prelude.lean")
    (tmp_path / "refine.toml").write_text(refine_config(wm), encoding="utf-8")
    cfg = load_config(tmp_path / "refine.toml", out=wm.refine_run)
    assert [(p.task, p.data) for p in cfg.pools] == [("lean-solve", tmp_path / "data" / "train.jsonl")]
    assert [e.data for e in cfg.evals] == [tmp_path / "data" / "valid.jsonl"]
    assert cfg.settings.model.model == str(wm.world) and cfg.rounds == DEFAULT_RECIPE.refine_rounds
    assert cfg.header == PRELUDE.read_text(encoding="utf-8") and cfg.weights == {"lean-solve": 1.0}


# ---------------------------------------------------------------------------------------------
# The trained model (slow: trained once into the user cache, minutes on two cores, then reused)
# ---------------------------------------------------------------------------------------------
VERIFIED_FLOOR = 0.40
"""The built (refined) model's verified rate on the 100 held-out lean-solve test problems must reach
this (measured: 0.55 with the default recipe, 0.475 on the first 40; bench/small_world.py prints
it). The world stage alone reaches 0.24; the build's refine stage (two rounds of self-iteration on
training problems) lifts it (docs/evaluation.md, "The small world")."""


@pytest.mark.slow
def test_the_trained_model_verifies_held_out_problems(world_model, kernel, tmp_path, torch_one_thread):
    """Positive control on the verified path: the model the build makes (trained on every task, then
    on its own verified programs) against the base model (never trained on solving), both through
    eval.run on the same held-out problems."""
    from solve_in_lean.eval.report import compare
    from solve_in_lean.eval.run import load_run
    from solve_in_lean.world.measure import measure

    world = measure(world_model.model, world_model.data, kernel, tmp_path / "world", header=PRELUDE)
    base = measure(world_model.base, world_model.data, kernel, tmp_path / "base", header=PRELUDE)
    m, b = world["lean-solve"]["metrics"], base["lean-solve"]["metrics"]
    assert world["lean-solve"]["items"] == 100 and world["lean-solve"]["errors"] == 0
    assert m["verified_rate"]["value"] >= VERIFIED_FLOOR, m
    assert b["verified_rate"]["value"] == 0, b
    paired = compare(load_run(tmp_path / "base" / "lean-solve"), load_run(tmp_path / "world" / "lean-solve"))
    assert paired["verified_rate"].p_value < 0.05, paired["verified_rate"]
    # a verified answer is Lean's printing of a computation the kernel reduced to the statement's value
    records = [json.loads(line) for line in (tmp_path / "world" / "lean-solve" / "records.jsonl").open()]
    verified = [r for r in records if r["scores"]["verified_rate"]]
    assert verified and all(r["pipeline"]["lean_code"] and r["pipeline"]["verified"] for r in verified)
    # the model is the refine stage's last round, trained on verified programs of every round
    refine = world_model.training["refined"]
    last = world_model.refine_run / f"round-{len(refine['rounds'])}" / "model"
    assert world_model.model.resolve() == last.resolve() and all(r["kept"] > 0 for r in refine["rounds"])


def example_on(world_model, name: str, tmp_path: Path) -> Path:
    """examples/NAME rewritten to read the built world model (where the example expects
    `runs/small-world`), beside a copy of the prelude it names."""
    text = (ROOT / "examples" / name).read_text(encoding="utf-8")
    text = text.replace("../runs/small-world", str(world_model.root)).replace('"runs/small-world',
                                                                             f'"{world_model.root}')
    (tmp_path / "prelude.lean").write_text(PRELUDE, encoding="utf-8")
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path / name


@pytest.mark.slow
def test_transfer_shows_that_training_on_a_task_raises_it(world_model, tmp_path, torch_one_thread):
    """Positive control of the research harness, on examples/transfer_small_world.toml: its `informal`
    mixture (cot examples) raises held-out cot accuracy over the base model with p < 0.05 in the
    harness's own paired test (measured: 0 -> 0.15, 6 of 40 items, p = 0.031). To keep the test
    short it runs that one mixture and column; the `lean` and `prove` rows of the full example moved
    nothing in our run (docs/evaluation.md)."""
    import dataclasses

    from solve_in_lean.eval.transfer import load_config, run_transfer

    cfg = load_config(example_on(world_model, "transfer_small_world.toml", tmp_path), out=tmp_path / "out")
    cfg = dataclasses.replace(cfg, evals=[e for e in cfg.evals if e.task == "cot"],
                              mixtures=[m for m in cfg.mixtures if m.name == "informal"])
    result = run_transfer(cfg, progress=False)
    column = "cot:accuracy"
    assert result.values["base"][column] == 0
    assert result.delta("informal", column) >= 0.1 and result.p_values["informal"][column] < 0.05, result.table()
    assert result.heatmap_path.is_file()


@pytest.mark.slow
def test_iteration_raises_the_verified_rate(world_model, tmp_path, torch_one_thread):
    """Positive control of self-iteration, on examples/iterate_small_world.toml cut to one round and
    its lean-solve evaluation (about two minutes): the model trained on its own Lean-verified
    programs verifies more of the 100 held-out test problems than the model it started from, in the
    iteration's own paired test on the same items (measured: 0.24 -> 0.50, p = 3e-6). The example
    starts from the world stage, before the build's own refinement (which is this loop run on
    validation problems instead of test ones, twice)."""
    import dataclasses

    from solve_in_lean.eval.iterate import load_config, run_iteration

    cfg = load_config(example_on(world_model, "iterate_small_world.toml", tmp_path), out=tmp_path / "out")
    cfg = dataclasses.replace(cfg, rounds=1, evals=[e for e in cfg.evals if e.task == "lean-solve"])
    result = run_iteration(cfg, progress=False)
    column = "lean-solve:verified_rate"
    start, after = result.rows[0]["values"][column], result.rows[1]["values"][column]
    assert result.rows[1]["collected"]["examples"] > 0
    assert after > start and result.rows[1]["p_values"][column] < 0.05, result.table()
