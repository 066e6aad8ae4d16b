"""An SB3 actor-critic policy whose actor is a causal language model.

Observations are the env's ``{"input_ids", "attention_mask"}`` Dict of int64 ids (left-aligned,
pad after); the action is the next token. The value is read from a head on the last hidden
state, either on the policy's own trunk (default) or on a separate critic trunk initialised from
a reward model directory. Logits are divided by the sampling temperature wherever a log-prob is
taken. Dropout is off: the LM is kept in eval mode even while it is trained.

Example:
    >>> from rlhf_gym.agents.ppo import LMPPO  # doctest: +SKIP
    >>> agent = LMPPO("LMPolicy", env, policy_kwargs={"model": "path/to/sft"})  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from rlhf_gym.agents.common.lora import ReferenceView, has_adapters
from rlhf_gym.agents.common.models import (
    CriticTrunk,
    check_token_spaces,
    load_critic,
    load_policy_lm,
    load_value_head,
    save_value_model,
    upcast_trainable,
)
from rlhf_gym.agents.common.token_state import TokenCacheState, TokenStep
from rlhf_gym.lm.loading import generation_config, torch_dtype, vocab_size_of
from rlhf_gym.lm.runner import CachedCausalLM
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn
from transformers import PreTrainedModel


class LMActorCriticPolicy(BasePolicy):
    """Actor-critic policy over tokens backed by any ``AutoModelForCausalLM``.

    Args:
        observation_space: the env's Dict space with int64 ``input_ids`` and ``attention_mask``.
        action_space: ``Discrete(V)``; V must equal the model's logits width.
        lr_schedule: learning-rate schedule (SB3 passes it).
        model: hub name, directory or model object of the policy LM (the SFT model).
        temperature: sampling temperature; logits are divided by it for every log-prob.
        critic: None for a value head on the policy trunk (option A), or a causal reward model
            directory whose trunk and head initialise a separate critic (option B).
        lora: None, or a ``peft.LoraConfig`` / dict of its arguments, or a folder of saved
            adapters, or a peft model already wrapping ``model``'s weights (built first so that
            the env's reference can be its :meth:`reference_view`; ``model`` then only names
            the base for checkpoints). Only the adapters and the value head train, and the
            reference is the same weights with adapters disabled.
        optimizer_class: the optimizer (Adam).
        optimizer_kwargs: its arguments besides the learning rate (default ``eps=1e-5``).
        use_sde: must be False (SB3 passes it).
        model_kwargs: extra ``from_pretrained`` arguments.
        with_value: False for a policy without a value head or critic (GRPO, RLOO): it holds
            the LM's parameters only, and its values are zeros.
        dtype: the compute precision, ``"float32"``, ``"bfloat16"`` or ``"float16"``: forwards
            on CUDA autocast to it (none for float32), and a LoRA policy's frozen base weights
            load in it. None: bf16 autocast on CUDA and the base as stored. Whatever it is, the
            trained weights and so the optimizer state are float32.

    Attributes:
        tokenizer: the tokenizer :meth:`save_pretrained` writes next to the weights (with a
            generation config that stops on its EOS), so that the saved folder loads with plain
            transformers; None writes none. ``train-ppo`` sets the env's.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        model: str | os.PathLike | PreTrainedModel,
        temperature: float = 1.0,
        critic: str | os.PathLike | None = None,
        lora: Any = None,
        optimizer_class: type[torch.optim.Optimizer] = torch.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        use_sde: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        dtype: str | None = None,
        with_value: bool = True,
    ) -> None:
        if not with_value and critic is not None:
            raise ValueError("a critic is a value model: pass critic=None with with_value=False.")
        if use_sde:
            raise ValueError(
                "gSDE is for continuous actions; LMActorCriticPolicy needs use_sde=False."
            )
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        super().__init__(
            observation_space,
            action_space,
            optimizer_class=optimizer_class,
            optimizer_kwargs={"eps": 1e-5} if optimizer_kwargs is None else optimizer_kwargs,
        )
        check_token_spaces(observation_space, action_space)
        self.temperature = float(temperature)
        self.dtype_name = dtype
        self.tokenizer: Any = None
        self.model = load_policy_lm(model, lora, model_kwargs or {}, dtype)
        if vocab_size_of(self.model) != action_space.n:
            raise ValueError(
                f"the env's action space is Discrete({action_space.n}) (the reference model's "
                f"vocabulary) but the policy model has {vocab_size_of(self.model)} logits: policy "
                "and reference vocabularies differ. Use one tokenizer and vocabulary for both."
            )
        self.critic_trunk: CriticTrunk | None = None
        self.value_head: nn.Linear | None = None
        self.with_value = with_value
        if with_value:
            hidden = self.model.config.get_text_config().hidden_size
            self.value_head = nn.Linear(hidden, 1)
            nn.init.zeros_(self.value_head.weight)
            nn.init.zeros_(self.value_head.bias)
            if critic is not None:
                self.critic_trunk, self.value_head = load_critic(critic)
            self.load_value_head(lora if isinstance(lora, str) else model)
        upcast_trainable(self)
        self.generator = torch.Generator()
        self.optimizer = self.optimizer_class(
            [p for p in self.parameters() if p.requires_grad],
            lr=lr_schedule(1),
            **self.optimizer_kwargs,
        )

    # -- modes and observation path ---------------------------------------------------------

    def train(self, mode: bool = True) -> LMActorCriticPolicy:
        """Keep every submodule in eval mode (dropout off) whatever SB3 asks."""
        super().train(False)
        return self

    def extract_features(self, obs: PyTorchObs, *_: Any) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        """Ids and mask as long tensors; SB3's ``preprocess_obs`` (a float cast) is skipped."""
        assert isinstance(obs, dict), "LMActorCriticPolicy needs the Dict observation."
        return obs["input_ids"].long(), obs["attention_mask"].long()

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The dtype forwards autocast to on CUDA (None: no autocast, as on CPU)."""
        if self.device.type != "cuda":
            return None
        dtype = torch_dtype(self.dtype_name or "bfloat16")
        return None if dtype == torch.float32 else dtype

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to :attr:`autocast_dtype` on CUDA, nothing on CPU or in float32."""
        dtype = self.autocast_dtype
        if dtype is not None:
            return torch.autocast("cuda", dtype=dtype)
        return contextlib.nullcontext()

    # -- full forwards -----------------------------------------------------------------------

    def _trunk_outputs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Temperature-scaled float32 logits ``(B, L, V)``, value hidden ``(B, L, H)`` or None.

        One policy forward, plus one of the separate critic if there is one.
        """
        on_trunk = self.with_value and self.critic_trunk is None
        with self.autocast():
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=on_trunk
            )
        hidden = out.hidden_states[-1] if on_trunk else None
        if self.critic_trunk is not None:
            hidden = self.critic_hidden(input_ids, attention_mask)
        return out.logits.float() / self.temperature, hidden

    def critic_hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The separate critic's last hidden state ``(B, L, H)``: one forward, autocast."""
        assert self.critic_trunk is not None, "only a policy built with critic=... has a critic."
        with self.autocast():
            out = self.critic_trunk(input_ids=input_ids, attention_mask=attention_mask)
        return out.hidden_states[-1]

    @property
    def values_from_act(self) -> bool:
        """Whether :meth:`act` gives the values: a head on the trunk, or none (zeros).

        False with a separate critic: its act values are NaN until the buffer's ``fill_values``
        replaces them with :meth:`sequence_values`, one teacher-forced forward per sequence.
        """
        return self.critic_trunk is None

    def sequence_values(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """The critic's values ``(B, P)`` float32 of the prefixes ending at ``positions``.

        One teacher-forced forward of the separate critic; the caller wraps it in ``no_grad``.
        Shapes as in :meth:`evaluate_sequences`.
        """
        return self._values_at(self.critic_hidden(input_ids, attention_mask), positions)

    def _values_at(self, hidden: torch.Tensor | None, positions: torch.Tensor) -> torch.Tensor:
        """Values at ``positions`` ``(B, P)`` of hidden states ``(B, L, H)``; zeros if None."""
        if hidden is not None:
            hidden = hidden.gather(1, positions[..., None].expand(-1, -1, hidden.shape[-1]))
        return self.value_of(hidden, tuple(positions.shape))

    def value_of(self, hidden: torch.Tensor | None, shape: tuple[int, ...] = ()) -> torch.Tensor:
        """Values from hidden states (any leading shape), float32; zeros of ``shape`` if None."""
        if hidden is None or self.value_head is None:
            return torch.zeros(shape, device=self.device)
        return self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1).float()

    def _last_step(self, obs: PyTorchObs) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and value at each row's last real token of an env observation."""
        ids, mask = self.extract_features(obs)
        logits, hidden = self._trunk_outputs(ids, mask)
        rows = torch.arange(ids.shape[0], device=ids.device)
        last = mask.sum(dim=1) - 1
        picked = None if hidden is None else hidden[rows, last]  # None: no value head
        return logits[rows, last], self.value_of(picked, tuple(rows.shape))

    def sample(self, logits: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Pure sampling (no top-k/top-p) from temperature-scaled logits, seeded generator."""
        if deterministic:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits.float(), dim=-1)
        if self.generator.device != probs.device:
            self.generator = torch.Generator(probs.device).manual_seed(
                self.generator.initial_seed()
            )
        return torch.multinomial(probs, 1, generator=self.generator).squeeze(-1)

    def forward(
        self, obs: PyTorchObs, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Actions, values and log-probs for a batch of observations (uncached forward)."""
        logits, values = self._last_step(obs)
        actions = self.sample(logits, deterministic)
        log_probs = torch.log_softmax(logits, dim=-1).gather(1, actions[:, None]).squeeze(1)
        return actions, values, log_probs

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> torch.Tensor:
        return self.sample(self._last_step(observation)[0], deterministic)

    def predict_values(self, obs: PyTorchObs) -> torch.Tensor:
        """Values of observations, shape ``(B, 1)`` as SB3 expects."""
        return self._last_step(obs)[1][:, None]

    def predict(  # type: ignore[override]
        self,
        observation: dict[str, np.ndarray],
        state: TokenCacheState | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, TokenCacheState | None]:
        """Next token for env observations; pass a :class:`TokenCacheState` to reuse the cache.

        Without a state each call re-encodes the observations; with one (``state =
        policy.initial_state(n)`` and the returned state fed back, like RecurrentPPO's LSTM
        states) each call costs one cached one-token forward.
        """
        if state is None:
            return super().predict(observation, None, episode_start, deterministic)
        obs_tensor, _ = self.obs_to_tensor(observation)
        with torch.no_grad():
            step = self.advance(state, obs_tensor, episode_start)
            actions = self.sample(step.logits, deterministic)
        return actions.cpu().numpy(), state

    # -- cached rollout path -----------------------------------------------------------------

    def initial_state(self, num_envs: int) -> TokenCacheState:
        """A fresh per-env KV-cache state for ``num_envs`` rows (the recurrent state)."""
        actor = CachedCausalLM(
            self.model,
            num_envs,
            temperature=self.temperature,
            output_hidden=self.with_value and self.critic_trunk is None,
        )
        return TokenCacheState.fresh(actor)

    def advance(
        self,
        state: TokenCacheState,
        obs: PyTorchObs,
        episode_starts: np.ndarray | None = None,
    ) -> TokenStep:
        """Bring every row of ``state`` up to its observation with one cached forward.

        Args:
            state: the per-env caches (from :meth:`initial_state`); updated in place.
            obs: the env's observation batch (``input_ids``, ``attention_mask``).
            episode_starts: per env, whether the observation starts a new episode.

        Returns:
            The temperature-scaled logits and the values at each row's last token: NaN with a
            separate critic (filled per sequence after the rollout), so none is used unfilled;
            with the reference in the state, its logits too.
        """
        assert isinstance(obs, dict), "pass the env's Dict observation (input_ids, attention_mask)."
        tokens, resets = state.feed(obs, episode_starts)
        with self.autocast():
            step, reference = state.forward(tokens, resets)
        rows = (len(tokens),)
        if self.values_from_act:
            return TokenStep(step.logits, self.value_of(step.hidden, rows), reference)
        return TokenStep(step.logits, torch.full(rows, torch.nan, device=self.device), reference)

    def act(
        self, state: TokenCacheState, obs: PyTorchObs, episode_starts: np.ndarray | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One cached step: actions, values, log-probs and entropies of the sampled tokens.

        The fifth item is their reference log-probs from a state with the reference, else None.
        """
        step = self.advance(state, obs, episode_starts)
        log_dist = torch.log_softmax(step.logits, dim=-1)
        actions = self.sample(step.logits)
        log_probs = log_dist.gather(1, actions[:, None]).squeeze(1)
        entropy = -(log_dist.exp() * log_dist).sum(dim=-1)
        return actions, step.values, log_probs, entropy, step.reference_logprobs(actions)

    # -- teacher-forced sequences (training) -------------------------------------------------

    def evaluate_sequences(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        positions: torch.Tensor,
        actions: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One teacher-forced forward per sequence: log-probs, values, entropies per action.

        Args:
            input_ids: ``(B, L)`` right-padded context + actions.
            attention_mask: ``(B, L)``.
            positions: ``(B, T)`` index of the token whose next-token distribution chose each
                action (clamped into range for padding slots).
            actions: ``(B, T)`` the actions taken.

        Returns:
            ``(B, T)`` log-probs, values and entropies (padding slots hold garbage; mask them).
        """
        logits, hidden = self._trunk_outputs(input_ids, attention_mask)
        picked = logits.gather(1, positions[..., None].expand(-1, -1, logits.shape[-1]))
        log_dist = torch.log_softmax(picked, dim=-1)
        log_probs = log_dist.gather(2, actions[..., None]).squeeze(-1)
        entropy = -(log_dist.exp() * log_dist).sum(dim=-1)
        return log_probs, self._values_at(hidden, positions), entropy

    # -- reference through disabled adapters (LoRA) -----------------------------------------

    @property
    def has_lora(self) -> bool:
        """Whether the policy trains LoRA adapters on frozen base weights."""
        return has_adapters(self.model)

    def reference_view(self) -> ReferenceView:
        """The LoRA reference as a module to give the env: shared weights, adapters disabled."""
        return ReferenceView(self.model)

    # -- persistence -------------------------------------------------------------------------

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Policy LM (or its LoRA adapters) via ``save_pretrained`` plus the value head.

        With :attr:`tokenizer` set, the tokenizer and a generation config that stops on its EOS
        (and on the model's own stop ids) go with them.
        """
        os.makedirs(path, exist_ok=True)
        self.model.save_pretrained(path)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(path)
            generation_config(self.model, self.tokenizer).save_pretrained(path)
        save_value_model(path, self.value_head, self.critic_trunk)

    def load_value_head(self, folder: Any) -> bool:
        """Load ``folder/value_head.safetensors`` when ``folder`` is a path holding one.

        Returns:
            Whether a value head was loaded (weights are copied in place, so an optimizer that
            already holds them keeps working).
        """
        return self.value_head is not None and load_value_head(self.value_head, folder)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            temperature=self.temperature,
            optimizer_kwargs=self.optimizer_kwargs,
            dtype=self.dtype_name,
            with_value=self.with_value,
        )
        return data
