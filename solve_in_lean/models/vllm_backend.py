"""Offline batched generation with vLLM on CUDA GPUs.

All prompts of a call go to one `LLM.generate`, which schedules them itself (continuous
batching). Message lists are rendered with the model's chat template here, so chat and plain
prompts share that one batch. Each prompt gets its own seed derived from (seed, prompt), as
in the transformers backend, so its samples do not depend on its neighbours.
"""

from __future__ import annotations

from typing import Sequence

from .base import (Completion, GenerationError, Generator, Prompt, SamplingParams, checked_completion,
                   join_messages, sample_seed)

INSTALL_HINT = "the vllm backend needs vLLM and a CUDA GPU: pip install 'lean-solve[vllm]'"


class VllmGenerator(Generator):
    """`vllm.LLM(model, **engine_args)`; engine args such as tensor_parallel_size,
    gpu_memory_utilization, dtype or max_model_len pass straight through."""

    backend = "vllm"

    def __init__(self, model: str, *, logprobs: bool = True, use_tqdm: bool = True,
                 **engine_args: object) -> None:
        try:
            import vllm
        except ImportError as e:
            raise GenerationError(f"{INSTALL_HINT} ({e})") from e
        self.model = model
        self.logprobs = logprobs
        self.use_tqdm = use_tqdm
        self._vllm = vllm
        self.llm = vllm.LLM(model=model, **engine_args)
        self.tokenizer = self.llm.get_tokenizer()

    def _input(self, prompt: Prompt) -> dict:
        if isinstance(prompt, str):
            return {"prompt": prompt}
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            # The template already holds BOS; tokenizing the text again must not add another.
            return {"prompt_token_ids": self.tokenizer.encode(text, add_special_tokens=False)}
        return {"prompt": join_messages(prompt)}

    def _sampling(self, prompt: Prompt, params: SamplingParams) -> object:
        return self._vllm.SamplingParams(
            n=params.n, temperature=params.temperature, top_p=params.top_p,
            max_tokens=params.max_new_tokens, stop=list(params.stop) or None,
            seed=None if params.seed is None else sample_seed(params.seed, prompt, 0),
            logprobs=0 if self.logprobs else None)

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        outputs = self.llm.generate([self._input(p) for p in prompts],
                                    [self._sampling(p, params) for p in prompts], use_tqdm=self.use_tqdm)
        return [[self._completion(out, len(request.prompt_token_ids or [])) for out in request.outputs]
                for request in outputs]

    @staticmethod
    def _completion(out: object, prompt_tokens: int) -> Completion:
        reason = {"stop": "stop", "length": "length"}.get(out.finish_reason, "error")
        errors = [] if reason != "error" else [f"vLLM ended the sequence with {out.finish_reason!r}"]
        return checked_completion(out.text, reason, prompt_tokens=prompt_tokens,
                                  completion_tokens=len(out.token_ids), logprob=out.cumulative_logprob,
                                  errors=errors)

    def close(self) -> None:
        self.llm = None
