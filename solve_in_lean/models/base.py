"""The one generation interface every stage uses, whatever backend runs the model.

Shapes follow vLLM's `LLM.generate(prompts, SamplingParams)` split: a prompt list and one
params object in, a list (per prompt) of `n` completions out.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Literal, Sequence, Union

ChatMessage = dict  # {"role": "system"|"user"|"assistant", "content": str}
Prompt = Union[str, list[ChatMessage]]
"""A plain string is sent as is; a list of chat messages goes through the model's chat template."""

FinishReason = Literal["stop", "length", "error", "empty"]


class GenerationError(RuntimeError):
    """A backend could not produce completions (unreachable server, bad model path, ...)."""


@dataclass(frozen=True)
class SamplingParams:
    """How to sample; part of the cache key, so every field must be JSON-serialisable."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def distinct(self) -> int:
        """How many samples to really ask for: greedy decoding has one answer, so n>1 greedy is
        one request whose completion is copied (vLLM rejects greedy n>1 outright)."""
        return 1 if self.greedy else self.n

    def to_dict(self) -> dict:
        return {**asdict(self), "stop": list(self.stop)}


@dataclass
class Completion:
    """One sampled continuation of a prompt."""

    text: str
    finish_reason: FinishReason = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    logprob: float | None = None
    """Summed log-probability of the completion tokens, when the backend reports it."""
    error: str | None = None
    """Why a completion is empty or unusable (garbage from the model or server); None if fine."""
    cached: bool = field(default=False, compare=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("cached")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Completion":
        return cls(**{k: d[k] for k in ("text", "finish_reason", "prompt_tokens",
                                         "completion_tokens", "logprob", "error") if k in d})


class Generator(ABC):
    """A language model behind one call. Backends subclass this; callers never know which."""

    backend: str = "base"
    model: str = ""

    @abstractmethod
    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        """Return, for each prompt, `params.n` completions in order."""

    def close(self) -> None:
        """Release GPU memory, connections, worker threads."""

    def __enter__(self) -> "Generator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def copies(completions: list[Completion], n: int) -> list[Completion]:
    """`n` completions from the distinct ones asked for: a greedy answer copied n times."""
    if len(completions) >= n:
        return completions[:n]
    return [Completion(**completions[i % len(completions)].to_dict()) for i in range(n)]


def too_long(prompt_tokens: int, context: int, n: int) -> list[Completion]:
    """The error completions of a prompt that leaves no room in the model's context."""
    why = (f"the prompt has {prompt_tokens} tokens and the model's context holds {context}, "
           "so no token could be generated")
    return [Completion(text="", finish_reason="error", prompt_tokens=prompt_tokens, error=why) for _ in range(n)]


def canonical_json(obj: object) -> str:
    """One spelling per value (sorted keys, no spaces, raw Unicode): hashes and cache keys use it."""
    import json

    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sample_seed(seed: int, prompt: Prompt, index: int) -> int:
    """The seed of sample `index` for `prompt`: depends on the prompt's content, not its position.

    Backends that can seed each sequence use it, so a prompt's samples do not change with
    batch size, batch order or the other prompts in a request, and match what the cache stores
    under the same (prompt, params, seed) key.
    """
    import hashlib

    digest = hashlib.sha256(canonical_json([seed, prompt, index]).encode()).digest()
    return int.from_bytes(digest[:4], "little") & (2**31 - 1)  # 31 bits: every engine's seed type holds it


INVALID_UTF8 = "the completion contains invalid UTF-8 (bad bytes shown as U+FFFD)"


def checked_completion(text: str, finish_reason: FinishReason, *, prompt_tokens: int = 0,
                       completion_tokens: int = 0, logprob: float | None = None,
                       max_chars: int | None = None, errors: Sequence[str] = ()) -> Completion:
    """A Completion with garbage flagged, so callers can trust `error is None`.

    No text (or only whitespace) becomes finish_reason "empty"; text longer than `max_chars`
    is cut and marked "length"; U+FFFD (what invalid UTF-8 decodes to) is noted in `error`.
    """
    errors = list(errors)
    if max_chars is not None and len(text) > max_chars:
        errors.append(f"the completion had {len(text)} characters, cut to max_chars={max_chars}")
        text, finish_reason = text[:max_chars], "length"
    if "\ufffd" in text:
        errors.append(INVALID_UTF8)
    if not text.strip() and finish_reason != "error":
        errors.insert(0, f"the model produced no text ({completion_tokens} tokens of whitespace, "
                         "special tokens or stop string)")
        finish_reason = "empty"
    return Completion(text=text, finish_reason=finish_reason, prompt_tokens=prompt_tokens,
                      completion_tokens=completion_tokens, logprob=logprob,
                      error="; ".join(errors) or None)


def join_messages(messages: list[ChatMessage]) -> str:
    """Render chat messages for a model without a chat template: 'Role: content' blocks,
    ending with 'Assistant:' for the model to continue."""
    parts = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join(parts + ["Assistant:"])
