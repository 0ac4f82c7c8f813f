"""Lean as a verifier of informal work: check a given answer (confirmed / refuted / unknown),
certify that a compute statement determines its answer, and turn Lean's verdicts into reward
labels. Sits above `solve.py` (it reuses the solver) and below `cli/` and `eval/`."""
