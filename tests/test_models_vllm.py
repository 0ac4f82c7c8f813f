"""The vLLM backend. It needs vLLM and a CUDA GPU; without them these tests skip and say why."""

from __future__ import annotations

import importlib.util

import pytest

from solve_in_lean.models import load_generator
from solve_in_lean.models.base import GenerationError, SamplingParams

HAVE_VLLM = importlib.util.find_spec("vllm") is not None


def cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


needs_gpu = pytest.mark.skipif(
    not (HAVE_VLLM and cuda_available()),
    reason="needs vLLM and a CUDA GPU: pip install 'lean-solve[vllm]' on a machine with a CUDA GPU")


@pytest.mark.skipif(HAVE_VLLM, reason="vLLM is installed here, so its absence cannot be tested")
def test_without_vllm_the_error_says_how_to_install_it():
    with pytest.raises(GenerationError, match=r"pip install 'lean-solve\[vllm\]'"):
        load_generator("vllm", "any-model")


@pytest.fixture(scope="module")
def tiny_vllm_dir(tmp_path_factory):
    from solve_in_lean.models.tiny import build_tiny_model

    # head size 64: GPU attention kernels do not support the 16 of the default tiny model
    return build_tiny_model(tmp_path_factory.mktemp("tiny-vllm"), hidden_size=128, num_heads=2)


@pytest.fixture(scope="module")
def vllm_gen(tiny_vllm_dir):
    gen = load_generator("vllm", str(tiny_vllm_dir), dtype="float32", gpu_memory_utilization=0.2,
                         max_model_len=512, enforce_eager=True, use_tqdm=False)
    yield gen
    gen.close()


PROMPTS = ["The answer is", "theorem clips", [{"role": "user", "content": "How many clips?"}]]


@pytest.mark.cuda
@needs_gpu
def test_shapes_seeds_and_stop_strings(vllm_gen):
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=12, seed=2)
    first = vllm_gen.generate(PROMPTS, params)
    assert [len(cs) for cs in first] == [3, 3, 3]
    assert all(c.logprob is not None and 1 <= c.completion_tokens <= 12 for cs in first for c in cs)
    again = vllm_gen.generate(PROMPTS, params)
    assert [[c.text for c in cs] for cs in again] == [[c.text for c in cs] for cs in first]
    [[full]] = vllm_gen.generate(["theorem"], SamplingParams(max_new_tokens=16))
    stop = next(ch for ch in full.text[3:] if ch.isascii() and ch.isalnum())
    [[cut]] = vllm_gen.generate(["theorem"], SamplingParams(max_new_tokens=16, stop=(stop,)))
    assert cut.text == full.text[:full.text.index(stop)] and cut.finish_reason in ("stop", "empty")


@pytest.mark.cuda
@needs_gpu
def test_greedy_agrees_with_the_transformers_backend(vllm_gen, tiny_vllm_dir):
    hf = load_generator("transformers", str(tiny_vllm_dir), device="cuda", dtype="float32")
    params = SamplingParams(max_new_tokens=8)
    assert [c[0].text for c in vllm_gen.generate(PROMPTS, params)] == [c[0].text for c in hf.generate(PROMPTS, params)]


# --- request building, against vLLM's documented rules (vLLM is not installed here) ----------
#
# `RuleKeepingLLM` stands in for `vllm.LLM` only to check what the backend *asks*: it refuses
# what vLLM refuses (greedy with n>1 raises VLLMValidationError, which in vLLM 0.33 is no
# ValueError; a prompt that fills `max_model_len`; more tokens than the context has left) and
# otherwise answers with scripted text. It is not a model and measures nothing.

class VLLMValidationError(Exception):
    """Like vLLM 0.33's: a client error, not a ValueError."""


class RuleKeepingLLM:
    def __init__(self, max_model_len: int, refuse=lambda ids: False):
        self.max_model_len = max_model_len
        self.refuse = refuse
        self.seen: list[tuple[list[int], dict]] = []

    def generate(self, inputs, params, use_tqdm=False):
        from types import SimpleNamespace

        out = []
        for inp, p in zip(inputs, params):
            ids = inp["prompt_token_ids"]
            if p["temperature"] == 0 and p["n"] > 1:
                raise VLLMValidationError("n must be 1 when using greedy sampling")
            if len(ids) >= self.max_model_len or len(ids) + p["max_tokens"] > self.max_model_len:
                raise VLLMValidationError(f"The prompt (total length {len(ids)}) is too long")
            if self.refuse(ids):
                raise VLLMValidationError("refused")
            self.seen.append((ids, p))
            out.append(SimpleNamespace(outputs=[
                SimpleNamespace(text=f"sample {k} of {len(ids)}", finish_reason="stop", token_ids=[1, 2],
                                cumulative_logprob=-1.0) for k in range(p["n"])]))
        return out


@pytest.fixture
def rule_keeping(tiny_model_dir):
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    from solve_in_lean.models.vllm_backend import VllmGenerator

    def make(max_model_len=64, refuse=lambda ids: False):
        gen = object.__new__(VllmGenerator)  # everything but loading the engine, which needs CUDA
        gen.model, gen.logprobs, gen.use_tqdm = "tiny", True, False
        gen._vllm = SimpleNamespace(SamplingParams=dict)  # records the keyword arguments vLLM would get
        gen.tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
        gen.llm = RuleKeepingLLM(max_model_len, refuse)
        gen.max_model_len = max_model_len
        return gen
    return make


def test_greedy_n_is_one_request_copied(rule_keeping):
    gen = rule_keeping()
    results = gen.generate(["The answer is", "x"], SamplingParams(n=4, temperature=0.0, max_new_tokens=8))
    assert [len(cs) for cs in results] == [4, 4]
    assert all(len({c.text for c in cs}) == 1 and cs[0].error is None for cs in results)
    assert [p["n"] for _, p in gen.llm.seen] == [1, 1]


def test_a_prompt_that_fills_the_context_fails_alone_and_the_rest_fit(rule_keeping):
    gen = rule_keeping(max_model_len=64)
    long_prompt = " ".join(["word"] * 100)
    results = gen.generate(["The answer is", long_prompt, "x"], SamplingParams(n=2, temperature=1.0,
                                                                                max_new_tokens=4096))
    assert [len(cs) for cs in results] == [2, 2, 2]
    assert all(c.finish_reason == "error" and "context holds 64" in c.error for c in results[1])
    assert all(c.error is None for c in results[0] + results[2])
    assert all(len(ids) + p["max_tokens"] == 64 for ids, p in gen.llm.seen)  # budget cut to what fits


def test_a_request_vllm_refuses_costs_only_its_own_completions(rule_keeping, tiny_model_dir):
    from transformers import AutoTokenizer

    bad = AutoTokenizer.from_pretrained(str(tiny_model_dir)).encode("x")
    gen = rule_keeping(refuse=lambda ids: ids == bad)
    results = gen.generate(["The answer is", "x"], SamplingParams(n=2, temperature=1.0, max_new_tokens=8))
    assert all(c.error is None for c in results[0])
    assert all("VLLMValidationError: refused" in c.error for c in results[1])


def test_an_engine_that_refuses_everything_is_a_generation_error(rule_keeping):
    gen = rule_keeping(refuse=lambda ids: True)
    with pytest.raises(GenerationError, match="every request"):
        gen.generate(["a", "b"], SamplingParams(n=1, temperature=1.0, max_new_tokens=8))


def test_without_cuda_vllm_is_one_clear_unavailable_error(monkeypatch):
    import sys
    import types

    import torch

    from solve_in_lean.errors import UnavailableError

    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))  # importable, as on a CPU box
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UnavailableError, match="needs a CUDA GPU") as err:
        load_generator("vllm", "any-model")
    assert isinstance(err.value, GenerationError) and err.value.exit_code == 2


def test_a_model_that_fails_to_load_is_a_generation_error(monkeypatch):
    import sys
    import types

    import torch

    def no_such_model(**kwargs):
        raise OSError("no file named config.json in /models/missing\nmore detail")
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=no_such_model))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(GenerationError, match="could not load model '/models/missing' with vLLM: no file named"):
        load_generator("vllm", "/models/missing")


def test_sampling_kwargs_follow_vllms_rules():
    from solve_in_lean.models.vllm_backend import sampling_kwargs

    greedy = sampling_kwargs(SamplingParams(n=8, temperature=0.0, max_new_tokens=32768), "p", 100, 40960, True)
    assert greedy["n"] == 1 and greedy["max_tokens"] == 32768 and greedy["logprobs"] == 0
    sampled = sampling_kwargs(SamplingParams(n=8, temperature=0.7, max_new_tokens=32768), "p", 10000, 40960, False)
    assert sampled["n"] == 8 and sampled["max_tokens"] == 30960 and sampled["logprobs"] is None


def test_new_token_budget_follows_the_model(tmp_path):
    """The default prover reasons before its Lean block: 512 new tokens cut it off (item 12). With
    no budget set anywhere, the model's preset budget applies; a budget set anywhere wins."""
    from solve_in_lean.models import DEFAULT_MODEL
    from solve_in_lean.settings import Settings, load_settings

    def budget(settings: Settings) -> int:
        return settings.model_config(cache_by_default=False).sampling.max_new_tokens

    default = SamplingParams().max_new_tokens
    assert budget(Settings()) == 32768 and DEFAULT_MODEL.endswith("Goedel-Prover-V2-8B")
    assert budget(Settings().with_flags(model={"model": "/models/Goedel-Prover-V2-32B"})) == 32768  # local folders
    assert budget(Settings().with_flags(model={"model": "deepseek-ai/DeepSeek-Prover-V2-7B"})) == 8192
    assert budget(Settings().with_flags(model={"model": "gpt2"})) == default
    assert budget(Settings().with_flags(model={"max_new_tokens": 100})) == 100
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nmax_new_tokens = 300\n")
    assert budget(load_settings(cfg)) == 300


@pytest.mark.skipif(not HAVE_VLLM, reason="vLLM is not installed (pip install 'lean-solve[vllm]'); "
                                          "the rules above encode what it accepts")
def test_the_real_vllm_accepts_the_sampling_params_we_build():
    import vllm

    from solve_in_lean.models.vllm_backend import sampling_kwargs

    for params in (SamplingParams(n=8, temperature=0.0, max_new_tokens=32768),
                   SamplingParams(n=8, temperature=0.7, top_p=0.95, stop=("```",), seed=3)):
        built = vllm.SamplingParams(**sampling_kwargs(params, "prompt", 100, 40960, True))
        assert built.n == params.distinct and built.max_tokens <= 40960 - 100
