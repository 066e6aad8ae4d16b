"""The ``objective/`` metrics of a rollout (docs/metrics.md)."""

from __future__ import annotations


def objective_metrics(stats: dict[str, float], kl_coef: float) -> dict[str, float | None]:
    """The ``objective/`` and ``time/rollout_s`` keys of docs/metrics.md from a rollout summary."""
    return {
        "objective/kl": stats.get("kl"),
        "objective/entropy": stats.get("entropy"),
        "objective/rlhf_reward": stats.get("rlhf_reward"),
        "objective/scores": stats.get("score"),
        "objective/response_length": stats.get("length"),
        "objective/kl_coef": kl_coef,
        "objective/episodes": stats.get("num_episodes", 0.0),
        "time/rollout_s": stats.get("rollout_s"),
    }
