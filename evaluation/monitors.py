"""Failure-mode monitors (docs/failure_modes.md) as stable-baselines3 callbacks.

Each monitor gathers the episodes that finish during a rollout from ``self.locals["infos"]``
and ``self.locals["dones"]`` (any SB3 algorithm, our token env), or from explicit
:meth:`FailureModeMonitor.observe` calls in a hand-written loop. At the end of each rollout
(or on :meth:`FailureModeMonitor.flush`) it logs ``monitor/...`` keys and raises a
:class:`FailureModeWarning` once each time a threshold is crossed (again only after the value
has come back inside the threshold). "Baseline" below means the first rollout that finished any
episode, normally the SFT policy's behaviour.

From the terminal step's info a monitor reads ``"completion"`` (text), ``"score"`` (proxy
reward) and ``"prompt"`` (needed by the gold utility); the KL of an episode is the sum over its
steps of ``info["kl"]`` (or of ``policy_logprob - ref_logprob`` when ``"kl"`` is absent), and
unknown when any step's value is NaN (the env reports NaN without a policy log-prob).

==============================  ===================  ==========================================
key                             monitor              meaning
==============================  ===================  ==========================================
monitor/proxy_mean              RewardHacking        mean proxy (reward-model) score this rollout
monitor/gold_mean               RewardHacking        mean gold score of the same completions
monitor/proxy_gain_z            RewardHacking        (proxy_mean - baseline mean) / baseline std
monitor/gold_gain_z             RewardHacking        (gold_mean - baseline mean) / baseline std
monitor/hacking_gap             RewardHacking        proxy_gain_z - gold_gain_z; warns > max_gap
monitor/proxy_gold_spearman     RewardHacking        rank correlation of proxy and gold scores
monitor/hacking_alarm           RewardHacking        1 while hacking_gap > max_gap, else 0
monitor/length_mean             LengthDrift          mean completion length (words)
monitor/length_ratio            LengthDrift          length_mean / baseline; warns > max_ratio
monitor/length_alarm            LengthDrift          1 while length_ratio > max_ratio, else 0
monitor/distinct_1              Diversity            unique / total unigrams over the rollout
monitor/distinct_2              Diversity            unique / total bigrams over the rollout
monitor/self_similarity         Diversity            mean pairwise 1-2-gram Jaccard of samples
monitor/distinct_2_ratio        Diversity            distinct_2 / baseline distinct_2
monitor/diversity_alarm         Diversity            1 while any diversity threshold is crossed
monitor/kl_mean                 KLDrift              mean per-sequence KL to the reference (nats)
monitor/kl_max                  KLDrift              largest per-sequence KL this rollout
monitor/kl_alarm                KLDrift              1 while kl_mean > max_kl, else 0
monitor/episodes                every monitor        finished episodes the numbers are based on
==============================  ===================  ==========================================

The hacking gap compares *gains* in units of each reward's own baseline spread, because proxy
and gold live on different scales: a gap of 1 means the proxy has improved one baseline
standard deviation more than the gold has, i.e. the policy is learning what the reward model
likes but the gold utility does not.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rlhf_gym.envs.episodes import EpisodeTracker
from rlhf_gym.evaluation.metrics import distinct_n, self_similarity, spearman, word_lengths
from rlhf_gym.reward_models.protocol import as_reward_source, check_scores
from stable_baselines3.common.callbacks import BaseCallback


class FailureModeWarning(UserWarning):
    """A monitor crossed its threshold (escalate with ``warnings.simplefilter("error", ...)``)."""


@dataclass
class Episode:
    """One finished episode as a monitor sees it."""

    prompt: str
    completion: str
    score: float | None
    kl: float | None


def _std(values: np.ndarray) -> float:
    std = float(values.std()) if len(values) > 1 else 0.0
    return std if std > 1e-8 else 1.0  # a constant baseline: measure gains in raw units


class FailureModeMonitor(BaseCallback):
    """Base class: episode collection, logging, and once-per-crossing warnings.

    Subclasses implement :meth:`measure` (numbers from this rollout's episodes and the
    baseline) and :meth:`alarms` (which thresholds are crossed, with a message each).

    Args:
        prompt_key: the terminal info key holding the prompt text.
        verbose: SB3 verbosity.
    """

    def __init__(self, prompt_key: str = "prompt", verbose: int = 0) -> None:
        super().__init__(verbose)
        self.prompt_key = prompt_key
        self.episodes: list[Episode] = []
        self.baseline: dict[str, float] | None = None
        self.records: list[dict[str, float]] = []
        self.tracker: EpisodeTracker | None = None
        self._active: set[str] = set()

    def observe(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        scores: Sequence[float] | None = None,
        kls: Sequence[float] | None = None,
    ) -> None:
        """Add finished episodes directly (for loops that are not SB3 algorithms)."""
        for i, (p, c) in enumerate(zip(prompts, completions, strict=True)):
            score = None if scores is None else float(scores[i])
            self.episodes.append(Episode(p, c, score, None if kls is None else float(kls[i])))

    def _on_step(self) -> bool:
        infos = self.locals.get("infos") or []
        if self.tracker is None or self.tracker.num_envs != len(infos):
            self.tracker = EpisodeTracker(len(infos))
        dones = self.locals.get("dones")
        if dones is None:
            dones = np.array(["completion" in info for info in infos])
        rewards = self.locals.get("rewards")
        rewards = np.zeros(len(infos)) if rewards is None else np.asarray(rewards, dtype=float)
        for episode in self.tracker.step(rewards, np.asarray(dones, dtype=bool), infos):
            info = episode["info"]
            if "completion" in info:
                score, kl = info.get("score"), episode["kl"]  # kl is NaN without a policy log-prob
                self.episodes.append(Episode(
                    str(info.get(self.prompt_key, "")), str(info["completion"]),
                    None if score is None else float(score), kl if math.isfinite(kl) else None,
                ))
        return True

    def _on_rollout_end(self) -> None:
        self.flush()

    def measure(self, episodes: list[Episode]) -> dict[str, float]:
        """The numbers to log for this rollout (override)."""
        raise NotImplementedError

    def alarms(self, values: dict[str, float]) -> dict[str, tuple[bool, str]]:
        """``{alarm name: (crossed, message)}`` for this rollout's values (override)."""
        raise NotImplementedError

    def flush(self) -> dict[str, float]:
        """Measure the collected episodes, log, warn on new crossings, and start afresh.

        Returns:
            The logged values by key (empty when no episode finished since the last flush).
        """
        episodes, self.episodes = self.episodes, []
        if not episodes:
            return {}
        values = self.measure(episodes)  # relative to itself while there is no baseline
        if self.baseline is None and values:
            self.baseline = dict(values)
        values = {k: v for k, v in values.items() if k.startswith("monitor/")}
        for name, (crossed, message) in self.alarms(values).items():
            values[f"monitor/{name}_alarm"] = float(crossed)
            if crossed and name not in self._active:
                step = f" at timestep {self.num_timesteps}" if self.num_timesteps else ""
                warnings.warn(f"{type(self).__name__}{step}: {message}", FailureModeWarning,
                              stacklevel=2)
            (self._active.add if crossed else self._active.discard)(name)
        values["monitor/episodes"] = float(len(episodes))
        if getattr(self, "model", None) is not None:
            for key, value in values.items():
                self.logger.record(key, value)
        self.records.append(values)
        return values


class RewardHackingMonitor(FailureModeMonitor):
    """Warns when the proxy reward's gain outruns the gold reward's gain (reward hacking).

    Args:
        gold_fn: a reward source or callable ``f(prompts, completions) -> scores`` giving the
            trusted score (the toy world's gold utility, a judge, a held-out RM).
        max_gap: warn when ``hacking_gap`` (see the module table) exceeds this, in baseline
            standard deviations.
    """

    def __init__(self, gold_fn: Any, max_gap: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gold = as_reward_source(gold_fn)
        self.max_gap = max_gap

    def measure(self, episodes: list[Episode]) -> dict[str, float]:  # noqa: D102
        scored = [e for e in episodes if e.score is not None]
        if not scored:
            return {}
        if any(not e.prompt for e in scored):
            raise ValueError(
                f"RewardHackingMonitor needs each episode's prompt to score gold; put it in the "
                f"terminal info under {self.prompt_key!r} or pass prompts to observe()."
            )
        proxy = np.array([e.score for e in scored], dtype=np.float64)
        prompts, texts = [e.prompt for e in scored], [e.completion for e in scored]
        gold = check_scores(self.gold.score(prompts, texts), len(scored), "gold_fn")
        base = self.baseline or {"p_mu": proxy.mean(), "p_sd": _std(proxy),
                                 "g_mu": gold.mean(), "g_sd": _std(gold)}
        proxy_z = (proxy.mean() - base["p_mu"]) / base["p_sd"]
        gold_z = (gold.mean() - base["g_mu"]) / base["g_sd"]
        values = {
            "monitor/proxy_mean": float(proxy.mean()), "monitor/gold_mean": float(gold.mean()),
            "monitor/proxy_gain_z": float(proxy_z), "monitor/gold_gain_z": float(gold_z),
            "monitor/hacking_gap": float(proxy_z - gold_z),
            "monitor/proxy_gold_spearman": spearman(proxy, gold),
        }
        if self.baseline is None:  # kept by flush() as the baseline, not logged
            values.update(base)
        return values

    def alarms(self, values: dict[str, float]) -> dict[str, tuple[bool, str]]:  # noqa: D102
        gap = values.get("monitor/hacking_gap", 0.0)
        return {"hacking": (gap > self.max_gap, (
            f"proxy reward gained {values.get('monitor/proxy_gain_z', 0):.2f} baseline std but "
            f"gold only {values.get('monitor/gold_gain_z', 0):.2f} (gap {gap:.2f} > "
            f"{self.max_gap}): likely reward hacking; raise the KL coefficient, use an RM "
            "ensemble, or stop early on gold."))}


class LengthDriftMonitor(FailureModeMonitor):
    """Warns when mean completion length grows past ``max_ratio`` times the baseline's."""

    def __init__(self, max_ratio: float = 1.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_ratio = max_ratio

    def measure(self, episodes: list[Episode]) -> dict[str, float]:  # noqa: D102
        mean = float(word_lengths([e.completion for e in episodes]).mean())
        base = max(self.baseline["monitor/length_mean"], 1.0) if self.baseline else max(mean, 1.0)
        return {"monitor/length_mean": mean, "monitor/length_ratio": mean / base}

    def alarms(self, values: dict[str, float]) -> dict[str, tuple[bool, str]]:  # noqa: D102
        ratio = values["monitor/length_ratio"]
        return {"length": (ratio > self.max_ratio, (
            f"mean completion length is {ratio:.2f}x the baseline (> {self.max_ratio}): "
            "verbosity bloat; check that gold improves too, or add a length penalty."))}


class DiversityMonitor(FailureModeMonitor):
    """Warns when samples lose diversity (mode collapse). Every threshold is optional.

    Args:
        min_distinct_1: warn when distinct-1 falls below this (absolute).
        min_distinct_2: warn when distinct-2 falls below this (absolute).
        max_self_similarity: warn when mean pairwise Jaccard rises above this.
        min_distinct_2_ratio: warn when distinct-2 falls below this fraction of the baseline's
            (scale-free, so a safe default when the absolute level is unknown).
    """

    def __init__(
        self,
        min_distinct_1: float | None = None,
        min_distinct_2: float | None = None,
        max_self_similarity: float | None = 0.5,
        min_distinct_2_ratio: float | None = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.limits = (min_distinct_1, min_distinct_2, max_self_similarity, min_distinct_2_ratio)

    def measure(self, episodes: list[Episode]) -> dict[str, float]:  # noqa: D102
        texts = [e.completion for e in episodes]
        d2 = distinct_n(texts, 2)
        base = self.baseline["monitor/distinct_2"] if self.baseline else d2
        return {
            "monitor/distinct_1": distinct_n(texts, 1), "monitor/distinct_2": d2,
            "monitor/self_similarity": self_similarity(texts),
            "monitor/distinct_2_ratio": d2 / base if base > 0 else 1.0,
        }

    def alarms(self, values: dict[str, float]) -> dict[str, tuple[bool, str]]:  # noqa: D102
        d1, d2, sim, ratio = (values[f"monitor/{k}"] for k in
                              ("distinct_1", "distinct_2", "self_similarity", "distinct_2_ratio"))
        lo1, lo2, hi_sim, lo_ratio = self.limits
        crossed = [text for bad, text in [
            (lo1 is not None and d1 < lo1, f"distinct-1 {d1:.3f} < {lo1}"),
            (lo2 is not None and d2 < lo2, f"distinct-2 {d2:.3f} < {lo2}"),
            (hi_sim is not None and sim > hi_sim, f"self-similarity {sim:.3f} > {hi_sim}"),
            (lo_ratio is not None and ratio < lo_ratio,
             f"distinct-2 at {ratio:.2f}x the baseline (< {lo_ratio})"),
        ] if bad]
        return {"diversity": (bool(crossed), "; ".join(crossed) + (
            ": samples are collapsing to one mode; keep the KL penalty, watch entropy, "
            "diversify prompts."))}


class KLDriftMonitor(FailureModeMonitor):
    """Warns when the mean per-sequence KL to the reference exceeds ``max_kl`` nats."""

    def __init__(self, max_kl: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_kl = max_kl

    def measure(self, episodes: list[Episode]) -> dict[str, float]:  # noqa: D102
        kls = np.array([e.kl for e in episodes if e.kl is not None], dtype=np.float64)
        if not len(kls):
            return {}
        return {"monitor/kl_mean": float(kls.mean()), "monitor/kl_max": float(kls.max())}

    def alarms(self, values: dict[str, float]) -> dict[str, tuple[bool, str]]:  # noqa: D102
        kl = values.get("monitor/kl_mean", 0.0)
        return {"kl": (kl > self.max_kl, (
            f"mean KL to the reference is {kl:.2f} nats (> {self.max_kl}): the policy is "
            "drifting; use an adaptive KL controller or a larger KL coefficient."))}


def default_monitors(gold_fn: Any = None) -> list[BaseCallback]:
    """Length, diversity and KL monitors with default thresholds, plus reward hacking with gold.

    Pass the list as ``algo.learn(..., callback=default_monitors(gold))``.
    """
    monitors: list[BaseCallback] = [LengthDriftMonitor(), DiversityMonitor(), KLDriftMonitor()]
    if gold_fn is not None:
        monitors.insert(0, RewardHackingMonitor(gold_fn))
    return monitors
