"""Checkpoints of an LM agent (:class:`~rlhf_gym.agents.common.LMOnPolicyAlgorithm`), no pickle.

``save(path)`` writes a directory (``docs/checkpoints.md``)::

    path/policy/                the policy LM (or its LoRA adapters) via save_pretrained
                                (safetensors), value_head.safetensors, critic/ for a separate critic
    path/state.json             hyperparameters, counters, the KL controller, numpy generator
                                states, the env's episode state and the caller's ``extra`` (JSON)
    path/state.safetensors      the arrays state.json points at: last observation, episode
                                starts, episode sums, the env's token buffers, torch generator
    path/optimizer.safetensors  the optimizer's tensors (its param_groups are in state.json)
    path/checkpoint.json        the manifest, written last: each file's size and SHA-256

The env (with its frozen reference and reward models) is never saved, only its episode state.
In a distributed run (docs/distributed.md) ``save`` is called on every rank and rank 0 alone
writes: the top-level state is rank 0's and ``other_ranks`` holds each other rank's generators,
rollout and episodes, so that ``load`` on every rank of a relaunch continues that rank's shard.
The directory is built next to ``path`` and swapped in so that a kill at any moment leaves a
loadable checkpoint (:mod:`~rlhf_gym.agents.common.checkpoint_files`); loading reads JSON and
safetensors only.
"""

from __future__ import annotations

import inspect
import os
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from rlhf_gym.agents.common.checkpoint_files import (
    CheckpointError,
    locate,
    pause,
    recovery,
    write_checkpoint,
)
from rlhf_gym.agents.common.checkpoint_state import (
    encode_state,
    optimizer_state,
    optimizer_state_dict,
    read_state,
    write_state,
)
from rlhf_gym.agents.common.kl_controller import AdaptiveKLController, FixedKLController
from rlhf_gym.distributed import all_reduce_sum, gather_to_main, is_distributed, rank, world_size
from safetensors import SafetensorError
from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule

POLICY_DIR = "policy"
SAVED_MODEL = "<saved policy directory>"
#: Counters restored on load, so that schedules, logs and callbacks continue where they were.
COUNTERS = ("num_timesteps", "_n_updates", "_n_rollouts", "_episode_num")
#: Constructor arguments that are not settings: given to load, or saved apart.
NOT_PARAMS = frozenset({"self", "policy", "env", "policy_kwargs", "device"})
#: The state each rank of a distributed run has its own of.
RANK_STATE = ("generators", "rollout", "env")


class CheckpointMixin:
    """``save``/``load`` for an SB3 algorithm whose policy is an LM (see the module doc).

    The agent is rebuilt from its constructor arguments: those of every class in its MRO from
    this mixin down (``LMOnPolicyAlgorithm``, ``LMPPO``, ...) that it keeps as attributes of
    the same name, plus ``_checkpoint_params``. Each must be a plain value (a float, not a
    callable schedule).
    """

    _checkpoint_params: ClassVar[tuple[str, ...]] = ("tensorboard_log",)
    policy: Any
    policy_kwargs: dict[str, Any]

    def save(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:  # type: ignore[override]
        """Write the checkpoint directory; a kill at any moment leaves a loadable one.

        Distributed, every rank must call it (it gathers each rank's episodes); rank 0 writes,
        with its own ``path`` and ``extra``, and every rank returns once the files are complete.

        Args:
            path: the directory; it is replaced only once the new one is complete.
            extra: JSON-able data kept with it (e.g. a training loop's records), handed back
                as ``checkpoint_extra`` by :meth:`load`.

        Raises:
            TypeError: when a setting is not data (a callable schedule, an object in
                ``policy_kwargs``), before anything is written.
            PermissionError: when the folder cannot be replaced; nothing is changed then.
            CheckpointError: on the other ranks, when rank 0 could not write.
        """
        state = self._checkpoint_state(extra or {})
        state["optimizer"] = optimizer_state(self.policy.optimizer)
        if is_distributed():
            self._save_from_rank_0(path, state)
        else:
            self._write(path, state)

    def _save_from_rank_0(self, path: str | os.PathLike, state: dict[str, Any]) -> None:
        """Gather every rank's own state; rank 0 writes; all learn whether it could."""
        ranks = gather_to_main({key: state[key] for key in RANK_STATE})
        error: Exception | None = None
        if ranks is not None:
            state.update(world_size=len(ranks), other_ranks=ranks[1:])
            try:
                self._write(path, state)
            except Exception as err:  # re-raised below, once the others know
                error = err
        (failed,) = all_reduce_sum([error is not None])  # also: no rank reads a half-written save
        if error is not None:
            raise error
        if failed:
            raise CheckpointError(f"rank 0 could not write the checkpoint {path}; see its error.")

    def _write(self, path: str | os.PathLike, state: dict[str, Any]) -> None:
        """Write ``state`` and the policy's weights as the checkpoint directory ``path``."""
        encoded, tensors = encode_state(state, files={"optimizer": "optimizer"})

        def write(tmp: Path) -> None:
            self.policy.save_pretrained(tmp / POLICY_DIR)
            pause()
            write_state(tmp, encoded, tensors)

        write_checkpoint(path, write)

    @classmethod
    def load(  # type: ignore[override]
        cls,
        path: str | os.PathLike,
        env: Any = None,
        device: str | torch.device = "auto",
        force_reset: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Rebuild the agent from a directory written by :meth:`save` (or its ``.old`` fallback).

        Args:
            path: the checkpoint directory. When a save was killed between its renames it is
                missing, and the previous checkpoint ``path.old`` is loaded (with a warning).
            env: the env to continue in (None: prediction only).
            device: where the policy goes.
            force_reset: True starts new episodes at the next ``learn`` (SB3's default).
                False continues exactly where the save was: the env's episodes (token buffers,
                generators, β) are restored into ``env``, with the last observation and the
                running episode sums, so that ``learn(..., reset_num_timesteps=False)`` gives
                the same numbers as a run that was never interrupted.
            **kwargs: constructor arguments that replace the saved ones (e.g. ``verbose``).

        Distributed, every rank calls it on the same directory; each takes its own generators
        and episodes from it (``force_reset=False`` needs as many ranks as the save had).

        Returns:
            The agent; ``agent.checkpoint_extra`` is the ``extra`` given to :meth:`save`.

        Raises:
            CheckpointError: missing, incomplete or corrupt checkpoint (the file is named), a
                file that could carry pickle, or a checkpoint of another class.
        """
        located = locate(path)
        state = read_state(located)
        if state.get("class") != cls.__name__:
            raise CheckpointError(
                f"{located} holds a {state.get('class')} checkpoint; load it with that class."
            )
        policy_kwargs = saved_policy_kwargs(state["policy_kwargs"], located / POLICY_DIR)
        policy_kwargs.update(kwargs.pop("policy_kwargs", None) or {})
        params = {**state["params"], **kwargs}
        agent = cls(  # type: ignore[call-arg]
            "LMPolicy", env, device=device, policy_kwargs=policy_kwargs,
            _init_setup_model=False, **params,
        )  # fmt: skip
        if env is None:
            agent._set_saved_spaces(state["spaces"])
        agent.kl_ctl = kl_controller_from(state["kl_controller"])
        try:
            agent._setup_model()  # reads the weights in policy/
        except SafetensorError as err:  # only when policy/ changed since the manifest
            raise CheckpointError(
                f"a weights file in {located / POLICY_DIR} cannot be read ({err}). "
                f"{recovery(located, None)}"
            ) from err
        agent._restore(state, force_reset)
        agent.checkpoint_extra = state["extra"]
        return agent

    # ------------------------------------------------------------------ what is saved

    def _checkpoint_state(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Everything but the weights and the optimizer, as JSON values and arrays."""
        agent: Any = self
        env_state = getattr(agent.env, "get_state", None) if agent.env is not None else None
        return {
            "class": type(self).__name__,
            "params": self._saved_params(),
            "policy_kwargs": self._saved_policy_kwargs(),
            "spaces": {
                "vocab_size": int(agent.action_space.n),
                "window": int(agent.observation_space["input_ids"].shape[-1]),
                "n_envs": int(agent.n_envs),
            },
            "counters": {name: int(getattr(agent, name)) for name in COUNTERS},
            "kl_controller": kl_controller_state(agent.kl_ctl),
            "generators": {
                "sample": self.policy.generator.get_state(),
                "sample_device": self.policy.generator.device.type,
                "shuffle": agent._shuffle_rng.bit_generator.state,
            },
            "rollout": self._rollout_state_snapshot(),
            "env": env_state() if env_state is not None else None,
            "extra": extra,
        }

    def _saved_params(self) -> dict[str, Any]:
        """The constructor arguments in ``_checkpoint_params``, schedules as their constant."""
        params = {}
        for name in constructor_params(type(self)) + list(self._checkpoint_params):
            value = getattr(self, name)
            if isinstance(value, FloatSchedule):
                value = value.value_schedule
            if isinstance(value, ConstantSchedule):
                value = value.val
            if callable(value):
                raise TypeError(
                    f"{name} is a schedule ({value!r}); a checkpoint holds data, not code (no "
                    f"pickle), so it cannot be saved. Pass {name} as a float, or give the "
                    f"schedule again on load: load(path, {name}=...)."
                )
            params[name] = value
        return params

    def _saved_policy_kwargs(self) -> dict[str, Any]:
        """``policy_kwargs`` with the saved models replaced by a placeholder for ``policy/``."""
        alias = getattr(self, "policy_aliases", {}).get("LMPolicy")
        if type(self.policy) is not alias:
            raise TypeError(
                f"{type(self.policy).__name__} is not the 'LMPolicy' alias's class; a checkpoint "
                "rebuilds its policy by that alias (classes are code, never saved)."
            )
        saved = dict(self.policy_kwargs)
        if self.policy.has_lora:
            if not isinstance(saved["model"], str | os.PathLike):
                raise ValueError("saving a LoRA policy needs its base model as a name or path.")
            saved["model"], saved["lora"] = os.fspath(saved["model"]), SAVED_MODEL
        else:
            saved["model"] = SAVED_MODEL
        if saved.get("critic") is not None:
            saved["critic"] = SAVED_MODEL
        optimizer = saved.get("optimizer_class")
        if optimizer is not None:
            if getattr(torch.optim, optimizer.__name__, None) is not optimizer:
                raise TypeError(f"optimizer_class {optimizer!r} is not a torch.optim class.")
            saved["optimizer_class"] = optimizer.__name__
        return saved

    def _rollout_state_snapshot(self) -> dict[str, Any] | None:
        """The last observation, episode starts and running episode sums, or None."""
        agent: Any = self
        if agent._last_obs is None:
            return None
        tracker = agent.tracker
        sums = {} if tracker is None else {
            k: v.copy() for k, v in vars(tracker).items() if isinstance(v, np.ndarray)
        }  # fmt: skip
        return {
            "obs": {k: np.asarray(v) for k, v in agent._last_obs.items()},
            "episode_starts": np.asarray(agent._last_episode_starts, dtype=bool),
            "episode_sums": sums,
        }

    # ------------------------------------------------------------------ restoring

    def _set_saved_spaces(self, saved: dict[str, int]) -> None:
        """Without an env, the token spaces and the number of envs the agent was saved with."""
        from rlhf_gym.envs.text_generation import token_observation_space

        agent: Any = self
        agent.observation_space = token_observation_space(saved["vocab_size"], saved["window"])
        agent.action_space = spaces.Discrete(saved["vocab_size"])
        agent.n_envs = saved["n_envs"]

    def _restore(self, state: dict[str, Any], force_reset: bool) -> None:
        """Counters, generators, optimizer, and (``force_reset=False``) the episodes."""
        agent: Any = self
        for name, value in state["counters"].items():
            setattr(agent, name, value)
        own = rank_state(state, agent.env is not None and not force_reset)
        if own is not None:  # else a rank the save did not have: its own seed's generators
            self._restore_generators(own["generators"])
        self.policy.optimizer.load_state_dict(optimizer_state_dict(state["optimizer"]))
        rollout = None if own is None else own["rollout"]
        agent._last_obs = None
        if agent.env is None or force_reset or rollout is None:
            return
        assert own is not None
        set_env_state = getattr(agent.env, "set_state", None)
        if own["env"] is not None and set_env_state is not None:
            set_env_state(own["env"])
        elif own["env"] is not None:
            warnings.warn(
                "the env has no set_state(): its episodes are not restored, so the run "
                "continues from the saved observation in the env as it is.",
                stacklevel=3,
            )
        agent._last_obs = {k: np.array(v) for k, v in rollout["obs"].items()}
        agent._last_episode_starts = np.array(rollout["episode_starts"], dtype=bool)
        if agent.tracker is not None:
            for key, value in rollout["episode_sums"].items():
                setattr(agent.tracker, key, np.array(value))

    def _restore_generators(self, saved: dict[str, Any]) -> None:
        agent: Any = self
        agent._shuffle_rng.bit_generator.state = saved["shuffle"]
        if saved["sample_device"] != self.policy.generator.device.type:
            warnings.warn(
                f"the sampling generator was saved on {saved['sample_device']} and cannot be "
                f"restored on {self.policy.generator.device.type}; it restarts from the seed.",
                stacklevel=3,
            )
            return
        self.policy.generator.set_state(saved["sample"])


def rank_state(state: dict[str, Any], continues: bool) -> dict[str, Any] | None:
    """The calling rank's generators, rollout and episodes in a checkpoint state, or None.

    Args:
        state: the checkpoint's state (rank 0's at the top, the others in ``other_ranks``).
        continues: whether the load continues the saved episodes (``force_reset=False``).

    Raises:
        CheckpointError: continuing with another number of ranks than the save had.
    """
    saved = int(state.get("world_size", 1))
    if continues and saved != world_size():
        raise CheckpointError(
            f"the checkpoint was saved by {saved} process(es) and is loaded by {world_size()}: "
            f"continuing each rank's episodes needs {saved} (torchrun --nproc_per_node "
            f"{saved}); or load with force_reset=True to start new episodes."
        )
    others = state.get("other_ranks", [])
    if rank() == 0:
        return state
    return others[rank() - 1] if rank() <= len(others) else None


def read_checkpoint_extra(path: str | os.PathLike) -> dict[str, Any]:
    """The ``extra`` saved with a checkpoint (or its ``.old`` fallback), without the weights."""
    return read_state(locate(path), only="extra")["extra"] or {}


def constructor_params(cls: type) -> list[str]:
    """The named constructor arguments of ``cls`` and its bases that derive from the mixin."""
    names: list[str] = []
    for klass in cls.__mro__:
        if not issubclass(klass, CheckpointMixin) or "__init__" not in vars(klass):
            continue
        for name, param in inspect.signature(klass.__init__).parameters.items():
            named = param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
            setting = name not in NOT_PARAMS and not name.startswith("_")
            if named and setting and name not in names:
                names.append(name)
    return names


def saved_policy_kwargs(saved: dict[str, Any], policy_dir: Path) -> dict[str, Any]:
    """The saved ``policy_kwargs`` with the placeholders pointing at ``policy_dir``."""
    kwargs = {k: os.fspath(policy_dir) if v == SAVED_MODEL else v for k, v in saved.items()}
    name = kwargs.get("optimizer_class")
    if isinstance(name, str):
        optimizer = getattr(torch.optim, name, None)
        if not (isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)):
            raise CheckpointError(f"optimizer_class {name!r} is not a torch.optim optimizer.")
        kwargs["optimizer_class"] = optimizer
    return kwargs


def kl_controller_state(controller: AdaptiveKLController | FixedKLController) -> dict[str, Any]:
    """The controller's type and numbers, as JSON."""
    if isinstance(controller, AdaptiveKLController):
        return {
            "type": "adaptive",
            "value": controller.value,
            "target": controller.target,
            "horizon": controller.horizon,
        }
    return {"type": "fixed", "value": controller.value}


def kl_controller_from(saved: dict[str, Any]) -> AdaptiveKLController | FixedKLController:
    """The controller :func:`kl_controller_state` describes."""
    if saved["type"] == "adaptive":
        return AdaptiveKLController(saved["value"], saved["target"], saved["horizon"])
    return FixedKLController(saved["value"])
