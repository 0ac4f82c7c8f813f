"""Benchmark loaders on small files written in each benchmark's documented format (tests/data, a few
rows each, written for these tests): the items they give, the tasks that can use them, the errors."""

from pathlib import Path

import pytest

from solve_in_lean.eval.benchmarks import BENCHMARKS, load_benchmark
from solve_in_lean.eval.datasets import usable
from solve_in_lean.eval.run import select_items
from solve_in_lean.problems import DatasetError
from solve_in_lean.solve import target_of
from autoformalize.problem import FormalProblem

DATA = Path(__file__).parent / "data"


def test_proofnet_gives_statements_to_prove_under_their_header_by_split():
    items = load_benchmark(DATA / "proofnet_lean4.jsonl", "proofnet")
    assert [it["id"] for it in items] == ["exercise_1_1a_sketch", "exercise_2_3_sketch", "exercise_3_1_sketch"]
    first = items[0]
    assert first["question"].startswith("If $r$ is rational") and first["formal"]["kind"] == "prove"
    assert first["formal"]["header"].startswith("import Mathlib") and first["formal"]["theorem_name"] == first["id"]
    assert [it["id"] for it in load_benchmark(DATA / "proofnet_lean4.jsonl", "proofnet", split="test")] == \
        ["exercise_2_3_sketch", "exercise_3_1_sketch"]
    assert len(usable("prove", items, "p")) == 3


def test_putnambench_solution_holes_become_compute_problems_with_the_reference_value():
    value, theorem = load_benchmark(DATA / "putnambench_lean4.jsonl", "putnambench")
    assert value["formal"]["kind"] == "compute" and value["answer"] == "3"
    assert value["formal"]["answer_name"] == "putnam_sketch_a1_solution" and value["formal"]["answer_type"] == "ℕ"
    assert value["formal"]["header"] == "import Mathlib\nopen Real\n"
    assert "import" not in value["formal"]["statement"]
    params, args = FormalProblem.from_dict(value["formal"]).answer_params()
    assert params == "(putnam_sketch_a1_solution : ℕ)" and args == "putnam_sketch_a1_solution"
    assert target_of(FormalProblem.from_dict(value["formal"])).name == "putnam_sketch_a1"
    assert theorem["formal"]["kind"] == "prove" and theorem["answer"] is None
    assert [it["id"] for it in usable("prove", [value, theorem], "p")] == ["putnam_sketch_b2"]
    assert [it["id"] for it in usable("lean-solve", [value, theorem], "p")] == ["putnam_sketch_a1", "putnam_sketch_b2"]


def test_mathbench_renders_options_and_keeps_the_answer_letter():
    choice = load_benchmark(DATA / "mathbench_single_choice_en.jsonl", "mathbench")
    assert choice[0]["question"].endswith("A. $x$\nB. $2x$\nC. $x^2$\nD. $2$") and choice[0]["answer"] == "B"
    assert choice[0]["meta"] == {"type": "single_choice", "file": "mathbench_single_choice_en"}
    assert len({it["id"] for it in choice}) == 2
    cloze = load_benchmark(DATA / "mathbench_cloze_en.jsonl", "mathbench")
    assert cloze[0]["answer"] == "21" and cloze[0]["meta"]["type"] == "cloze"
    assert len(usable("cot", choice + cloze, "m")) == 3


def test_hungarian_exam_keeps_references_for_the_judge():
    items = load_benchmark(DATA / "hungarian_exam.jsonl", "hungarian")
    assert items[0]["answer"] == "39" and items[0]["solution"].startswith("The common difference")
    assert items[1]["answer"] is None and items[1]["meta"] == {"points": 3, "judged": True}
    assert [it["id"] for it in usable("cot", items, "h")] == ["hungarian-1"]  # only rows with an answer to match


def test_math500_reads_as_math_under_its_own_name():
    items = load_benchmark(DATA / "math500_test.jsonl", "math500")
    assert [(it["id"], it["answer"], it["dataset"]) for it in items] == [
        ("test/prealgebra/sketch-1.json", "6", "math500"), ("test/algebra/sketch-2.json", "5", "math500")]
    assert items[0]["meta"] == {"level": 1, "subject": "Prealgebra"}


def test_eval_selects_benchmark_items_and_records_the_format():
    selection = select_items("prove", DATA / "proofnet_lean4.jsonl", fmt="proofnet", split="test", limit=1, seed=3)
    assert selection.format == "proofnet" and len(selection.items) == 1 and selection.unusable == 0


@pytest.mark.parametrize("fmt", BENCHMARKS)
def test_a_file_of_another_shape_is_one_sentence_naming_the_line(fmt, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"nothing": 1}\n')
    with pytest.raises(DatasetError, match=rf"bad.jsonl:1: not a {fmt} row"):
        load_benchmark(bad, fmt)
    with pytest.raises(DatasetError, match="no such file"):
        load_benchmark(tmp_path / "missing.jsonl", fmt)
    with pytest.raises(DatasetError, match="unknown benchmark"):
        load_benchmark(bad, "imo-2030")
