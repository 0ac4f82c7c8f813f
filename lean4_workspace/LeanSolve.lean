import LeanSolve.Answer
