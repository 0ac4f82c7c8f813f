prelude
universe u
inductive Eq {α : Sort u} : α → α → Prop where
  | refl (a : α) : Eq a a
inductive False : Prop
inductive True : Prop where
  | intro : True
inductive N where
  | zero : N
  | succ : N → N
noncomputable def N.add (n m : N) : N :=
  N.rec (motive := fun _ => N) n (fun _ ih => N.succ ih) m
noncomputable def N.mul (n m : N) : N :=
  N.rec (motive := fun _ => N) N.zero (fun _ ih => N.add ih n) m
noncomputable def N.one : N := N.succ N.zero
noncomputable def N.two : N := N.succ N.one
noncomputable def N.three : N := N.succ N.two
noncomputable def N.four : N := N.succ N.three
theorem Eq.symm {α : Sort u} {a b : α} (h : Eq a b) : Eq b a :=
  Eq.rec (motive := fun x _ => Eq x a) (Eq.refl a) h
