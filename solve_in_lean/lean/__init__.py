"""Lean backends behind one interface; see `base.LeanChecker`."""
