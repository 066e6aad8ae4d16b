"""Checkpoints of an LM agent (:class:`~rlhf_gym.agents.common.LMOnPolicyAlgorithm`).

``save(path)`` writes a directory::

    path/policy/      the policy LM (or its LoRA adapters) via save_pretrained (safetensors),
                      value_head.safetensors, and critic/ for a separate critic
    path/agent.zip    SB3's checkpoint of everything else: optimizer state, schedules,
                      counters, KL controller, RNG states, last observation

The env (with its frozen reference and reward models) is never saved. Everything is written to
a temporary directory first and renamed over ``path`` only when complete, so an interrupted or
failed save never replaces a good checkpoint.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

POLICY_DIR = "policy"
AGENT_ZIP = "agent.zip"
SAVED_MODEL = "<saved policy directory>"


def replace_directory(tmp: Path, path: Path) -> None:
    """Move the complete ``tmp`` to ``path``, keeping the old ``path`` until the move is done."""
    old = path.with_name(path.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    if old.exists():
        shutil.rmtree(old)


class CheckpointMixin:
    """Save/load overrides for an SB3 algorithm whose policy is an LM (see the module doc)."""

    policy: Any
    policy_kwargs: dict[str, Any]

    def _excluded_save_params(self) -> list[str]:
        # the env holds the frozen reference and reward models; the policy goes to policy/
        return [*super()._excluded_save_params(), "_rollout_state", "_policy_dir"]  # type: ignore[misc]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy.optimizer"], []

    def save(self, path: str | os.PathLike, exclude: Any = None, include: Any = None) -> None:
        """Write the checkpoint directory atomically (temp directory, then rename)."""
        path = Path(path)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        self.policy.save_pretrained(tmp / POLICY_DIR)
        self._rng_state = {"sample": self.policy.generator.get_state()}
        original = self.policy_kwargs
        saved = dict(original)
        if self.policy.has_lora:
            if not isinstance(saved["model"], str | os.PathLike):
                raise ValueError("saving a LoRA policy needs its base model as a name or path.")
            saved["lora"] = SAVED_MODEL
        else:
            saved["model"] = SAVED_MODEL
        if saved.get("critic") is not None:
            saved["critic"] = SAVED_MODEL
        self.policy_kwargs = saved
        try:
            super().save(tmp / AGENT_ZIP, exclude=exclude, include=include)  # type: ignore[misc]
        finally:
            self.policy_kwargs = original
        replace_directory(tmp, path)

    @classmethod
    def load(  # type: ignore[override]
        cls,
        path: str | os.PathLike,
        env: Any = None,
        device: str | torch.device = "auto",
        force_reset: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Load a directory written by :meth:`save`.

        ``force_reset=False`` keeps the saved last observation, to continue with the same live
        env object (an exact continuation); a new env starts new episodes.
        """
        path = Path(path)
        if not (path / AGENT_ZIP).is_file():
            raise FileNotFoundError(
                f"{path / AGENT_ZIP} not found: not a {cls.__name__} checkpoint directory "
                "(one written by save())."
            )
        return super().load(  # type: ignore[misc]
            path / AGENT_ZIP,
            env=env,
            device=device,
            force_reset=force_reset,
            _policy_dir=str(path / POLICY_DIR),
            **kwargs,
        )

    def _apply_saved_policy_dir(self) -> None:
        """On load, point the policy kwargs that were saved as placeholders at ``policy/``."""
        policy_dir = getattr(self, "_policy_dir", None)
        if policy_dir is None:
            return
        self.policy_kwargs = {
            key: policy_dir if value == SAVED_MODEL else value
            for key, value in self.policy_kwargs.items()
        }

    def _restore_rng_state(self) -> None:
        state = getattr(self, "_rng_state", None)
        if state is not None:
            self.policy.generator.set_state(state["sample"])
