"""Scripts for ScriptedGenerator keyed by task: the test says what "the model" answers to each
kind of prompt (formalize, lean_solve, cot, ...). Given completions, not a model."""

from solve_in_lean.prompts import get_prompt, list_tasks


def task_of(prompt) -> str:
    system = prompt[0]["content"] if isinstance(prompt, list) and prompt and prompt[0]["role"] == "system" else ""
    for task in list_tasks():
        if get_prompt(task).system and get_prompt(task).system == system:
            return task
    raise AssertionError(f"prompt of no known task: {str(prompt)[:200]}")


def by_task(answers: dict):
    """answers: task -> list of completions (cycled) or a function (prompt, index) -> text."""
    counters: dict[str, int] = {}

    def script(prompt, index):
        task = task_of(prompt)
        given = answers.get(task, "")
        if callable(given):
            return given(prompt, index)
        if isinstance(given, str):
            return given
        i = counters.get(task, 0)
        counters[task] = i + 1
        return given[i % len(given)]
    return script
