/-!
# Reporting answers

`#answer e` evaluates `e` and prints one line `lean-solve answer: <value>`, which
`solve_in_lean.answers.parse_lean_value` reads back whatever the type's `Repr` looks like
(`72`, `7/2`, `-3`). The verifier itself only needs `#eval`; this is for people writing
Lean by hand against the workspace.
-/

namespace LeanSolve

/-- The line `#answer` prints for a value. -/
def answerLine {α : Type} [Repr α] (a : α) : String :=
  "lean-solve answer: " ++ toString (repr a)

/-- `#answer e`: print `e`'s value on one parseable line. -/
macro "#answer " e:term : command => `(#eval IO.println (LeanSolve.answerLine ($e)))

end LeanSolve
