"""Length-debiased rewards: remove the verbosity a reward model learned from biased labels.

Labelers (and the toy world's simulated one) prefer longer answers beyond their quality, so a
reward model trained on their labels pays for length, and PPO learns to ramble. The fix used
here is the "length-debiased RM": regress the reward model's scores on completion length over
samples from the SFT policy, and subtract that slope times the length's distance from the
samples' mean length. Scores keep their mean on SFT samples; length alone earns nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rlhf_gym.evaluation.metrics import word_lengths
from rlhf_gym.reward_models.protocol import RewardSource, check_scores


class LengthDebiasedReward:
    """``score = source.score − slope · (length − mean_length)``.

    Args:
        source: the reward source to debias.
        slope: reward per word to remove; use :meth:`fit` to estimate it.
        mean_length: the length that keeps its score unchanged.
    """

    def __init__(self, source: RewardSource, slope: float = 0.0, mean_length: float = 0.0) -> None:
        self.source, self.slope, self.mean_length = source, float(slope), float(mean_length)

    @classmethod
    def fit(
        cls, source: RewardSource, prompts: Sequence[str], completions: Sequence[str]
    ) -> LengthDebiasedReward:
        """Estimate the slope by least squares of the source's scores on length.

        Raises:
            ValueError: when all completions have the same length (no slope to estimate).
        """
        lengths = word_lengths(completions).astype(np.float64)
        if lengths.std() == 0:
            raise ValueError(
                "all completions have the same length, so the length slope is undefined; "
                "fit on samples of varied length (e.g. from the SFT policy)."
            )
        scores = check_scores(source.score(prompts, completions), len(prompts), "being debiased")
        slope = float(np.cov(lengths, scores, bias=True)[0, 1] / lengths.var())
        return cls(source, slope=slope, mean_length=float(lengths.mean()))

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """The source's scores with the length term removed."""
        raw = self.source.score(prompts, completions)
        raw = check_scores(raw, len(prompts), type(self.source).__name__)
        return raw - self.slope * (word_lengths(completions) - self.mean_length)
