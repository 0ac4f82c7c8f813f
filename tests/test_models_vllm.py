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
