"""The `ray` generation backend: K replicas of a model on a Ray cluster, behind `Generator`.

    generator = load_generator("ray", "Goedel-LM/Goedel-Prover-V2-8B", inner="vllm", replicas=4,
                               tensor_parallel_size=2, address="auto")

Each replica is a Ray actor holding one inner generator (`vllm` by default, or `transformers`)
with `num_gpus = tensor_parallel_size` GPUs. A `generate` call splits its prompts into K
contiguous parts, one per replica, and joins the answers in order. The cache, batching,
repair and voting stay in the driver, exactly as with a local generator. Samples do not depend
on placement: every backend seeds each prompt's samples from (seed, prompt, index) alone
(`base.sample_seed`). A replica that dies (lost node, OOM) is restarted by Ray and its part is
retried (`max_task_retries`): generation with a seed is repeatable, so a retry changes nothing.

For single-round tasks (prove pass@k, chain of thought) `vllm_processor` builds the optional
Ray Data pipeline instead: `ray.data.llm.build_processor` over `vLLMEngineProcessorConfig`, fed
one row per sample (`sample_rows`, each with its own seed) and streaming into Lean-check actors
(`lean.ray_backend.LeanCheckStage`); it needs `pip install 'lean-solve[ray-llm]'` and GPUs.
"""

from __future__ import annotations

from typing import Any, Sequence

from .base import (Completion, GenerationError, Generator, Prompt, SamplingParams, checked_completion,
                   sample_seed)

INNER_BACKENDS = ("vllm", "transformers")
RAY_LLM_HINT = "the Ray Data pipeline needs ray[llm] and vLLM: pip install 'lean-solve[ray-llm]'"


class GeneratorActor:
    """What runs inside one Ray replica: the inner generator, loaded once."""

    def __init__(self, inner: str, model: str, options: dict[str, Any]) -> None:
        from solve_in_lean.models import load_generator

        self.generator = load_generator(inner, model, **options)

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        return self.generator.generate(prompts, params)

    def ready(self) -> int:
        """The replica's process id, once the model is loaded."""
        import os

        return os.getpid()


class RayGenerator(Generator):
    """K replicas of `inner` running `model`; other options go to the inner backend."""

    backend = "ray"

    def __init__(self, model: str, *, inner: str = "vllm", replicas: int | None = None,
                 num_gpus: float | None = None, num_cpus: float = 1, address: str | None = None,
                 max_restarts: int = 3, max_task_retries: int = 3, runtime_env: dict | None = None,
                 start_timeout_s: float = 900.0, **options: Any) -> None:
        if inner not in INNER_BACKENDS:
            raise GenerationError(f"unknown inner backend {inner!r} for ray; choose one of: {', '.join(INNER_BACKENDS)}")
        from solve_in_lean import raycluster
        from solve_in_lean.errors import UnavailableError

        try:
            self._ray = raycluster.import_ray()
            self._owns_ray = raycluster.connect(address)
        except UnavailableError as e:
            raise GenerationError(str(e)) from None
        self.model = model
        self.inner = inner
        if num_gpus is None:
            num_gpus = float(options.get("tensor_parallel_size", 1)) if inner == "vllm" else 0.0
        if inner == "vllm" and int(options.get("tensor_parallel_size", 1)) > 1:
            # The replica owns its GPUs (Ray sets CUDA_VISIBLE_DEVICES); vLLM's own processes use them.
            options.setdefault("distributed_executor_backend", "mp")
        info = raycluster.cluster_info()
        if num_gpus > info.gpus:
            self.close_ray()
            raise GenerationError(f"a {inner} replica needs {num_gpus:g} GPUs but the Ray cluster has "
                                  f"{info.gpus:g} ({info.summary()}); add GPU nodes or use inner='transformers'")
        self.replicas = replicas or max(1, int(info.gpus // num_gpus) if num_gpus else 1)
        remote = self._ray.remote(GeneratorActor).options(
            num_gpus=num_gpus, num_cpus=num_cpus, max_restarts=max_restarts,
            max_task_retries=max_task_retries, runtime_env=runtime_env)
        self._actors = [remote.remote(inner, model, options) for _ in range(self.replicas)]
        try:
            ready, late = self._ray.wait([a.ready.remote() for a in self._actors], num_returns=self.replicas,
                                         timeout=start_timeout_s)
            self._ray.get(ready)
        except self._ray.exceptions.RayActorError as e:
            self.close()
            raise GenerationError(f"a {inner} replica could not start on the Ray cluster: "
                                  f"{' '.join(str(e).split())[:400]}") from None
        if late:
            self.close()
            raise GenerationError(f"{len(late)} of {self.replicas} {inner} replicas found no room on the Ray "
                                  f"cluster within {start_timeout_s:g} s ({num_cpus:g} CPUs, {num_gpus:g} GPUs "
                                  "each); lower `replicas` or add nodes (`ray status` shows what is free)")

    def replica_pids(self) -> list[int]:
        """Process ids of the replicas (what a test that kills one aims at)."""
        return self._ray.get([a.ready.remote() for a in self._actors])

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        parts = split_evenly(list(prompts), len(self._actors))
        refs = [actor.generate.remote(part, params) for actor, part in zip(self._actors, parts) if part]
        try:
            answers = self._ray.get(refs)
        except self._ray.exceptions.RayActorError as e:
            raise GenerationError(f"a {self.inner} replica died and its retries ran out: "
                                  f"{' '.join(str(e).split())[:300]}") from None
        except self._ray.exceptions.RayTaskError as e:
            if isinstance(e.cause, GenerationError):  # the inner backend's own sentence
                raise e.cause from None
            raise
        return [completions for answer in answers for completions in answer]

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor, no_restart=True)
        self._actors = []
        self.close_ray()

    def close_ray(self) -> None:
        """Leave Ray if this generator joined it."""
        if self._owns_ray:
            self._ray.shutdown()
            self._owns_ray = False


def split_evenly(items: list, parts: int) -> list[list]:
    """`items` cut into `parts` contiguous pieces whose sizes differ by at most one."""
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (i < extra)
        out.append(items[start:end])
        start = end
    return out


# ---- the optional Ray Data pipeline (ray[llm] + vLLM) -------------------------------------------

def sample_rows(rows: Sequence[dict], k: int, params: SamplingParams, *, prompt_key: str = "prompt") -> list[dict]:
    """One row per (row, sample index) with that sample's own vLLM sampling params.

    The seed of sample i is `sample_seed(params.seed, prompt, i)`, the same seed the local
    backends give it, so which replica draws it (and in which batch) changes nothing.
    """
    out = []
    for row in rows:
        prompt = row[prompt_key]
        for i in range(k):
            out.append({**row, "sample_index": i, "sampling_params": vllm_sampling(params, prompt, i)})
    return out


def vllm_sampling(params: SamplingParams, prompt: Prompt, index: int) -> dict:
    """vLLM's sampling params for sample `index` of `prompt` (one sequence each)."""
    return {"n": 1, "temperature": params.temperature, "top_p": params.top_p,
            "max_tokens": params.max_new_tokens, "stop": list(params.stop) or None,
            "seed": None if params.seed is None else sample_seed(params.seed, prompt, index)}


def to_request(row: dict, *, prompt_key: str = "prompt") -> dict:
    """The processor's input row: chat messages go through the chat-template stage, text as is."""
    prompt = row[prompt_key]
    key = "prompt" if isinstance(prompt, str) else "messages"
    return {**{k: v for k, v in row.items() if k != prompt_key}, key: prompt}


def from_output(row: dict) -> dict:
    """The processor's output row with the generation as a checked `Completion` dict."""
    max_tokens = (row.get("sampling_params") or {}).get("max_tokens")
    tokens = int(row.get("num_generated_tokens") or 0)
    reason = "length" if max_tokens is not None and tokens >= max_tokens else "stop"
    completion = checked_completion(str(row.get("generated_text") or ""), reason,
                                    prompt_tokens=int(row.get("num_input_tokens") or 0), completion_tokens=tokens)
    keep = {k: v for k, v in row.items() if k not in ("generated_text", "generated_tokens", "prompt_token_ids",
                                                         "num_generated_tokens", "num_input_tokens", "metrics")}
    return {**keep, "completion": completion.to_dict()}


def vllm_processor(model: str, *, replicas: int = 1, tensor_parallel_size: int = 1, batch_size: int = 32,
                   chat: bool = True, **engine_kwargs: Any) -> Any:
    """A Ray Data processor generating one completion per row on `replicas` vLLM engines.

    Feed it `ray.data.from_items(sample_rows(...))`; chain `LeanCheckStage` after it to check
    the completions while later batches are still generating.
    """
    try:
        from ray.data.llm import build_processor, vLLMEngineProcessorConfig
    except ImportError as e:
        raise GenerationError(f"{RAY_LLM_HINT} ({e})") from None
    config = vLLMEngineProcessorConfig(
        model_source=model, engine_kwargs={"tensor_parallel_size": tensor_parallel_size, **engine_kwargs},
        concurrency=replicas, batch_size=batch_size, chat_template_stage=chat, tokenize_stage=chat,
        detokenize_stage=True)
    return build_processor(config, preprocess=to_request, postprocess=from_output)
