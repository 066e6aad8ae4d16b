"""The star rating that follows each review in the world's corpus.

The SFT policy is trained on review-site records, ``prompt review <eos> N stars``, the way a
pretrained LM has read reviews next to their ratings. The rating is never generated (sampling
stops at the EOS), but predicting it makes the model's hidden state at the EOS, where a reward
model reads, track what the review says about its item. That is what a real reward model inherits
from pretraining, and why a few thousand preference pairs are enough to fit one.

The site's readers weigh what the gold "human" weighs, except length, coarsely and with noise::

    quality = W_SENTIMENT * sentiment + W_MENTION * mentions_item - W_OFF_TOPIC * off_topic_frac
    stars   = clip(round(3 + RATING_SLOPE * (quality - QUALITY_CENTER) + N(0, noise)), 1, 5)

(the terms of :mod:`rlhf_gym.toy.gold`). Length is left to the preference pairs: the human's
taste for two sentences and the labeler's verbosity bias are learnt from them alone, and RL can
exploit the bias.

Example:
    >>> import numpy as np
    >>> site_rating("review of the phone :", "the phone is amazing .", np.random.default_rng(0))
    '5 stars'
"""

from __future__ import annotations

import numpy as np
from rlhf_gym.toy import lexicon as lx
from rlhf_gym.toy.gold import W_MENTION, W_OFF_TOPIC, W_SENTIMENT, utility_terms

RATING_SLOPE = 1.2
QUALITY_CENTER = 0.55  # the mean quality of the world's reviews
RATING_NOISE = 0.4


def review_quality(prompt: str, completion: str) -> float:
    """The gold utility's weighted terms without its length term (0 for ill-formed text)."""
    t = utility_terms(prompt, completion)
    return W_SENTIMENT * t["sentiment"] + W_MENTION * t["mention"] - W_OFF_TOPIC * t["off_topic"]


def site_rating(
    prompt: str, completion: str, rng: np.random.Generator, *, noise: float = RATING_NOISE
) -> str:
    """The footer of one review, ``"N stars"`` with N in 1..5."""
    mean = 3.0 + RATING_SLOPE * (review_quality(prompt, completion) - QUALITY_CENTER)
    stars = int(np.clip(round(mean + noise * rng.standard_normal()), 1, 5))
    return f"{stars} {lx.RATING_UNIT}"
