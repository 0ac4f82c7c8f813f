"""A small world where learning is real: a synthetic curriculum in the prelude dialect (the
bundled kernel checks it) and a few-million-parameter model trained on it on a CPU, so the
verified path and the research harness can be seen working with a model that can succeed.

    curriculum.py   seeded word problems with CoT, Lean statement, Lean solution, splits, export
    model.py        the small model: recipe, tokenizer, training (base, world, refined), cache
    measure.py      its held-out numbers through the ordinary eval path
"""
