"""Offline batched generation with vLLM on CUDA GPUs.

All prompts of a call go to one `LLM.generate`, which schedules them itself (continuous
batching). Prompts are tokenized here (message lists through the model's chat template), so
each is measured against the context (`max_model_len`): one that leaves no room for a new
token becomes an error completion instead of failing the whole call, and every request asks
for at most what fits. Greedy n>1 is one request, copied (vLLM refuses greedy n>1). Each
prompt gets its own seed derived from (seed, prompt), as in the transformers backend, so its
samples do not depend on its neighbours.
"""

from __future__ import annotations

from typing import Any, Sequence

from solve_in_lean.errors import UnavailableError

from .base import (Completion, GenerationError, Generator, Prompt, SamplingParams, checked_completion, copies,
                   join_messages, sample_seed, too_long)

INSTALL_HINT = "the vllm backend needs vLLM and a CUDA GPU: pip install 'lean-solve[vllm]'"


class VllmUnavailable(GenerationError, UnavailableError):
    """vLLM cannot run here (not installed, no CUDA GPU): one sentence, exit code 2."""


def sampling_kwargs(params: SamplingParams, prompt: Prompt, prompt_tokens: int, max_model_len: int,
                    logprobs: bool) -> dict[str, Any]:
    """Keyword arguments of `vllm.SamplingParams` for one prompt, within vLLM's rules: n=1 when
    greedy, and no more new tokens than the context has left after the prompt."""
    return dict(n=params.distinct, temperature=params.temperature, top_p=params.top_p,
                max_tokens=min(params.max_new_tokens, max_model_len - prompt_tokens),
                stop=list(params.stop) or None,
                seed=None if params.seed is None else sample_seed(params.seed, prompt, 0),
                logprobs=0 if logprobs else None)


class VllmGenerator(Generator):
    """`vllm.LLM(model, **engine_args)`; engine args such as tensor_parallel_size,
    gpu_memory_utilization, dtype or max_model_len pass straight through."""

    backend = "vllm"

    def __init__(self, model: str, *, logprobs: bool = True, use_tqdm: bool = True,
                 **engine_args: object) -> None:
        try:
            import vllm
        except ImportError as e:
            raise VllmUnavailable(f"{INSTALL_HINT} ({e})") from e
        import torch

        if not torch.cuda.is_available():
            raise VllmUnavailable("the vllm backend needs a CUDA GPU and torch sees none on this machine; "
                                  "use --model-backend transformers (CPU) or http (a remote server)")
        self.model = model
        self.logprobs = logprobs
        self.use_tqdm = use_tqdm
        self._vllm = vllm
        try:
            self.llm = vllm.LLM(model=model, **engine_args)
            self.tokenizer = self.llm.get_tokenizer()
            self.max_model_len = int(self.llm.llm_engine.model_config.max_model_len)
        except Exception as e:  # noqa: BLE001 - any load failure (path, memory, config) is one sentence
            first = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            raise GenerationError(f"could not load model {model!r} with vLLM: {first}") from e

    def encode(self, prompt: Prompt) -> list[int]:
        """Token ids as vLLM would make them; the chat template already holds BOS."""
        if isinstance(prompt, str):
            return self.tokenizer.encode(prompt)
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            return self.tokenizer.encode(text, add_special_tokens=False)
        return self.tokenizer.encode(join_messages(prompt))

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        ids = [self.encode(p) for p in prompts]
        results: list[list[Completion] | None] = [
            too_long(len(t), self.max_model_len, params.n) if len(t) >= self.max_model_len else None for t in ids]
        todo = [i for i, r in enumerate(results) if r is None]
        requests = [({"prompt_token_ids": ids[i]}, self._vllm.SamplingParams(
            **sampling_kwargs(params, prompts[i], len(ids[i]), self.max_model_len, self.logprobs))) for i in todo]
        for i, completions in zip(todo, self._run(requests, params.n)):
            results[i] = completions
        return [r for r in results if r is not None]

    def _run(self, requests: list[tuple[dict, Any]], n: int) -> list[list[Completion]]:
        """One batched call; if vLLM refuses it, each request alone, so one bad prompt costs only
        its own completions (vLLM's validation errors are not all ValueErrors). When every
        request fails alone too, the engine is broken: GenerationError, not a run of failures."""
        if not requests:
            return []
        try:
            return self._call(requests, n)
        except Exception as e:  # noqa: BLE001 - find the request vLLM refused, below
            failure: Exception = e
        out, refused = [], 0
        for request in (requests if len(requests) > 1 else []):
            try:
                out += self._call([request], n)
            except Exception as e:  # noqa: BLE001 - this prompt's completions say why
                refused += 1
                failure = e
                out.append([Completion(text="", finish_reason="error", error=f"vLLM refused the request: {_first(e)}")
                            for _ in range(n)])
        if refused == len(requests):
            raise GenerationError(f"vLLM failed on every request: {_first(failure)}") from failure
        return out

    def _call(self, requests: list[tuple[dict, Any]], n: int) -> list[list[Completion]]:
        outputs = self.llm.generate([r for r, _ in requests], [p for _, p in requests], use_tqdm=self.use_tqdm)
        return [copies([self._completion(out, len(r["prompt_token_ids"])) for out in request.outputs], n)
                for r, request in zip((r for r, _ in requests), outputs)]

    @staticmethod
    def _completion(out: object, prompt_tokens: int) -> Completion:
        reason = {"stop": "stop", "length": "length"}.get(out.finish_reason, "error")
        errors = [] if reason != "error" else [f"vLLM ended the sequence with {out.finish_reason!r}"]
        return checked_completion(out.text, reason, prompt_tokens=prompt_tokens,
                                  completion_tokens=len(out.token_ids), logprob=out.cumulative_logprob,
                                  errors=errors)

    def close(self) -> None:
        self.llm = None


def _first(error: BaseException) -> str:
    line = next((ln.strip() for ln in str(error).splitlines() if ln.strip()), "")
    return f"{type(error).__name__}: {line}"[:300]
