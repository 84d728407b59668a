"""The roles of a co-evolution round as plain objects: Solver, Teacher (Generator and
Learner live beside their training code). Ray actors in `agents/` host them thinly."""
