"""A scripted generator: returns completions it was given, in order. Not a model.

For control-flow tests of the solver and for offline demos: it lets a test say "the model
answers this, then that" and check what the pipeline does with it (Lean still checks every
piece of Lean for real). Anything that claims to measure a model must not use it.
"""

from __future__ import annotations

from typing import Callable, Sequence

from solve_in_lean.models.base import Completion, Generator, Prompt, SamplingParams

Script = Sequence[str] | Callable[[Prompt, int], str]


class ScriptedGenerator(Generator):
    """Answers from a list (cycled through in call order) or from a function of (prompt, sample)."""

    backend = "scripted"

    def __init__(self, script: Script, model: str = "scripted") -> None:
        self.script = script
        self.model = model
        self.prompts: list[Prompt] = []
        """Every prompt received, in order, so tests can check what the pipeline asked."""
        self._next = 0

    def _text(self, prompt: Prompt, index: int) -> str:
        if callable(self.script):
            return self.script(prompt, index)
        if not self.script:
            return ""
        text = self.script[self._next % len(self.script)]
        self._next += 1
        return text

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        out = []
        for prompt in prompts:
            self.prompts.append(prompt)
            texts = [self._text(prompt, i) for i in range(params.n)]
            out.append([Completion(text=t, finish_reason="stop" if t else "empty",
                                   completion_tokens=len(t.split()),
                                   error=None if t else "the script gave an empty completion")
                        for t in texts])
        return out
