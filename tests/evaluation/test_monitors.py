import warnings

import gymnasium as gym
import numpy as np
import pytest
from rlhf_gym.evaluation.monitors import (
    DiversityMonitor,
    FailureModeWarning,
    KLDriftMonitor,
    LengthDriftMonitor,
    RewardHackingMonitor,
    default_monitors,
)
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter, Logger


class Capture(KVWriter):
    """An SB3 logger output that keeps every dump."""

    def __init__(self):
        self.dumps = []

    def write(self, key_values, key_excluded, step=0):
        self.dumps.append(dict(key_values))


EPISODE_LEN, SWITCH = 4, 8  # 8 episodes per 32-step rollout; behaviour changes after rollout 1


class ScriptedTextEnv(gym.Env):
    """Ignores its actions; emits diverse 3-word completions, then one 6-word completion forever.

    Each step reports kl=0.25, so an episode's KL is 1.0. The proxy score rises after the switch.
    """

    observation_space = gym.spaces.Box(0.0, 1.0, (1,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        self.episode, self.t = 0, 0
        self.rng = np.random.default_rng(0)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        info = {"kl": 0.25, "score": 0.0}
        done = self.t == EPISODE_LEN
        if done:
            if self.episode < SWITCH:
                text = " ".join(f"w{i}" for i in self.rng.integers(0, 1000, size=3))
                score = float(self.rng.normal())
            else:
                text, score = "so very very good good good", 5.0 + float(self.rng.normal())
            info.update(completion=text, score=score, prompt=f"prompt {self.episode}")
            self.episode += 1
        return np.zeros(1, dtype=np.float32), 0.0, done, False, info


def test_monitors_in_a_real_ppo_run_warn_once_when_length_doubles_and_diversity_collapses():
    length, diversity, kl = LengthDriftMonitor(1.5), DiversityMonitor(), KLDriftMonitor(0.5)
    model = PPO("MlpPolicy", ScriptedTextEnv(), n_steps=32, batch_size=32, n_epochs=1,
                device="cpu", seed=0)
    capture = Capture()
    model.set_logger(Logger(folder=None, output_formats=[capture]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.learn(total_timesteps=96, callback=[length, diversity, kl])
    messages = [str(w.message) for w in caught if w.category is FailureModeWarning]
    assert len(length.records) == 3
    assert length.records[0]["monitor/length_ratio"] == 1.0
    assert length.records[1]["monitor/length_ratio"] == pytest.approx(2.0)
    assert diversity.records[1]["monitor/self_similarity"] == 1.0
    assert diversity.records[0]["monitor/distinct_1"] > 0.9
    assert kl.records[0]["monitor/kl_mean"] == pytest.approx(1.0)  # summed per-step KL
    assert kl.records[0]["monitor/episodes"] == 8
    # three rollouts: KL over threshold throughout, length and diversity from rollout 2 on;
    # each crossing warns exactly once
    assert sum("LengthDriftMonitor" in m for m in messages) == 1
    assert sum("DiversityMonitor" in m for m in messages) == 1
    assert sum("KLDriftMonitor" in m for m in messages) == 1
    assert [r["monitor/length_alarm"] for r in length.records] == [0.0, 1.0, 1.0]
    dumped = [kv["monitor/length_ratio"] for kv in capture.dumps if "monitor/length_ratio" in kv]
    assert dumped == pytest.approx([1.0, 2.0, 2.0])  # reached SB3's logger, one dump per rollout


def test_hand_set_locals_and_rearming_after_recovery():
    monitor = LengthDriftMonitor(1.5)
    infos = [{"completion": "a b", "score": 1.0}, {"kl": 0.1}]
    monitor.update_locals({"infos": infos, "dones": np.array([True, False])})
    assert monitor._on_step()
    assert monitor.flush()["monitor/length_mean"] == 2.0
    for text, expect_warning in [("a b c d e", True), ("a b c d e f", False), ("a", False),
                                 ("a b c d", True)]:
        monitor.observe(["p"], [text])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            monitor.flush()
        assert bool(caught) is expect_warning, text
    assert monitor.flush() == {}  # nothing new since the last flush


def gold_prefers_short(prompts, completions):
    return [-len(c.split()) for c in completions]


def test_reward_hacking_gap_grows_when_proxy_rises_and_gold_falls():
    monitor = RewardHackingMonitor(gold_prefers_short, max_gap=1.0)
    rng = np.random.default_rng(0)
    texts = [" ".join(["w"] * int(n)) for n in rng.integers(2, 6, size=32)]
    monitor.observe(["p"] * 32, texts, rng.normal(size=32))
    first = monitor.flush()
    assert first["monitor/hacking_gap"] == pytest.approx(0.0)
    assert first["monitor/proxy_gold_spearman"] == pytest.approx(0.0, abs=0.5)
    longer = [t + " w w" for t in texts]
    with pytest.warns(FailureModeWarning, match="reward hacking"):
        monitor.observe(["p"] * 32, longer, rng.normal(size=32) + 2.0)
        second = monitor.flush()
    assert second["monitor/proxy_gain_z"] > 1.0 and second["monitor/gold_gain_z"] < -1.0
    assert second["monitor/hacking_gap"] > 2.0
    assert second["monitor/gold_mean"] == pytest.approx(first["monitor/gold_mean"] - 2.0)


def test_reward_hacking_needs_prompts():
    monitor = RewardHackingMonitor(gold_prefers_short)
    monitor.observe(["", ""], ["a", "b"], [1.0, 2.0])
    with pytest.raises(ValueError, match="prompt"):
        monitor.flush()


def test_default_monitors():
    names = [type(m).__name__ for m in default_monitors()]
    assert names == ["LengthDriftMonitor", "DiversityMonitor", "KLDriftMonitor"]
    with_gold = default_monitors(gold_prefers_short)
    assert isinstance(with_gold[0], RewardHackingMonitor)
    assert all(isinstance(m, BaseCallback) for m in with_gold)


def test_monitors_read_the_real_token_env_infos(tokenizer, policy, make_gpt2):
    """Our SB3 VecEnv's infos (prompt, completion, score, per-step kl) feed every monitor."""
    from rlhf_gym.envs import TextGenerationVecEnv

    env = TextGenerationVecEnv(
        2, tokenizer=tokenizer, reference_model=make_gpt2(1), policy_model=policy,
        prompts=["it is", "the cat is"], reward=lambda p, c: [len(x) for x in c],
        max_new_tokens=3, kl_coef=0.1, device="cpu",
    )
    env.seed(0)
    env.reset()
    monitors = default_monitors(gold_prefers_short)
    finished, rng = [], np.random.default_rng(0)
    kl_sums = np.zeros(2)
    for _ in range(8):
        _, _, dones, infos = env.step(rng.integers(0, env.action_space.n, size=2))
        kl_sums += [info["kl"] for info in infos]
        for row in np.flatnonzero(dones):
            finished.append((infos[row]["completion"], infos[row]["score"], kl_sums[row]))
            kl_sums[row] = 0.0
        for monitor in monitors:
            monitor.update_locals({"infos": infos, "dones": dones})
            monitor._on_step()
    hacking, length, _, kl = monitors
    assert len(finished) >= 4
    assert [(e.completion, e.score) for e in length.episodes] == [f[:2] for f in finished]
    assert [e.kl for e in kl.episodes] == pytest.approx([f[2] for f in finished])
    assert all(e.prompt in ("it is", "the cat is") for e in hacking.episodes)
    assert hacking.flush()["monitor/episodes"] == len(finished)
