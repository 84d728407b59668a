"""The curriculum's policy: which problems a round trains on, which new ones it admits, and why."""
