"""The `code` and `augment` training tasks of transfer experiments: code targets are programs the
real sandbox ran and whose printed answer is the reference; augment examples are new problems the
real kernel certified, with provenance, none repeating an evaluation item; both in the unified
format, and a transfer run trains and evaluates on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lean_prelude import MINI_PRELUDE
from solve_in_lean.code.sandbox import SandboxLimits, run_python
from solve_in_lean.code.solver import COMPUTED_BY_PYTHON, printed_answer
from solve_in_lean.eval.trainingdata import (_record_programs, augmented_examples, code_examples, examples_from,
                                             gsm8k_program)
from solve_in_lean.eval.transfer import ConfigError, load_config
from solve_in_lean.problems import DatasetError, load_items
from solve_in_lean.prompts import get_prompt

ROOT = Path(__file__).resolve().parents[1]
GSM8K = (ROOT / "../shared/data/gsm8k/train_sample.jsonl").resolve()
AUGMENT_SOURCE = ROOT / "examples/data/tiny_augment_source.jsonl"
TINY_EVAL = ROOT / "examples/data/tiny_eval.jsonl"
SANDBOX = run_python("print(1)", SandboxLimits()).status != "sandbox_error"
needs_sandbox = pytest.mark.skipif(not SANDBOX, reason="the sandbox needs Linux with Landlock and libseccomp2 "
                                                       "(docs/code_interpreter.md)")


def test_a_gsm8k_solution_becomes_an_exact_program():
    solution = ("She has 3 bags of 2.5 kg, 3 * 2.5 = <<3*2.5=7.5>>7.5 kg.\n"
                "Shared by 4: 7.5/4 = <<7.5/4=1.875>>1.875 kg.\n#### 1.875")
    program = gsm8k_program(solution)
    assert program.splitlines() == ["from fractions import Fraction", "# She has 3 bags of 2.5 kg, 3 * 2.5 = 7.5 kg.",
                                    'step1 = 3*Fraction("2.5")', "# Shared by 4: 7.5/4 = 1.875 kg.",
                                    'step2 = Fraction("7.5")/Fraction(4)', "print(step2)"]
    assert gsm8k_program("No calculator notes here.\n#### 3") is None


@needs_sandbox
def test_code_targets_are_programs_whose_sandbox_output_is_the_reference():
    items = load_items(GSM8K)[:12]
    candidates = [({"data_sha256": "s", "id": it["id"]}, it["question"], it["answer"], gsm8k_program(it["solution"]))
                  for it in items]
    hostile = [({"data_sha256": "s", "id": "wrong"}, "Q?", "5", "print(4)"),
               ({"data_sha256": "s", "id": "crash"}, "Q?", "5", "print(1 / 0)"),
               ({"data_sha256": "s", "id": "escape"}, "Q?", "5", "import os\nprint(5)")]
    examples = code_examples(candidates + hostile)
    ids = {e["source"]["id"] for e in examples}
    assert not ids & {"wrong", "crash", "escape"} and len(ids) >= 9  # most GSM8K notes compute their answer
    reference = {it["id"]: it["answer"] for it in items}
    code = get_prompt("code")
    for write, answer in zip(examples[::2], examples[1::2]):
        assert write["task"] == answer["task"] == "code" and write["source"] == answer["source"]
        assert write["messages"][0] == {"role": "system", "content": code.system}
        block = write["messages"][-1]["content"]
        program = block.removeprefix("```python\n").removesuffix("\n```")
        run = run_python([program], SandboxLimits())  # the target prints the reference, checked again here
        assert run.ok and printed_answer(run.stdout) is not None
        assert [m["role"] for m in answer["messages"]] == ["system", "user", "assistant", "user", "assistant"]
        assert answer["messages"][2]["content"] == block and answer["messages"][3]["content"].startswith("```output\n")
        assert answer["messages"][-1]["content"] == f"The answer is {reference[write['source']['id']]}."


@needs_sandbox
def test_code_targets_from_an_eval_code_run_are_rerun_before_use():
    def record(rid, answer, cells, source=COMPUTED_BY_PYTHON, accuracy=True):
        turns = [{"text": "", "code": c, "run": {"status": "ok"}} for c in cells]
        return {"id": rid, "task": "code", "item": {"question": f"Q {rid}?"}, "reference": "12",
                "scores": {"accuracy": accuracy}, "samples": [{"turns": turns, "answer": answer, "source": source}]}

    records = [record("good", "12", ["x = 3 * 4", "print(x)"]), record("asserted", "12", ["print(12)"], "unverified"),
               record("lied", "12", ["print(11)"]), record("wrong", "7", ["print(7)"], accuracy=False)]
    candidates = list(_record_programs(records, "sha"))
    assert [c[0]["id"] for c in candidates] == ["good", "lied"]
    examples = code_examples(candidates)  # the record says 12 was printed; the sandbox says 11: dropped
    assert {e["source"]["id"] for e in examples} == {"good"}
    assert examples[0]["messages"][-1]["content"] == "```python\nx = 3 * 4\n\nprint(x)\n```"


def test_augment_examples_need_a_transfer_run():
    with pytest.raises(DatasetError, match="augment examples are made by a transfer run"):
        examples_from("augment", AUGMENT_SOURCE)


def test_augment_examples_are_certified_new_problems_that_never_repeat_an_eval_item(kernel, tmp_path):
    sources = load_items(AUGMENT_SOURCE)
    examples, summary = augmented_examples(AUGMENT_SOURCE, kernel, header=MINI_PRELUDE, output=tmp_path / "a.jsonl",
                                           exclude=load_items(TINY_EVAL), k=2)
    assert summary.sources == len(sources) and summary.kept == len(examples) >= len(sources)
    questions = {it["question"] for it in sources}
    solve = get_prompt("lean_solve")
    for ex in examples:
        assert ex["task"] == "augment" and ex["messages"][0]["content"] == solve.system
        assert ex["provenance"]["mode"] == "numbers" and ex["provenance"]["lean"]["verified"] is True
        assert ex["provenance"]["source_id"] in {it["id"] for it in sources} and ex["provenance"]["changes"]
        assert ex["source"]["id"].startswith(ex["provenance"]["source_id"] + ".numbers.")
        assert not any(q in ex["messages"][1]["content"] for q in questions)  # new wording, not a source
        assert ex["messages"][2]["content"].startswith("```lean\nnoncomputable abbrev")

    # an evaluation split that holds one of those new problems: it is dropped as a leak
    leaked = json.loads((tmp_path / "a.jsonl").read_text().splitlines()[0])
    again, summary = augmented_examples(AUGMENT_SOURCE, kernel, header=MINI_PRELUDE, output=tmp_path / "b.jsonl",
                                        exclude=[leaked], k=2)
    assert leaked["id"] not in {e["source"]["id"] for e in again} and len(again) == len(examples) - 1
    assert any("evaluation split" in reason for reason in summary.dropped)
    # a source that is itself an evaluation item is not varied at all
    sha = examples[0]["source"]["data_sha256"]
    held, _ = augmented_examples(AUGMENT_SOURCE, kernel, header=MINI_PRELUDE, output=tmp_path / "c.jsonl",
                                 exclude=[], held_out={(sha, sources[0]["id"])}, k=2)
    assert sources[0]["id"] not in {e["provenance"]["source_id"] for e in held}


CONFIG = """
seed = 0
tiny_model = true
examples = 8
[model]
backend = "transformers"
max_new_tokens = 8
[lean]
backend = "kernel"
header = "{prelude}"
[train]
method = "full"
max_steps = 2
batch_size = 4
lr = 1e-3
max_seq_len = 384
[data]
code = "{code}"
lean-solve = "{augment}"
augment = "{augment}"
[augment]
k = 1
[[eval]]
task = "code"
data = "{gsm8k}"
limit = 1
[[eval]]
task = "lean-solve"
data = "{eval}"
limit = 1
metric = "verified_rate"
[[mixtures]]
name = "code"
weights = {{ code = 1 }}
[[mixtures]]
name = "augmented"
weights = {{ lean-solve = 1, augment = 1 }}
"""


@needs_sandbox
def test_transfer_trains_on_code_and_augment_and_evaluates_code(kernel, tmp_path):
    from solve_in_lean.cli import _register, app

    rows = [json.loads(line) for line in GSM8K.read_text().splitlines()[:20]]
    (tmp_path / "code.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tmp_path / "exp.toml"
    config.write_text(CONFIG.format(prelude=ROOT / "examples/prelude.lean", code=tmp_path / "code.jsonl",
                                    augment=AUGMENT_SOURCE, gsm8k=tmp_path / "code.jsonl", eval=TINY_EVAL))
    out = tmp_path / "out"
    _register()
    result = CliRunner().invoke(app, ["transfer", "--mixtures", str(config), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    matrix = json.loads(result.stdout)
    assert matrix["rows"] == ["base", "code", "augmented"]
    assert matrix["columns"] == ["code:accuracy", "lean-solve:verified_rate"]
    code = [json.loads(line) for line in (out / "data" / "code.jsonl").read_text().splitlines()]
    assert len(code) == 8 and {e["task"] for e in code} == {"code"}
    [evaluated] = [json.loads(line)["id"] for line in (out / "runs" / "base" / "code" / "records.jsonl").open()]
    assert evaluated not in {e["source"]["id"] for e in code}  # the code eval's item is held out
    mixed = [json.loads(line) for line in (out / "data" / "augmented.jsonl").read_text().splitlines()]
    assert {e["task"] for e in mixed} == {"lean-solve", "augment"}
    assert all("provenance" in e for e in mixed if e["task"] == "augment")
    assert (out / "augment" / "tiny_augment_source.jsonl").is_file()


def test_augment_table_is_checked(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('tiny_model = true\n[augment]\nk = 0\n[[eval]]\ntask = "cot"\ndata = "x.jsonl"\n'
                   '[[mixtures]]\nname = "m"\nweights = { cot = 1 }\n[data]\ncot = "x.jsonl"\n')
    with pytest.raises(ConfigError, match=r"\[augment\] takes one key, k"):
        load_config(bad)


@pytest.mark.parametrize("name", ["transfer_tiny.toml", "transfer_7b.toml"])
def test_example_configs_train_on_code_and_augment_and_evaluate_code(name):
    cfg = load_config(ROOT / "examples" / name)
    assert "code" in {e.task for e in cfg.evals}
    weighted = {t for m in cfg.mixtures for t, w in m.weights.items() if w > 0}
    assert {"code", "augment"} <= weighted and {"code", "augment"} <= set(cfg.data)
