"""Transfer experiments on the real tiny model: the training loss goes down (full and LoRA), the
training data is in one chat format with the prompt masked, mixtures follow their weights, and
`lean-solve transfer` produces a matrix and a heatmap, reusing what an earlier run trained."""

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from lean_prelude import MINI_PRELUDE
from solve_in_lean.cli import _register, app
from solve_in_lean.eval.finetune import IGNORE, TrainConfig, encode_example, finetune
from solve_in_lean.eval.trainingdata import allocate, examples_from, mix, record_examples
from solve_in_lean.eval.transfer import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
GSM8K = ROOT / "../shared/data/gsm8k/train_sample.jsonl"
TINY_TRAIN = ROOT / "examples/data/tiny_train.jsonl"
pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def examples():
    return examples_from("formalize", TINY_TRAIN) + examples_from("cot", GSM8K)[:4]


@pytest.mark.parametrize("method, lr, checkpointing", [("full", 3e-3, False), ("lora", 1e-2, True)])
def test_training_loss_goes_down(tiny_model_dir, examples, tmp_path, method, lr, checkpointing):
    cfg = TrainConfig(method=method, max_steps=10, batch_size=4, lr=lr, max_seq_len=256, lora_r=8, warmup_ratio=0,
                      gradient_checkpointing=checkpointing)  # LoRA as configured for 7B: with checkpointing
    result = finetune(tiny_model_dir, examples, tmp_path / "model", cfg)
    first, last = sum(result.losses[:3]) / 3, sum(result.losses[-3:]) / 3
    print(f"{method}: loss {first:.3f} -> {last:.3f} over {result.steps} steps in {result.seconds:.1f} s")
    assert result.steps == len(result.losses) == 10
    assert last < first - 0.1
    saved = json.loads((tmp_path / "model" / "train.json").read_text())
    assert saved["result"]["losses"] == result.losses and saved["config"]["method"] == method
    assert not (tmp_path / "model" / "adapter_config.json").exists()  # LoRA is merged: loads like any model

    from solve_in_lean.models import SamplingParams, load_generator

    out = load_generator("transformers", str(tmp_path / "model")).generate(
        [examples[0]["messages"][:-1]], SamplingParams(max_new_tokens=4))
    assert out[0][0].completion_tokens >= 1


def test_examples_share_one_chat_format_and_only_the_answer_is_learned(tiny_model_dir, examples):
    from transformers import AutoTokenizer

    cot = examples[-1]
    assert cot["task"] == "cot" and [m["role"] for m in cot["messages"]] == ["system", "user", "assistant"]
    assert "<<" not in cot["messages"][-1]["content"] and "The answer is" in cot["messages"][-1]["content"]
    formalize = examples[0]
    assert formalize["messages"][-1]["content"].startswith("```lean\nabbrev apples_answer : N := sorry")
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids, labels = encode_example(tok, cot["messages"], 4096)
    answer = tok(cot["messages"][-1]["content"], add_special_tokens=False).input_ids + [tok.eos_token_id]
    assert labels[-len(answer):] == answer == ids[-len(answer):]
    assert set(labels[:-len(answer)]) == {IGNORE}
    short_ids, short_labels = encode_example(tok, cot["messages"], len(answer) + 5)
    assert len(short_ids) == len(answer) + 5 and short_labels[-len(answer):] == answer  # the prompt is cut, not the answer


def test_mixtures_follow_their_weights():
    assert allocate(10, {"a": 1, "b": 1, "c": 0}) == {"a": 5, "b": 5}
    assert allocate(10, {"a": 2, "b": 1}) == {"a": 7, "b": 3}
    assert sum(allocate(7, {"a": 1, "b": 1, "c": 1}).values()) == 7
    pools = {"a": [{"task": "a", "i": i} for i in range(3)], "b": [{"task": "b", "i": i} for i in range(50)]}
    chosen = mix(pools, {"a": 1, "b": 1}, 20, seed=0)
    assert chosen == mix(pools, {"a": 1, "b": 1}, 20, seed=0)
    assert sum(e["task"] == "a" for e in chosen) == 10  # a pool of 3 is repeated, not padded with b
    with pytest.raises(ValueError, match="no c training examples"):
        mix(pools, {"c": 1}, 4, seed=0)


def test_solutions_are_verified_before_they_are_trained_on(kernel, tmp_path):
    rows = [json.loads(line) for line in TINY_TRAIN.read_text().splitlines()]
    rows[4]["proof"] = rows[4]["proof"].replace("Eq.refl N.four", "Eq.refl N.three")  # a wrong proof
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proofs = examples_from("prove", data, checker=kernel, header=MINI_PRELUDE)
    assert sorted(e["source"]["id"] for e in proofs) == ["add_two_of_eq_two", "one_mul_three", "zero_add_two"]
    assert proofs[0]["messages"][-1]["content"].startswith("```lean\ntheorem")
    programs = examples_from("lean-solve", data, checker=kernel, header=MINI_PRELUDE)
    assert len(programs) == 4 and "Problem: " in programs[0]["messages"][1]["content"]
    record = {"id": "p", "task": "prove", "proof": "theorem t : True := True.intro",
              "item": {"formal": {"statement": "theorem t : True := by sorry"}}}
    assert record_examples("prove", [record, {**record, "proof": None}], "sha")[0]["source"] == {"data_sha256": "sha",
                                                                                                  "id": "p"}


CONFIG = """
seed = 0
tiny_model = true
examples = 8
[model]
backend = "transformers"
max_new_tokens = 8
[lean]
backend = "kernel"
header = "prelude.lean"
[train]
method = "full"
max_steps = 3
batch_size = 4
lr = 1e-3
max_seq_len = 192
[data]
formalize = "{train}"
prove = "{train}"
[[eval]]
task = "cot"
data = "{gsm8k}"
limit = 2
[[eval]]
name = "proofs"
task = "prove"
data = "{eval}"
limit = 1
[[mixtures]]
name = "formal"
weights = {{ formalize = 1, prove = 1 }}
"""


def test_transfer_command_writes_a_matrix_and_a_heatmap(kernel, tmp_path):
    (tmp_path / "prelude.lean").write_text(MINI_PRELUDE)
    config = tmp_path / "exp.toml"
    config.write_text(CONFIG.format(train=TINY_TRAIN, gsm8k=GSM8K.resolve(),
                                    eval=ROOT / "examples/data/tiny_eval.jsonl"))
    out = tmp_path / "out"
    _register()
    one_row = CliRunner().invoke(app, ["transfer", "--mixtures", str(config), "--out", str(out), "--only", "formal"])
    assert one_row.exit_code == 0, one_row.output
    assert "formal: training on 8 examples" in one_row.output and "without --only" in one_row.output
    assert not (out / "transfer.json").exists() and not (out / "runs" / "base").exists()
    result = CliRunner().invoke(app, ["transfer", "--mixtures", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "formal: using the model trained earlier" in result.output
    matrix = json.loads((out / "transfer.json").read_text())
    assert matrix["rows"] == ["base", "formal"] and matrix["columns"] == ["cot:accuracy", "proofs:pass@1"]
    for col in matrix["columns"]:
        v, b = matrix["values"]["formal"][col], matrix["values"]["base"][col]
        assert matrix["delta"]["formal"][col] == pytest.approx(v - b)
        assert 0 <= matrix["p_values"]["formal"][col] <= 1
        assert (out / "runs" / "formal" / col.split(":")[0] / "records.jsonl").is_file()
    assert len(matrix["training"]["formal"]["losses"]) == 3
    lines = result.output.splitlines()
    assert any(line.startswith("base (absolute)") for line in lines)
    assert any(line.startswith("formal ") and "(" in line for line in lines)
    with Image.open(out / "heatmap.png") as im:
        assert im.format == "PNG" and min(im.size) > 100
    trained = [json.loads(line) for line in (out / "data" / "formal.jsonl").read_text().splitlines()]
    assert len(trained) == 8 and {e["task"] for e in trained} == {"formalize", "prove"}

    again = CliRunner().invoke(app, ["transfer", "--mixtures", str(config), "--out", str(out), "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["values"] == matrix["values"]  # resumed: nothing retrained or re-run


@pytest.mark.parametrize("name", ["transfer_tiny.toml", "transfer_7b.toml"])
def test_example_configs_are_valid(name):
    cfg = load_config(ROOT / "examples" / name)
    assert {e.task for e in cfg.evals} >= {"cot", "lean-solve", "formalize", "backtranslate", "prove"}
    assert len(cfg.mixtures) >= 3
    if name == "transfer_tiny.toml":  # the 7B config names data the user provides
        assert all(p.exists() for paths in cfg.data.values() for p in paths)
        assert all(e.data.exists() for e in cfg.evals)


def test_config_errors_are_one_sentence(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[eval]]\ntask = "cot"\ndata = "x.jsonl"\n[[mixtures]]\nname = "m"\nweights = { prove = 1 }\n')
    with pytest.raises(ConfigError, match="weights \\['prove'\\] but \\[data\\] names no file"):
        load_config(bad)
    bad.write_text('[[eval]]\ntask = "guess"\ndata = "x.jsonl"\n')
    with pytest.raises(ConfigError, match="unknown task 'guess'"):
        load_config(bad)
    _register()
    result = CliRunner().invoke(app, ["transfer", "--mixtures", str(tmp_path / "none.toml")])
    assert result.exit_code == 2 and "no such config file" in result.output


def test_statements_from_a_formalize_run_become_training_pairs(kernel, tmp_path):
    from scripting import by_task
    from solve_in_lean.problems import load_items
    from solve_in_lean.eval.run import RECORDS, open_run, run_config
    from solve_in_lean.eval.tasks import TaskContext, TaskOptions, run_formalize
    from solve_in_lean.models.base import SamplingParams
    from solve_in_lean.models.scripted import ScriptedGenerator
    from solve_in_lean.records import ResultStore

    item = load_items(ROOT / "examples/data/tiny_eval.jsonl")[0]
    statement = item["formal"]["statement"]
    ctx = TaskContext(ScriptedGenerator(by_task({"formalize": f"```lean\n{statement}```", "judge": "Verdict: YES"})),
                      kernel, SamplingParams(), TaskOptions(), MINI_PRELUDE)
    record = {"id": item["id"], "task": "formalize", **run_formalize(item, ctx)}
    config = run_config(task="formalize", data=TINY_TRAIN, data_sha256="f" * 64, data_format="jsonl", split=None,
                        limit=None, seed=0, item_ids=[item["id"]], model={}, sampling={}, options=TaskOptions(),
                        header=MINI_PRELUDE, lean=None)
    run = open_run(tmp_path / "run", config, {})
    ResultStore(run.dir / RECORDS).add(record)
    [pair] = examples_from("formalize", run.dir)
    assert pair["messages"][1]["content"].endswith(item["question"])
    answer = pair["messages"][2]["content"]  # the extracted statement, line breaks its own
    assert answer.startswith("```lean\n") and " ".join(answer.split()) == " ".join(f"```lean {statement} ```".split())
    assert pair["source"] == {"data_sha256": "f" * 64, "id": item["id"]}
    [back] = examples_from("backtranslate", run.dir)
    assert back["messages"][2]["content"] == item["question"]
