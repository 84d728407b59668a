"""One experiment end to end: the round schedule, the runner, resume, ablations."""
