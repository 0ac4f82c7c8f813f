"""One process asking a shared generation cache for completions, for tests/test_cache_claims.py.

The generator is scripted (not a model): each call waits `delay_s`, and logs every completion
it really makes to a shared log file (one JSON line per prompt: pid, prompt, time), so a test
can count generations across processes. Its text, "<prompt>#<sample> by <pid>", says which
process made it, so two processes that both generated a request return different results.

    python tests/cache_claim_child.py CONFIG_JSON

prints {"texts": [[...], ...], "hits": H, "generated": G, "waited_s": W} when it finishes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from solve_in_lean.models.base import GenerationError, SamplingParams
from solve_in_lean.models.cache import CachedGenerator
from solve_in_lean.models.scripted import ScriptedGenerator


def log(path: str, **event: object) -> None:
    """One line per event, in one append write, so lines from several processes never mix."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps({"pid": os.getpid(), "t": time.time(), **event}) + "\n").encode())
    finally:
        os.close(fd)


class Logged(ScriptedGenerator):
    """Scripted answers, slowly, each one logged; with `fail`, the call raises after the wait."""

    def __init__(self, log_path: str, delay_s: float, fail: bool) -> None:
        super().__init__(lambda prompt, i: f"{prompt}#{i} by {os.getpid()}")
        self.log_path, self.delay_s, self.fail = log_path, delay_s, fail

    def generate(self, prompts, params):
        log(self.log_path, event="begin", prompts=list(prompts))
        time.sleep(self.delay_s)
        if self.fail:
            log(self.log_path, event="fail")
            raise GenerationError("the scripted backend was told to fail")
        out = super().generate(prompts, params)
        for prompt in prompts:
            log(self.log_path, event="gen", prompt=prompt)
        return out


def main() -> None:
    cfg = json.loads(sys.argv[1])
    cache = CachedGenerator(Logged(cfg["log"], cfg.get("delay_s", 0.0), cfg.get("fail", False)), cfg["path"],
                            chunk_size=cfg.get("chunk_size", 64), claims=cfg.get("claims", True),
                            claim_wait_s=cfg.get("claim_wait_s", 600.0))
    if "ready" in cfg:
        Path(cfg["ready"]).touch()
    if "go" in cfg:
        while not Path(cfg["go"]).exists():
            time.sleep(0.001)
    results = cache.generate(cfg["prompts"], SamplingParams(n=cfg.get("n", 1)))
    print(json.dumps({"texts": [[c.text for c in cs] for cs in results], "hits": cache.hits,
                      "generated": cache.generated, "waited_s": cache.waited_s}))
    cache.close()


if __name__ == "__main__":
    main()
