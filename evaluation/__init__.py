"""Evaluation: held-out metrics, failure-mode monitors (SB3 callbacks) and the RLHF report."""
