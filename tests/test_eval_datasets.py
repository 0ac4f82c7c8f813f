"""Evaluation data loaders on the shipped GSM8K and miniF2F files, a MATH-format fixture and our
own JSONL format; subsampling by seed; what each task can use."""

import json
from pathlib import Path

import pytest

from solve_in_lean.eval.datasets import gsm8k_cot_text, select, usable
from solve_in_lean.problems import DatasetError, detect_format, load_items

ROOT = Path(__file__).resolve().parents[1]
GSM8K = ROOT / "../shared/data/gsm8k/train_sample.jsonl"
MINIF2F = ROOT / "../shared/data/minif2f/minif2f_lean4.jsonl"
MATH = ROOT / "tests/data/math_tiny.jsonl"
TINY_EVAL = ROOT / "examples/data/tiny_eval.jsonl"


def test_gsm8k_items_have_question_reference_and_solution():
    items = load_items(GSM8K)
    assert len(items) == 1000 and len({it["id"] for it in items}) == 1000
    first = json.loads(GSM8K.read_text().splitlines()[0])
    it = items[0]
    assert it["dataset"] == "gsm8k" and it["id"] == first["id"] and it["question"] == first["question"]
    assert it["answer"] == first["answer"] == first["solution"].rsplit("####", 1)[1].strip()
    assert it["formal"] is None


def test_math_answers_come_from_the_last_box():
    items = load_items(MATH)
    assert detect_format(json.loads(MATH.read_text().splitlines()[0])) == "math"
    assert [it["answer"] for it in items] == ["17", r"\frac{3}{4}", "8", "4"]
    assert [it["id"] for it in items] == ["math-1", "math-2", "math-3", "math-4"]
    assert items[2]["meta"] == {"level": "Level 2", "type": "Algebra"}


def test_minif2f_items_are_prove_statements_with_their_header():
    items = load_items(MINIF2F)
    assert len(items) == 488
    it = items[0]
    assert it["formal"]["kind"] == "prove" and it["formal"]["theorem_name"] == it["id"]
    assert "import Mathlib" in it["formal"]["header"]
    assert len(load_items(MINIF2F, split="test")) == 244
    assert usable("prove", items, MINIF2F) == items
    with pytest.raises(DatasetError, match="English problem"):
        usable("cot", items, MINIF2F)


def test_own_format_with_formal_statements_and_proofs():
    items = load_items(TINY_EVAL)
    by_id = {it["id"]: it for it in items}
    assert by_id["cats"]["formal"]["kind"] == "compute" and by_id["cats"]["formal"]["answer_name"] == "cats_answer"
    assert by_id["one_add_one"]["formal"]["kind"] == "prove" and "proof" in by_id["one_add_one"]["meta"]
    assert [it["id"] for it in usable("prove", items, TINY_EVAL)] == ["one_add_one", "two_mul_two"]
    assert len(usable("backtranslate", items, TINY_EVAL)) == 4


def test_own_format_aliases_and_errors(tmp_path):
    f = tmp_path / "mine.jsonl"
    f.write_text('{"id": 7, "problem": "What is 2 + 2?", "answer": 4}\n'
                 '{"name": "t", "formal_statement": "theorem t : 1 = 1 := by", "header": "import Mathlib"}\n')
    items = load_items(f, "jsonl")
    assert items[0] == {"id": "7", "dataset": "mine", "question": "What is 2 + 2?", "answer": "4", "solution": None,
                        "formal": None, "meta": {}}
    assert items[1]["formal"]["statement"].startswith("theorem t") and items[1]["formal"]["header"] == "import Mathlib"
    f.write_text('{"id": "a", "question": "Q?"}\n{"id": "a", "question": "R?"}\n')
    with pytest.raises(DatasetError, match="appears twice"):
        load_items(f)
    f.write_text('{"id": "a", "question": "Q?"}\nnot json\n')
    with pytest.raises(DatasetError, match="mine.jsonl:2"):
        load_items(f)
    f.write_text('{"id": "a", "question": "Q?", "formal": {"kind": "compute"}}\n')
    with pytest.raises(DatasetError, match="lacks statement"):
        load_items(f)
    with pytest.raises(DatasetError, match="no such file"):
        load_items(tmp_path / "none.jsonl")


def test_subsampling_is_deterministic_under_a_seed_and_keeps_file_order():
    items = load_items(GSM8K)
    a, b, c = select(items, 5, 0), select(items, 5, 0), select(items, 5, 1)
    assert a == b and [it["id"] for it in a] != [it["id"] for it in c]
    positions = [items.index(it) for it in a]
    assert positions == sorted(positions)
    assert select(items, None, 0) == items and select(items[:3], 10, 0) == items[:3]


def test_gsm8k_solution_as_chain_of_thought():
    text = gsm8k_cot_text("She has 2*3 = <<2*3=6>>6 apples.\n#### 6")
    assert text == "She has 2*3 = 6 apples.\nThe answer is 6."
