"""The ``objective/`` metrics of a rollout (docs/metrics.md), over every rank's episodes."""

from __future__ import annotations

from rlhf_gym.distributed import all_reduce_sum, is_distributed

#: The per-episode means of a rollout summary (``EpisodeTracker.summary``).
EPISODE_MEANS = ("kl", "entropy", "length", "score", "rlhf_reward")


def global_summary(summary: dict[str, float]) -> dict[str, float]:
    """A rollout summary over the finished episodes of every rank.

    The KL controller steers β by the mean KL and the number of episodes, so in a distributed
    run each rank needs the job's, not its shard's: the means of :data:`EPISODE_MEANS` are
    weighted by each rank's ``num_episodes``, which are summed. Other keys stay this rank's.
    Not distributed: ``summary`` itself.

    Args:
        summary: this rank's ``EpisodeTracker.summary()`` (empty when no episode finished).

    Returns:
        The job's summary; empty when no rank finished an episode.
    """
    if not is_distributed():
        return summary
    count = summary.get("num_episodes", 0.0)
    local = [count, *(count * summary[key] if count else 0.0 for key in EPISODE_MEANS)]
    total = all_reduce_sum(local)
    rest = {k: v for k, v in summary.items() if k not in EPISODE_MEANS and k != "num_episodes"}
    if total[0] == 0:
        return rest
    means = {
        key: float(value / total[0]) for key, value in zip(EPISODE_MEANS, total[1:], strict=True)
    }
    return {**rest, **means, "num_episodes": float(total[0])}


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
