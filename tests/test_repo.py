"""The repository keeps its promises: CI runs exactly the README's test command."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    ci_lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines()
                if ln.strip() and not ln.startswith("#") and not ln.startswith(("set ", "cd "))]
    assert len(ci_lines) == 1
    readme = (ROOT / "README.md").read_text()
    assert f"```bash\n{ci_lines[0]}\n```" in readme
    assert "pytest" in ci_lines[0] and "torch==2.13.0" in ci_lines[0]
