"""One rank of tests/agents/test_distributed.py: ``torchrun --nproc_per_node 2 ddp_worker.py OUT``.

Every rank runs the same scenarios on tiny models, joining the process group through
``rlhf_gym.distributed.init_from_env`` as a real job does, and writes what the test checks to
``OUT``: ``rank{r}.json`` (numbers) and ``rank{r}_{name}.safetensors`` (weights, advantages).
The test process imports the builders below too, for its single-process references.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rlhf_gym.agents.common.callbacks import IterationCallback
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: word_lm

#: Episode starts of the synthetic rollout's 4 env columns over 6 steps: ranks 0 and 1 hold two
#: columns each, with 4 and 5 sequences, so that rank 0 runs out of minibatches first.
STARTS = ([0, 3], [0, 2], [0, 2, 4], [0, 3])
N_STEPS = 6


def agent_fixtures() -> Any:
    """tests/agents/conftest.py as a plain module (its word tokenizer, tiny LMs and env)."""
    spec = importlib.util.spec_from_file_location("agent_fixtures", HERE / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FIXTURES = agent_fixtures()


def build_agent(num_envs: int, critic: Path | None = None, **ppo: Any) -> Any:
    """An LMPPO on the tiny gpt2 and the word env, as the ``agent_factory`` fixture builds it."""
    from rlhf_gym.agents.ppo import LMPPO

    lm = FIXTURES.tiny_lm("gpt2")
    env = FIXTURES.make_env(lm, num_envs=num_envs, max_new_tokens=N_STEPS)
    policy_kwargs = {"model": lm} if critic is None else {"model": lm, "critic": str(critic)}
    options = {"n_steps": N_STEPS, "seed": 0, "device": "cpu", "learning_rate": 1e-3, **ppo}
    return LMPPO("LMPolicy", env, policy_kwargs=policy_kwargs, **options)


class FixedOrder:
    """Stands in for the minibatch shuffler: the same order of sequences every epoch."""

    def __init__(self, order: list[int]) -> None:
        self.order = np.asarray(order)

    def permutation(self, n: int) -> np.ndarray:
        assert n == len(self.order), f"{n} sequences, order for {len(self.order)}"
        return self.order.copy()


def synthetic_rollout(window: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A rollout of the 4 columns of :data:`STARTS`: prompts, tokens, rewards, values, log-probs."""
    rng = np.random.default_rng(seed)
    n_envs = len(STARTS)
    ids = np.zeros((N_STEPS, n_envs, window), dtype=np.int64)
    starts = np.zeros((N_STEPS, n_envs), dtype=bool)
    actions = rng.integers(3, 26, size=(N_STEPS, n_envs))
    for env, env_starts in enumerate(STARTS):
        for first, end in zip(env_starts, [*env_starts[1:], N_STEPS], strict=True):
            starts[first, env] = True
            prompt = rng.integers(3, 26, size=rng.integers(2, 6))
            for t in range(first, end):  # the observation grows by the episode's tokens
                seen = np.concatenate([prompt, actions[first:t, env]])
                ids[t, env, : len(seen)] = seen
    return {
        "input_ids": ids,
        "attention_mask": (ids > 0).astype(np.int64),
        "episode_starts": starts,
        "actions": actions,
        "rewards": rng.normal(0.3, 1.0, size=(N_STEPS, n_envs)).astype(np.float32),
        "values": rng.normal(0.0, 0.5, size=(N_STEPS, n_envs)).astype(np.float32),
        "log_probs": rng.normal(-3.3, 0.2, size=(N_STEPS, n_envs)).astype(np.float32),
    }


def fill_buffer(agent: Any, data: dict[str, np.ndarray], columns: slice) -> None:
    """Put ``columns`` of the rollout into the agent's buffer, as ``collect_rollouts`` does."""
    buffer = agent.rollout_buffer
    buffer.reset()
    for t in range(N_STEPS):
        obs = {key: data[key][t, columns] for key in ("input_ids", "attention_mask")}
        buffer.add(
            obs,
            data["actions"][t, columns].reshape(-1, 1),
            data["rewards"][t, columns],
            data["episode_starts"][t, columns],
            torch.as_tensor(data["values"][t, columns]),
            torch.as_tensor(data["log_probs"][t, columns]),
        )
    n_envs = buffer.n_envs
    buffer.compute_returns_and_advantage(torch.zeros(n_envs), np.ones(n_envs, dtype=bool))


def fixed_update(agent: Any, data: dict[str, np.ndarray], columns: slice, order: list[int]) -> None:
    """One ``train()`` on ``columns`` of the rollout, minibatches in ``order``, no log output."""
    from stable_baselines3.common.logger import Logger

    fill_buffer(agent, data, columns)
    assert agent.rollout_buffer.num_sequences == len(order), "STARTS and the order disagree"
    agent._shuffle_rng = FixedOrder(order)
    agent.set_logger(Logger(folder=None, output_formats=[]))
    agent.train()


def split_orders(counts: list[int], batch_size: int) -> tuple[list[list[int]], list[int]]:
    """Each rank's order (its sequences backwards) and the single process's order on the union.

    The union's minibatch ``m`` is every rank's minibatch ``m``, so one process with
    ``len(counts) * batch_size`` sequences per minibatch sees the same minibatches.
    """
    orders = [list(range(n))[::-1] for n in counts]
    offsets = np.cumsum([0, *counts])
    union: list[int] = []
    for m in range(0, max(counts), batch_size):
        for r, order in enumerate(orders):
            union.extend(int(offsets[r]) + i for i in order[m : m + batch_size])
    return orders, union


def weights(agent: Any) -> dict[str, torch.Tensor]:
    """Every policy tensor (LM, value head, critic), unshared so that safetensors saves them."""
    return {k: v.detach().clone().contiguous() for k, v in agent.policy.state_dict().items()}


def digest(array: Any) -> str:
    """A short hash of an array's bytes."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


# ----------------------------------------------------------------------------- scenarios


def split_update(out: Path, rank: int, record: dict[str, Any]) -> None:
    """This rank's half of the synthetic rollout, one update (two epochs, fixed minibatches)."""
    agent = build_agent(num_envs=2, batch_size=2, n_epochs=2, whiten_rewards=True)
    data = synthetic_rollout(agent.observation_space["input_ids"].shape[-1])
    orders, _ = split_orders([4, 5], batch_size=2)
    fixed_update(agent, data, slice(2 * rank, 2 * rank + 2), orders[rank])
    fields = ("advantages", "returns", "rewards")  # after the (global) whitening
    buffer = {f"buffer/{k}": torch.as_tensor(getattr(agent.rollout_buffer, k)) for k in fields}
    save_file({**weights(agent), **buffer}, str(out / f"rank{rank}_split.safetensors"))
    record["split_metrics"] = {k: v for k, v in agent.last_metrics.items() if "/" in k}


def write_critic(path: Path) -> None:
    """A critic directory in the layout a policy saves (``critic/`` trunk, value head)."""
    trunk = FIXTURES.tiny_lm("gpt2", seed=1).transformer
    trunk.save_pretrained(path / "critic")
    head = torch.nn.Linear(trunk.config.hidden_size, 1)
    save_file(
        {k: v.detach().clone() for k, v in head.state_dict().items()},
        str(path / "value_head.safetensors"),
    )


def iteration(agent: Any, first: bool, callback: Any = None) -> dict[str, Any]:
    """One rollout and update; what this rank saw and what it ended with."""
    beta = agent.kl_ctl.value
    agent.learn(agent.n_steps * agent.n_envs, callback=callback, reset_num_timesteps=first)
    return {
        "beta_before": beta,
        "beta": agent.kl_ctl.value,
        "episode_kls": [ep["kl"] for ep in agent.tracker.finished],
        "stats": agent._rollout_stats,
        "actions": digest(agent.rollout_buffer.actions),
        "advantages": agent.rollout_buffer.advantages.ravel().tolist(),
        "approxkl": agent.last_metrics["policy/approxkl"],
    }


def generator_state(agent: Any) -> list[str]:
    """Hashes of the sampling generator and the shuffler."""
    shuffle = json.dumps(agent._shuffle_rng.bit_generator.state, sort_keys=True)
    return [
        digest(agent.policy.generator.get_state().numpy()),
        digest(np.frombuffer(shuffle.encode(), np.uint8)),
    ]


class IterationWriter(IterationCallback):
    """Counts the iterations it acts on; a writer of files acts on rank 0 only."""

    main_process_only = True

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def on_iteration(self, iteration: int) -> None:
        self.calls += 1


def train_and_resume(out: Path, rank: int, record: dict[str, Any]) -> None:
    """Two iterations with a critic, a save, a third iteration; then load and redo the third."""
    from rlhf_gym import distributed
    from rlhf_gym.agents.ppo import LMPPO
    from stable_baselines3.common.logger import configure

    critic = out / "critic"
    with distributed.main_process_first():  # rank 0 writes it, the others then read it
        if distributed.is_main_process():
            write_critic(critic)
    options = {"batch_size": 2, "n_epochs": 2, "whiten_rewards": True, "kl_target": 1.0}
    agent = build_agent(
        2, critic, kl_horizon=20, tensorboard_log=str(out / f"tb_rank{rank}"), **options
    )
    save_file(weights(agent), str(out / f"rank{rank}_it0.safetensors"))
    record["iterations"] = []
    writer = IterationWriter()
    for it in (1, 2):
        record["iterations"].append(iteration(agent, first=it == 1, callback=writer))
        save_file(weights(agent), str(out / f"rank{rank}_it{it}.safetensors"))
    record["writer_calls"] = writer.calls
    record["saved_generators"] = generator_state(agent)
    agent.save(out / f"ckpt_rank{rank}")  # only rank 0 may write (to its own path)
    iteration(agent, first=False)
    save_file(weights(agent), str(out / f"rank{rank}_it3.safetensors"))
    agent.set_logger(configure(str(out / f"csv_rank{rank}"), ["csv"]))
    record["logger_outputs"] = len(agent.logger.output_formats)

    env = FIXTURES.make_env(FIXTURES.tiny_lm("gpt2"), num_envs=2, max_new_tokens=N_STEPS)
    resumed = LMPPO.load(out / "ckpt_rank0", env=env, device="cpu", force_reset=False)
    save_file(weights(resumed), str(out / f"rank{rank}_loaded.safetensors"))
    record["loaded_generators"] = generator_state(resumed)
    iteration(resumed, first=False)
    save_file(weights(resumed), str(out / f"rank{rank}_resumed_it3.safetensors"))


def mismatched_settings(rank: int, record: dict[str, Any]) -> None:
    """Ranks launched with different ``num_envs``: both refuse at setup, naming it."""
    try:
        build_agent(num_envs=2 + rank, batch_size=2)
    except ValueError as err:
        record["mismatch_error"] = str(err)


def non_finite_on_one_rank(rank: int, record: dict[str, Any]) -> None:
    """Rank 1's loss turns NaN: both ranks stop with the error (rank 0 must not wait forever)."""
    from rlhf_gym.agents.common import NonFiniteLossError
    from stable_baselines3.common.callbacks import BaseCallback

    class PoisonValueHeadOnRank1(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:  # after GAE: only rank 1's update sees NaN
            if rank == 1:
                with torch.no_grad():
                    self.model.policy.value_head.weight.fill_(float("nan"))

    agent = build_agent(num_envs=2, batch_size=2)
    try:
        agent.learn(agent.n_steps * agent.n_envs, callback=PoisonValueHeadOnRank1())
    except NonFiniteLossError as err:
        record["non_finite_error"] = str(err)


def main(out: Path) -> None:
    from rlhf_gym import distributed

    torch.set_num_threads(1)
    assert distributed.init_from_env(), "run me with torchrun --nproc_per_node 2"
    rank = distributed.rank()
    record: dict[str, Any] = {"world_size": distributed.world_size()}
    split_update(out, rank, record)
    train_and_resume(out, rank, record)
    mismatched_settings(rank, record)
    non_finite_on_one_rank(rank, record)
    (out / f"rank{rank}.json").write_text(json.dumps(record))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
