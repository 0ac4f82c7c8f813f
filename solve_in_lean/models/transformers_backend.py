"""Local generation with Hugging Face transformers: batched, seeded per sequence, runs on CPU.

The next token is always chosen by our own logits processor (`SeededSampler`) inside an
otherwise greedy `model.generate` loop. That keeps the speed of the library loop (KV cache,
stop strings, EOS handling) while making each sequence draw its randomness from its own
generator, seeded by (seed, prompt, sample index): a prompt's samples do not depend on batch
size, order or neighbours. Numerics can still differ slightly between a padded batch and a
single prompt, so an exact tie in the logits may break differently; nothing else does.
"""

from __future__ import annotations

import sys
from typing import Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LogitsProcessor, LogitsProcessorList

from solve_in_lean.threads import model_threads

from .base import (Completion, GenerationError, Generator, Prompt, SamplingParams, checked_completion,
                   join_messages, sample_seed, too_long)

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


def pick_device(device: str | None = None) -> str:
    """`device` if given, else cuda, then mps, then cpu."""
    if device and device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype:
    """`dtype` if given, else bfloat16 on a GPU that has it and float32 everywhere else."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        cuda_bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)} or 'auto'")
    return DTYPES[dtype]


class SeededSampler(LogitsProcessor):
    """Picks each next token (argmax, or inverse-CDF sampling with one uniform per row and step)
    and records its log-probability under the model's unmodified distribution."""

    def __init__(self, prompt_len: int, uniforms: torch.Tensor | None, temperature: float,
                 top_p: float, banned: int | None) -> None:
        self.prompt_len = prompt_len
        self.uniforms = uniforms
        self.temperature = temperature
        self.top_p = top_p
        self.banned = banned
        self.logprobs: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logprobs = torch.log_softmax(scores, dim=-1)
        if self.banned is not None:
            scores[:, self.banned] = float("-inf")
        if self.uniforms is None:  # greedy: generate's own argmax picks the same token
            self.logprobs.append(logprobs.gather(1, scores.argmax(dim=-1, keepdim=True)).squeeze(1))
            return scores
        tokens = self._sample(scores, self.uniforms[:, input_ids.shape[1] - self.prompt_len])
        self.logprobs.append(logprobs.gather(1, tokens[:, None]).squeeze(1))
        return torch.full_like(scores, float("-inf")).scatter_(1, tokens[:, None], 0.0)

    def _sample(self, scores: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(scores / self.temperature, dim=-1)
        order = None
        if self.top_p < 1.0:
            probs, order = probs.sort(dim=-1, descending=True)
            before = probs.cumsum(dim=-1) - probs
            probs = probs.masked_fill(before > self.top_p, 0.0)
        cdf = probs.cumsum(dim=-1)
        pick = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True)
        pick = pick.clamp_(max=scores.shape[-1] - 1)
        return (pick if order is None else order.gather(1, pick)).squeeze(1)


class TransformersGenerator(Generator):
    """AutoModelForCausalLM + AutoTokenizer from a hub name or a local folder."""

    backend = "transformers"

    def __init__(self, model: str, *, device: str | None = None,
                 dtype: str | torch.dtype | None = None, batch_size: int = 16,
                 trust_remote_code: bool = False, revision: str | None = None, threads: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.batch_size = batch_size
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        if self.device == "cpu":  # on a GPU torch's CPU threads only feed it
            self.threads, warning = model_threads(threads)
            if warning:
                sys.stderr.write(f"lean-solve: warning: {warning}\n")
            torch.set_num_threads(self.threads)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                model, padding_side="left", trust_remote_code=trust_remote_code, revision=revision)
            # Straight onto the device: a 7B model in bf16 never needs a second copy in CPU memory.
            self.hf_model = AutoModelForCausalLM.from_pretrained(
                model, dtype=self.dtype, device_map=self.device, trust_remote_code=trust_remote_code,
                revision=revision)
        except Exception as e:  # noqa: BLE001 - any load failure (path, format, memory) is one GenerationError
            first = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            raise GenerationError(f"could not load model {model!r} with transformers: {first}") from e
        self.hf_model.eval()
        self.tokenizer.padding_side = "left"
        self.eos_ids = self._eos_ids()
        if not self.eos_ids:
            raise GenerationError(f"model {model!r} defines no EOS token, so generation could never stop")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.convert_ids_to_tokens(self.eos_ids[0])
        self.pad_id = self.tokenizer.pad_token_id

    def _eos_ids(self) -> list[int]:
        ids = self.hf_model.generation_config.eos_token_id
        ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    def encode(self, prompt: Prompt) -> list[int]:
        """Token ids of a prompt; message lists go through the chat template when there is one."""
        if isinstance(prompt, str):
            return self.tokenizer(prompt).input_ids
        if self.tokenizer.chat_template:
            text = self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            return self.tokenizer(text, add_special_tokens=False).input_ids
        return self.tokenizer(join_messages(prompt)).input_ids

    @property
    def context(self) -> int | None:
        """The model's context length in tokens, from its config (None when it states none)."""
        config = self.hf_model.config
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            value = getattr(config, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        encoded = [self.encode(p) for p in prompts]
        context = self.context
        results: list[list[Completion]] = [
            too_long(len(ids), context, params.n) if context is not None and len(ids) >= context else []
            for ids in encoded]
        per_batch = max(1, self.batch_size // params.distinct)
        # Longest first so each batch holds prompts of similar length (less padding).
        order = sorted((i for i in range(len(prompts)) if not results[i]), key=lambda i: -len(encoded[i]))
        batches = [order[i:i + per_batch] for i in range(0, len(order), per_batch)]
        for batch in batches:
            outs = self._generate_batch([prompts[i] for i in batch], [encoded[i] for i in batch], params)
            for i, out in zip(batch, outs):
                results[i] = out
        return results

    def _generate_batch(self, prompts: list[Prompt], encoded: list[list[int]],
                        params: SamplingParams) -> list[list[Completion]]:
        copies = 1 if params.greedy else params.n
        rows = [ids for ids in encoded for _ in range(copies)]
        batch = self.tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt").to(self.device)
        prompt_len = batch["input_ids"].shape[1]
        sampler = SeededSampler(prompt_len, self._uniforms(prompts, copies, params), params.temperature,
                                params.top_p, None if self.pad_id in self.eos_ids else self.pad_id)
        config = GenerationConfig(max_new_tokens=params.max_new_tokens, do_sample=False,
                                  eos_token_id=self.eos_ids, pad_token_id=self.pad_id,
                                  stop_strings=list(params.stop) or None)
        with torch.inference_mode():
            out = self.hf_model.generate(**batch, generation_config=config, tokenizer=self.tokenizer,
                                         logits_processor=LogitsProcessorList([sampler]))
        generated = out[:, prompt_len:].tolist()
        logprobs = torch.stack(sampler.logprobs, dim=1).tolist()
        lengths = [self._length(tokens, params.stop) for tokens in generated]
        texts = self.tokenizer.batch_decode([t[:n] for t, (n, _) in zip(generated, lengths)],
                                            skip_special_tokens=True)
        completions = [
            self._completion(text, n, ended, sum(lp[:n]), len(ids), params)
            for text, (n, ended), lp, ids in zip(texts, lengths, logprobs, rows)]
        grouped = [completions[i * copies:(i + 1) * copies] for i in range(len(prompts))]
        if copies == 1 and params.n > 1:  # greedy: every sample is the same text
            grouped = [[Completion(**c[0].to_dict()) for _ in range(params.n)] for c in grouped]
        return grouped

    def _uniforms(self, prompts: list[Prompt], copies: int, params: SamplingParams) -> torch.Tensor | None:
        """One uniform per (row, step), from the row's own generator when a seed is set."""
        if params.greedy:
            return None
        width = params.max_new_tokens + 1  # one spare: some loops run a step past the end
        if params.seed is None:
            return torch.rand(len(prompts) * copies, width).to(self.device)
        draws = [torch.rand(width, generator=torch.Generator().manual_seed(sample_seed(params.seed, p, j)))
                 for p in prompts for j in range(copies)]
        return torch.stack(draws).to(self.device)

    def _length(self, tokens: list[int], stop: tuple[str, ...]) -> tuple[int, bool]:
        """Number of tokens the row really generated, and whether it ended before the length cap.

        A row ends at EOS (counted) or, when a stop string ended it, right before the padding
        that follows. The pad token is never sampled when it differs from EOS, so there padding
        means the row had finished; when pad is EOS, a row whose text already holds a stop
        string was padded, not ended by the model.
        """
        for i, t in enumerate(tokens):
            if t == self.pad_id and (t not in self.eos_ids or self._holds_stop(tokens[:i], stop)):
                return i, True
            if t in self.eos_ids:
                return i + 1, True
        return len(tokens), False

    def _holds_stop(self, tokens: list[int], stop: tuple[str, ...]) -> bool:
        if not stop:
            return False
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return any(s in text for s in stop)

    @staticmethod
    def _completion(text: str, n_tokens: int, ended: bool, logprob: float, prompt_tokens: int,
                    params: SamplingParams) -> Completion:
        cuts = [text.find(s) for s in params.stop if s in text]
        if cuts:
            text, ended = text[:min(cuts)], True
        return checked_completion(text, "stop" if ended else "length", prompt_tokens=prompt_tokens,
                                  completion_tokens=n_tokens, logprob=logprob)

    def close(self) -> None:
        self.hf_model = None
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
