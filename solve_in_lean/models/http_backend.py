"""Any OpenAI-compatible server: `vllm serve`, llama.cpp's server, hosted APIs.

String prompts go to /v1/completions and message lists to /v1/chat/completions (the server
applies the chat template). One request per prompt, `concurrency` in flight. A server that
is down or overloaded (connection errors, timeouts, 429, 5xx) is retried with exponential
backoff and, when retries run out, stops the call with a GenerationError: continuing would
only fill a run with failures. A reply that is wrong for one prompt (malformed JSON, missing
fields, a 4xx) becomes an error completion for that prompt, and the batch goes on.
"""

from __future__ import annotations

import json
import os
import random
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Literal, Sequence

import httpx

from .base import (Completion, FinishReason, GenerationError, Generator, Prompt, SamplingParams,
                   checked_completion, copies, sample_seed)

Endpoint = Literal["auto", "chat", "completions"]
STOP_REASONS = {None, "stop", "eos", "end_turn", "stop_sequence"}


class PromptFailed(Exception):
    """The server answered, but not usably, for this one prompt."""


class HttpGenerator(Generator):
    """Client of an OpenAI-compatible completions API; the API key comes from `api_key_env`."""

    backend = "http"

    def __init__(self, model: str, *, base_url: str = "http://127.0.0.1:8000/v1",
                 endpoint: Endpoint = "auto", api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 8, timeout_s: float = 300.0, max_retries: int = 4,
                 backoff_s: float = 1.0, max_backoff_s: float = 30.0, max_chars: int = 100_000,
                 logprobs: bool = True, extra_body: dict | None = None) -> None:
        if endpoint not in ("auto", "chat", "completions"):
            raise ValueError(f"endpoint must be 'auto', 'chat' or 'completions', got {endpoint!r}")
        if concurrency < 1 or max_retries < 0:
            raise ValueError("concurrency must be >= 1 and max_retries >= 0")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_chars = max_chars
        self.logprobs = logprobs
        self.extra_body = dict(extra_body or {})
        self.max_response_bytes = 8 * max_chars + 1_000_000
        headers = {"Content-Type": "application/json"}
        if os.environ.get(api_key_env):
            headers["Authorization"] = f"Bearer {os.environ[api_key_env]}"
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s,
                                    limits=httpx.Limits(max_connections=concurrency))
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="http-gen")

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        futures = [self._pool.submit(self._one, p, params) for p in prompts]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for f in pending:
            f.cancel()
        for f in futures:
            if f.done() and not f.cancelled() and f.exception() is not None:
                raise f.exception()
        return [f.result() for f in futures]

    def _one(self, prompt: Prompt, params: SamplingParams) -> list[Completion]:
        """All `n` samples of one prompt; asks again when a server returns fewer choices than
        asked. Greedy n>1 is one request, copied: `vllm serve` answers greedy n>1 with HTTP 400."""
        completions: list[Completion] = []
        while len(completions) < params.distinct:
            want = params.distinct - len(completions)
            seed = params.seed if not completions or params.seed is None else \
                sample_seed(params.seed, prompt, len(completions))
            try:
                got = self._request(prompt, params, want, seed)
            except PromptFailed as e:
                error = Completion(text="", finish_reason="error", error=str(e))
                return completions + [error] * (params.n - len(completions))
            completions += got[:want]
        return copies(completions, params.n)

    def _request(self, prompt: Prompt, params: SamplingParams, n: int, seed: int | None) -> list[Completion]:
        chat = self.endpoint == "chat" or (self.endpoint == "auto" and not isinstance(prompt, str))
        body: dict = {"model": self.model, "n": n, "temperature": params.temperature,
                      "top_p": params.top_p, "max_tokens": params.max_new_tokens}
        if params.stop:
            body["stop"] = list(params.stop)
        if seed is not None:
            body["seed"] = seed
        if chat:
            body["messages"] = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            if self.logprobs:
                body["logprobs"] = True
        else:
            if not isinstance(prompt, str):
                raise ValueError("endpoint='completions' takes string prompts only; use 'auto' or 'chat'")
            body["prompt"] = prompt
            if self.logprobs:
                body["logprobs"] = 0
        body.update(self.extra_body)
        text = self._post("/chat/completions" if chat else "/completions", body)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise PromptFailed(f"the server sent malformed JSON ({e.msg} at char {e.pos}): {text[:200]!r}") from e
        completions = self._parse(data, chat)
        if not completions:
            raise PromptFailed(f"the server returned no choices: {text[:200]!r}")
        return completions

    def _post(self, path: str, body: dict) -> str:
        """The response text; retries what a healthy server would not have done."""
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self._backoff(attempt, last))
            try:
                status, text = self._send(path, body)
            except httpx.TimeoutException:
                last = f"no answer within {self.timeout_s:g} s"
                continue
            except httpx.TransportError as e:
                last = f"connection failed ({type(e).__name__}: {e})"
                continue
            if status == 429 or status >= 500:
                last = f"HTTP {status}: {text[:200]}"
                continue
            if status >= 400:
                raise PromptFailed(f"the server refused the request, HTTP {status}: {text[:300]}")
            return text
        raise GenerationError(f"The model server at {self.base_url} failed {self.max_retries + 1} "
                              f"attempts, the last with {last}.")

    def _send(self, path: str, body: dict) -> tuple[int, str]:
        """POST, reading at most `max_response_bytes` within one overall deadline."""
        deadline = time.monotonic() + self.timeout_s
        chunks, size = [], 0
        with self._client.stream("POST", path, json=body) as response:
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise PromptFailed(f"the server response exceeded {self.max_response_bytes} bytes")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("response still streaming at the deadline")
        return response.status_code, b"".join(chunks).decode("utf-8", errors="replace")

    def _backoff(self, attempt: int, last: str) -> float:
        """Exponential, capped, with jitter so parallel workers do not retry in lockstep."""
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        return delay * (0.5 + random.random() / 2)

    def _parse(self, data: object, chat: bool) -> list[Completion]:
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
            raise PromptFailed(f"the server reply has no list of choices: {str(data)[:200]!r}")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        prompt_tokens = usage.get("prompt_tokens") if isinstance(usage.get("prompt_tokens"), int) else 0
        choices = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c.get("index"), int) else 0)
        out = []
        for choice in choices:
            text = (choice.get("message") or {}).get("content") if chat else choice.get("text")
            if chat and text is None and isinstance(choice.get("message"), dict):
                text = ""  # a chat reply may carry no content; that is an empty completion
            if not isinstance(text, str):
                raise PromptFailed(f"a choice has no {'message content' if chat else 'text'}: {str(choice)[:200]!r}")
            logprob, tokens = token_logprobs(choice.get("logprobs"), chat)
            if tokens is None and len(choices) == 1 and isinstance(usage.get("completion_tokens"), int):
                tokens = usage["completion_tokens"]
            reason, errors = finish_reason(choice.get("finish_reason"))
            out.append(checked_completion(text, reason, prompt_tokens=prompt_tokens,
                                          completion_tokens=tokens or 0, logprob=logprob,
                                          max_chars=self.max_chars, errors=errors))
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()


def token_logprobs(logprobs: object, chat: bool) -> tuple[float | None, int | None]:
    """Summed log-probability and token count from either API's logprobs object, if present."""
    if not isinstance(logprobs, dict):
        return None, None
    if chat:
        entries = logprobs.get("content")
        values = [e.get("logprob") for e in entries if isinstance(e, dict)] if isinstance(entries, list) else None
    else:
        values = logprobs.get("token_logprobs")
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) for v in values if v is not None):
        return None, None
    return float(sum(v for v in values if v is not None)), len(values)


def finish_reason(reason: object) -> tuple[FinishReason, list[str]]:
    if reason == "length":
        return "length", []
    if reason in STOP_REASONS:
        return "stop", []
    return "error", [f"the server ended the completion with finish_reason={reason!r}"]
