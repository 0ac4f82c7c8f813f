"""The transformers backend on a real (tiny, random) Llama loaded through from_pretrained."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from solve_in_lean.models.base import GenerationError, SamplingParams, join_messages
from solve_in_lean.models.tiny import CORPUS, build_tiny_model
from solve_in_lean.models.transformers_backend import SeededSampler, TransformersGenerator, pick_device, pick_dtype

PROMPTS = ["The answer is", "theorem clips (april may : ℕ)", "Weng earns $12 an hour", "x"]
CHAT = [{"role": "system", "content": "Solve it."}, {"role": "user", "content": "How many clips?"}]

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def gen(tiny_model_dir) -> TransformersGenerator:
    return TransformersGenerator(str(tiny_model_dir), batch_size=8)


def texts(results) -> list[list[str]]:
    return [[c.text for c in cs] for cs in results]


def test_loads_real_model_folder_and_sets_missing_pad_token(gen, tiny_model_dir):
    assert (tiny_model_dir / "config.json").exists() and (tiny_model_dir / "tokenizer.json").exists()
    assert gen.hf_model.config.num_hidden_layers == 2
    assert gen.device == "cpu" and gen.dtype == torch.float32
    assert gen.tokenizer.padding_side == "left"
    assert gen.pad_id == gen.tokenizer.eos_token_id  # the tiny tokenizer ships without a pad token


def test_result_shapes_counts_and_logprobs(gen):
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=10, seed=1)
    results = gen.generate(PROMPTS, params)
    assert [len(cs) for cs in results] == [3] * len(PROMPTS)
    for prompt, cs in zip(PROMPTS, results):
        for c in cs:
            assert c.prompt_tokens == len(gen.encode(prompt))
            assert 1 <= c.completion_tokens <= 10
            assert c.finish_reason in ("stop", "length", "empty")
            assert c.logprob is not None and c.logprob < 0


def test_greedy_matches_a_hand_written_decoding_loop(gen):
    """Text, token count and summed logprob agree with a plain argmax loop over full forward passes."""
    prompt = "Natalia sold clips"
    [[c]] = gen.generate([prompt], SamplingParams(max_new_tokens=8))
    ids, new, total = gen.encode(prompt), [], 0.0
    with torch.no_grad():
        for _ in range(8):
            logprobs = torch.log_softmax(gen.hf_model(torch.tensor([ids + new])).logits[0, -1].float(), dim=-1)
            token = int(logprobs.argmax())
            total += float(logprobs[token])
            new.append(token)
            if token in gen.eos_ids:
                break
    assert c.text == gen.tokenizer.decode(new, skip_special_tokens=True)
    assert c.completion_tokens == len(new)
    assert c.logprob == pytest.approx(total, abs=1e-3)


def test_greedy_n_samples_are_identical_and_deterministic(gen):
    params = SamplingParams(n=3, max_new_tokens=12)
    first = texts(gen.generate(PROMPTS, params))
    assert all(len(set(t)) == 1 for t in first)
    assert texts(gen.generate(PROMPTS, params)) == first


def test_same_seed_same_samples_other_seed_other_samples(gen):
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=12, seed=7)
    a = texts(gen.generate(PROMPTS, params))
    assert texts(gen.generate(PROMPTS, params)) == a
    assert all(len(set(t)) > 1 for t in a)  # samples of one prompt differ from each other
    b = texts(gen.generate(PROMPTS, SamplingParams(n=4, temperature=1.0, max_new_tokens=12, seed=8)))
    assert a != b


def test_samples_do_not_depend_on_batch_size_or_order(gen):
    params = SamplingParams(n=2, temperature=1.0, top_p=0.9, max_new_tokens=12, seed=5)
    together = texts(gen.generate(PROMPTS, params))
    reordered = texts(gen.generate(PROMPTS[::-1], params))[::-1]
    old = gen.batch_size
    gen.batch_size = 2
    try:
        alone = [texts(gen.generate([p], params))[0] for p in PROMPTS]
    finally:
        gen.batch_size = old
    assert together == reordered == alone


def test_batched_greedy_equals_one_at_a_time(gen):
    params = SamplingParams(max_new_tokens=16)
    batched = gen.generate(PROMPTS + [CHAT], params)
    single = [gen.generate([p], params)[0] for p in PROMPTS + [CHAT]]
    assert texts(batched) == texts(single)
    assert [c[0].completion_tokens for c in batched] == [c[0].completion_tokens for c in single]


def late_chars(text: str) -> list[str]:
    """Printable characters that first occur in the last two thirds of `text`."""
    return [ch for i, ch in enumerate(text)
            if i >= len(text) // 3 and ch.isascii() and ch.isalnum() and text.index(ch) == i]


def test_stop_string_truncates_and_stops_early(gen):
    greedy = SamplingParams(max_new_tokens=24)
    [[full]] = gen.generate(["theorem clips"], greedy)
    assert full.finish_reason == "length"
    others = {p: gen.generate([p], greedy)[0][0].text for p in PROMPTS}
    # A stop string that ends "theorem clips" early while a batch neighbour runs on, so the
    # stopped row gets padded (pad is EOS for this tokenizer) and must not count the padding.
    stop, neighbour = next((ch, p) for ch in late_chars(full.text) for p, t in others.items() if ch not in t)
    [cut], [long] = gen.generate(["theorem clips", neighbour], SamplingParams(max_new_tokens=24, stop=("@@", stop)))
    assert cut.text == full.text[:full.text.index(stop)]
    assert stop not in cut.text
    assert cut.finish_reason == "stop"
    assert cut.completion_tokens < long.completion_tokens == 24  # generation stopped, not just the text
    # The count ends with the token that completed the stop string.
    [[upto]] = gen.generate(["theorem clips"], SamplingParams(max_new_tokens=cut.completion_tokens))
    [[before]] = gen.generate(["theorem clips"], SamplingParams(max_new_tokens=cut.completion_tokens - 1))
    assert stop in upto.text and stop not in before.text
    assert cut.logprob == pytest.approx(upto.logprob, abs=1e-4)


def test_completion_cut_to_nothing_is_flagged_empty(gen):
    starts = {p: gen.generate([p], SamplingParams(max_new_tokens=6))[0][0].text[:1] for p in CORPUS}
    prompt, first = next((p, s) for p, s in starts.items() if s and s != "\ufffd")
    [[c]] = gen.generate([prompt], SamplingParams(max_new_tokens=6, stop=(first,)))
    assert c.text == "" and c.finish_reason == "empty"
    assert "no text" in c.error


def test_length_cap_gives_finish_reason_length(gen):
    [[c]] = gen.generate(["The answer is"], SamplingParams(max_new_tokens=3))
    assert c.finish_reason == "length" and c.completion_tokens == 3


def test_invalid_utf8_from_the_model_is_flagged_not_raised(gen):
    results = gen.generate(PROMPTS, SamplingParams(n=4, temperature=1.0, max_new_tokens=16, seed=2))
    flagged = [c for cs in results for c in cs if "\ufffd" in c.text]
    assert flagged, "a random byte-level model emits partial UTF-8 sequences"
    assert all("invalid UTF-8" in c.error for c in flagged)
    assert all(c.error is None for cs in results for c in cs if "\ufffd" not in c.text and c.text.strip())


def test_chat_prompt_uses_the_chat_template_once(gen):
    ids = gen.encode(CHAT)
    rendered = gen.tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("<|assistant|>\n")
    assert ids == gen.tokenizer(rendered, add_special_tokens=False).input_ids
    assert ids.count(gen.tokenizer.bos_token_id) == 1


def test_without_chat_template_messages_are_joined_plainly(tmp_path):
    folder = build_tiny_model(tmp_path / "plain", chat_template=False)
    plain = TransformersGenerator(str(folder))
    assert plain.encode(CHAT) == plain.tokenizer(join_messages(CHAT)).input_ids
    assert join_messages(CHAT).endswith("User: How many clips?\n\nAssistant:")
    [[c]] = plain.generate([CHAT], SamplingParams(max_new_tokens=4))
    assert c.completion_tokens >= 1


def test_device_and_dtype_choice():
    assert pick_device("cpu") == "cpu"
    assert pick_device() in ("cuda", "mps", "cpu")
    assert pick_dtype(None, "cpu") == torch.float32
    assert pick_dtype("bf16", "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        pick_dtype("int3", "cpu")


def test_dtype_override_loads_and_generates(tiny_model_dir):
    half = TransformersGenerator(str(tiny_model_dir), dtype="bfloat16")
    assert half.hf_model.dtype == torch.bfloat16
    [[c]] = half.generate(["x"], SamplingParams(max_new_tokens=4))
    assert c.completion_tokens >= 1


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(GenerationError, match="could not load model"):
        TransformersGenerator(str(tmp_path / "no-such-model"))


@settings(max_examples=60, deadline=None)
@given(probs=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=8).filter(lambda p: sum(p) > 1e-3),
       u=st.floats(0.0, 0.999999), top_p=st.floats(0.05, 1.0))
def test_sampler_picks_a_token_inside_the_nucleus(probs, u, top_p):
    """Inverse-CDF sampling never picks a zero-probability token or one outside top-p."""
    p = torch.tensor(probs) / sum(probs)
    scores = torch.log(p).unsqueeze(0)
    sampler = SeededSampler(0, torch.tensor([[u]]), temperature=1.0, top_p=top_p, banned=None)
    token = sampler._sample(scores.clone(), torch.tensor([u])).item()
    assert p[token] > 0
    ranked = torch.sort(p, descending=True)
    mass_before = ranked.values[: (ranked.indices == token).nonzero().item()].sum().item()
    assert mass_before <= top_p + 1e-6


def test_sampler_frequencies_follow_the_distribution():
    p = torch.tensor([0.5, 0.3, 0.2, 0.0])
    u = torch.rand(20000, generator=torch.Generator().manual_seed(0))
    sampler = SeededSampler(0, None, temperature=1.0, top_p=1.0, banned=None)
    tokens = sampler._sample(torch.log(p).expand(20000, 4).clone(), u)
    freq = torch.bincount(tokens, minlength=4).float() / 20000
    assert torch.allclose(freq, p, atol=0.02)


def test_a_prompt_longer_than_the_context_fails_alone(gen):
    """A prompt longer than the config's positions gets error completions; the rest run."""
    assert gen.context == gen.hf_model.config.max_position_embeddings
    long_prompt = " ".join(["word"] * (gen.context + 10))
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=4, seed=1)
    results = gen.generate(["The answer is", long_prompt, "x"], params)
    assert [len(cs) for cs in results] == [2, 2, 2]
    assert all(c.finish_reason == "error" and f"context holds {gen.context}" in c.error for c in results[1])
    alone = gen.generate(["The answer is"], params)[0]
    assert texts([results[0]]) == texts([alone])  # its neighbours are unaffected (logprobs differ in padding noise)
    assert all(c.finish_reason != "error" for c in results[0] + results[2])


def test_any_load_failure_is_a_generation_error(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "llama", "vocab_size": "not a number"}')
    with pytest.raises(GenerationError, match="could not load model"):
        TransformersGenerator(str(tmp_path))
