"""Data sets, the model zoo and deterministic training."""
