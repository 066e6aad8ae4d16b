"""Batched, KV-cached incremental forward of a causal LM over N independent rows.

Both the env (reference log-probs) and the agent (policy actions) advance N episodes one token
at a time, and episodes restart at different times. This runner keeps one shared KV cache whose
columns are a global clock: each call appends a chunk of columns to every row, a row's unused
columns are masked out, and each row carries its own position counter. A reset row masks its
old columns and starts again from position 0, so a step costs one cached forward however the
episodes are staggered.

Masked columns accumulate as episodes restart; when the cache holds more than
``compact_factor`` times the longest live row, it is rebuilt from the rows' token histories with
one forward (amortised cost, a small fraction of the steps).

Transformers counts a sliding window in cache columns, which here are not a row's own tokens. A
model with sliding-window layers (Mistral, Gemma 2/3, Qwen2 with ``use_sliding_window``) therefore
keeps every column and gets explicit per-row 4D masks whose windows count the row's own tokens
(:mod:`rlhf_gym.lm.attention`); a model whose cache cannot be made exact is refused at
construction. Models without a sliding window take the plain 2D-mask path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from rlhf_gym.lm.attention import sliding_window_of
from transformers import DynamicCache, PreTrainedModel


@dataclass
class CachedStep:
    """What one call returns for every row.

    Attributes:
        logits: ``(N, vocab)`` next-token logits at each row's last token, divided by the
            sampling temperature, in float32.
        hidden: ``(N, hidden)`` last-layer hidden state at each row's last token, or None when
            the runner was built with ``output_hidden=False``.
    """

    logits: torch.Tensor
    hidden: torch.Tensor | None


class CachedCausalLM:
    """Advance N rows of a causal LM by a few tokens each, with one forward per call.

    Args:
        model: any ``AutoModelForCausalLM``; it is used as given (the caller sets eval/grad mode).
        num_rows: N, the number of independent rows (envs).
        temperature: logits are divided by it, as everywhere a log-prob is taken.
        output_hidden: also return the last hidden state (for a value head).
        compact_factor: rebuild the cache when its length exceeds this times the longest row.

    Raises:
        ValueError: for a model whose attention a shared cache cannot reproduce per row (see
            :func:`~rlhf_gym.lm.attention.sliding_window_of`), or a temperature <= 0.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        num_rows: int,
        *,
        temperature: float = 1.0,
        output_hidden: bool = False,
        compact_factor: float = 2.0,
    ) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        self.model = model
        self.num_rows = num_rows
        self.temperature = temperature
        self.output_hidden = output_hidden
        self.compact_factor = compact_factor
        self._sliding = sliding_window_of(model)  # None: no sliding layers, the 2D-mask path
        self.num_forwards = 0
        self._histories: list[list[int]] = [[] for _ in range(num_rows)]
        self._cache: DynamicCache | None = None
        self._mask: torch.Tensor | None = None  # (N, columns) 1 where a column is a live token
        self._last = CachedStep(torch.empty(0), None)

    @property
    def device(self) -> torch.device:
        """The model's device; inputs are moved there."""
        return next(self.model.parameters()).device

    def histories(self) -> list[list[int]]:
        """Each row's live token ids, oldest first (a copy)."""
        return [list(h) for h in self._histories]

    def advance(
        self, tokens: Sequence[Sequence[int]], reset: Sequence[bool] | None = None
    ) -> CachedStep:
        """Append ``tokens[i]`` to row i (after forgetting it if ``reset[i]``) with one forward.

        A row given no tokens is left as it was and keeps its previous outputs.

        Args:
            tokens: per row, the ids to append (one action, or a whole prompt after a reset).
            reset: per row, whether to forget the row's history first. Default: no resets.

        Returns:
            The logits (and hidden states) at each row's last token.
        """
        if len(tokens) != self.num_rows:
            raise ValueError(f"expected tokens for {self.num_rows} rows, got {len(tokens)}.")
        reset = [False] * self.num_rows if reset is None else list(reset)
        for row, do_reset in enumerate(reset):
            if do_reset:
                self._histories[row] = []
                if self._mask is not None:
                    self._mask[row] = 0
        empty = [row for row, t in enumerate(tokens) if len(t) == 0]
        if any(reset[row] for row in empty):
            raise ValueError("a reset row needs its new prefix (at least one token).")
        if len(empty) == self.num_rows:
            return self._last
        if self._cache is not None and self._needs_compaction(tokens):
            self._cache, self._mask = None, None
            tokens = [h + list(t) for h, t in zip(self._histories, tokens, strict=True)]
            self._histories = [[] for _ in range(self.num_rows)]
        return self._forward(tokens)

    def _needs_compaction(self, tokens: Sequence[Sequence[int]]) -> bool:
        assert self._mask is not None
        longest = max(len(h) + len(t) for h, t in zip(self._histories, tokens, strict=True))
        width = max(len(t) for t in tokens)
        return self._mask.shape[1] + width > self.compact_factor * max(longest, 8)

    def _chunk(
        self, tokens: Sequence[Sequence[int]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(ids, mask, positions)`` of a chunk: each row's new tokens right-aligned."""
        starts = [len(h) for h in self._histories]
        if all(len(t) == 1 for t in tokens):  # the per-token step: no Python loop over rows
            ids = torch.tensor([t[0] for t in tokens], dtype=torch.long)[:, None]
            return ids, torch.ones_like(ids), torch.tensor(starts, dtype=torch.long)[:, None]
        width = max(len(t) for t in tokens)
        ids = torch.zeros((self.num_rows, width), dtype=torch.long)
        mask = torch.zeros((self.num_rows, width), dtype=torch.long)
        positions = torch.zeros((self.num_rows, width), dtype=torch.long)
        for row, new in enumerate(tokens):
            n, start = len(new), starts[row]
            if n:
                ids[row, width - n :] = torch.as_tensor(list(new), dtype=torch.long)
                mask[row, width - n :] = 1
                positions[row, width - n :] = torch.arange(start, start + n)
            positions[row, : width - n] = max(start + n - 1, 0)
        return ids, mask, positions

    def _forward(self, tokens: Sequence[Sequence[int]]) -> CachedStep:
        """One forward over a chunk: each row's new tokens right-aligned, the rest masked."""
        device = self.device
        ids, chunk_mask, positions = self._chunk(tokens)
        for history, new in zip(self._histories, tokens, strict=True):
            history.extend(int(t) for t in new)
        chunk_mask = chunk_mask.to(device)
        mask = chunk_mask if self._mask is None else torch.cat([self._mask, chunk_mask], dim=1)
        if self._cache is None:
            self._cache = self._new_cache()
        out = self.model(
            input_ids=ids.to(device),
            attention_mask=self._attention(mask, ids.shape[1]),
            position_ids=positions.to(device),
            cache=self._cache,
            use_cache=True,
            output_hidden_states=self.output_hidden,
        )
        self.num_forwards += 1
        self._mask = mask
        self._cache = out.cache
        logits = out.logits[:, -1, :].float() / self.temperature
        hidden = out.hidden_states[-1][:, -1, :] if self.output_hidden else None
        return self._remember(logits, hidden, [row for row, t in enumerate(tokens) if len(t)])

    def _new_cache(self) -> DynamicCache:
        """A cache laid out by the config, or of full layers only for a sliding-window model.

        A config's sliding layers keep only the last window of columns, and here the columns are
        a clock shared by all rows, not a row's own tokens.
        """
        return (
            DynamicCache() if self._sliding is not None else DynamicCache(config=self.model.config)
        )

    def _attention(self, mask: torch.Tensor, width: int) -> torch.Tensor | dict[str, torch.Tensor]:
        """The 2D live mask, or per-row 4D masks whose sliding windows count each row's tokens."""
        return mask if self._sliding is None else self._sliding.masks(mask, width)

    def _remember(
        self, logits: torch.Tensor, hidden: torch.Tensor | None, moved: list[int]
    ) -> CachedStep:
        """Keep the outputs of the rows that moved; the others keep their previous ones."""
        if self._last.logits.numel() == 0 or len(moved) == self.num_rows:
            self._last = CachedStep(logits, hidden)
        else:
            merged_logits = self._last.logits.clone()
            merged_logits[moved] = logits[moved]
            merged_hidden = None
            if hidden is not None and self._last.hidden is not None:
                merged_hidden = self._last.hidden.clone()
                merged_hidden[moved] = hidden[moved]
            self._last = CachedStep(merged_logits, merged_hidden)
        return self._last
