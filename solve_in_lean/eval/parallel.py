"""Many items in flight at once, for GPU-sized runs: one model call serves them all.

Evaluation tasks handle one item at a time and call the model several times per item
(formalize, solve, repair, judge). With one item in flight a GPU idles between calls; with
`workers` items in flight in threads, `BatchingGenerator` gathers the calls the threads make
at about the same time and sends them to the model as one batch (vLLM schedules it), while
other threads wait on Lean. Results per prompt do not depend on the batch: every backend seeds
each sequence from (seed, prompt, sample index).

The items themselves are run by `batch.run_batch` with `workers` threads.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Sequence

from solve_in_lean.models.base import Completion, GenerationError, Generator, Prompt, SamplingParams


@dataclass
class _Request:
    prompts: list[Prompt]
    params: SamplingParams
    done: threading.Event = field(default_factory=threading.Event)
    result: list[list[Completion]] | None = None
    error: BaseException | None = None


class BatchingGenerator(Generator):
    """Wraps a generator so concurrent `generate` calls from threads become one call per set of
    sampling params. A batch goes out when `workers` requests wait or `window_s` has passed."""

    def __init__(self, inner: Generator, workers: int, window_s: float = 0.05) -> None:
        self.inner, self.workers, self.window_s = inner, workers, window_s
        self.backend, self.model = inner.backend, inner.model
        self._pending: list[_Request] = []
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="batching-generator", daemon=True)
        self._thread.start()

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        req = _Request(list(prompts), params)
        with self._cv:
            if self._closed:
                raise GenerationError("the batching generator is closed")
            self._pending.append(req)
            self._cv.notify_all()
        req.done.wait()
        if req.error is not None:
            raise req.error
        assert req.result is not None
        return req.result

    def _take(self) -> list[_Request] | None:
        with self._cv:
            while not self._pending and not self._closed:
                self._cv.wait()
            if self._closed:
                return None
            deadline = time.monotonic() + self.window_s
            while len(self._pending) < self.workers and (left := deadline - time.monotonic()) > 0:
                self._cv.wait(left)
            batch, self._pending = self._pending, []
            return batch

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            groups: dict[SamplingParams, list[_Request]] = {}
            for req in batch:
                groups.setdefault(req.params, []).append(req)
            for params, reqs in groups.items():
                self._run(params, reqs)

    def _run(self, params: SamplingParams, reqs: list[_Request]) -> None:
        try:
            outs = self.inner.generate([p for r in reqs for p in r.prompts], params)
        except BaseException as e:  # noqa: BLE001 - handed to every waiting caller, who re-raises it
            for r in reqs:
                r.error = e
                r.done.set()
            return
        start = 0
        for r in reqs:
            r.result, start = outs[start:start + len(r.prompts)], start + len(r.prompts)
            r.done.set()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            for r in self._pending:
                r.error = GenerationError("the batching generator was closed")
                r.done.set()
            self._pending = []
            self._cv.notify_all()
        self._thread.join()
