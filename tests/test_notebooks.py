"""The notebooks run top to bottom offline (the small-world model or the tiny one, bundled kernel),
so they cannot rot. Outputs are checked to hold what each notebook is meant to show; the files in
git stay clean."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ON_THE_WORLD_MODEL = {"01_quickstart.ipynb", "03_transfer.ipynb"}
"""Notebooks that load the small-world model (built once per session here, then from the cache)."""
EXPECTED = {
    "01_quickstart.ipynb": ["verified: True | answer Lean computed: ", "verified: False", "Lean verified ",
                             "verified by Lean: True", "answer 4: verdict: confirmed (proof)",
                             "answer 3: verdict: unknown"],
    "02_formalize_and_inspect.ipynb": ["No candidate elaborated", "Unknown identifier `one`",
                                       "the reference statement elaborates: True"],
    "03_transfer.ipynb": ["base (absolute)", "image/png", "significant: informal moves cot:accuracy by +",
                          "mcnemar-exact", "round 2: 0 verified examples"],
    "04_augment.ipynb": ["certified answer 56", "kept: 0 | dropped: error", "ambiguous", "kept: Ann carries 3 bags",
                         "not the source's"],
}


def outputs(nb) -> str:
    """Everything the notebook printed or displayed (image payloads by their type only)."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            for kind, data in out.get("data", {}).items():
                parts.append(kind if kind.startswith("image/") else str(data))
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.timeout(2400)  # conftest.WORLD_BUILD_TIMEOUT_S: the first notebook on the world model may build it
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_offline(kernel, name, request):
    if name in ON_THE_WORLD_MODEL:  # built (or read from the cache) outside the notebook's cell timeout
        request.getfixturevalue("world_model")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), "commit notebooks cleared"
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    text = outputs(nb)
    for expected in EXPECTED[name]:
        assert expected in text, f"{name}: no {expected!r} in the outputs"
