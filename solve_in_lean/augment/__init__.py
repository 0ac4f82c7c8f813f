"""Augmentation with Lean certificates: new problems from verified ones (issue 15, section 1).

`numbers` changes the quantities of a problem consistently in its English, its Lean statement
and its verified program, and keeps the variant only when Lean verifies the changed program
(numerals.py aligns the numbers, numbers.py builds and checks variants). `dedup.py` keeps
augmented data from repeating the source set or leaking an evaluation item.
"""
