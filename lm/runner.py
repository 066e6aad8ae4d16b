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

The live mask and the token of each column are written in place into buffers reserved ahead
of need, so a step does no work per row in Python. The KV cache stays transformers'
``DynamicCache``, which concatenates: in-place KV buffers were measured on CPU and were no
faster (attention then reads a strided view, which costs what the copy saved).

Transformers counts a sliding window in cache columns, which here are not a row's own tokens. A
model with sliding-window layers (Mistral, Gemma 2/3, Qwen2 with ``use_sliding_window``) therefore
keeps every column and gets explicit per-row 4D masks whose windows count the row's own tokens
(:mod:`rlhf_gym.lm.attention`); a model whose cache cannot be made exact is refused at
construction. Models without a sliding window take the plain 2D-mask path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from rlhf_gym.lm.attention import sliding_window_of
from transformers import DynamicCache, PreTrainedModel

#: Columns reserved ahead when a buffer fills: a quarter of what it holds, at least this many.
MIN_RESERVE = 64


def reserved_columns(needed: int, capacity: int) -> int:
    """The capacity a buffer holding ``capacity`` columns grows to when ``needed`` do not fit.

    Growing by a quarter keeps the copying per column constant on average and the unused room
    under a quarter of the buffer (or ``MIN_RESERVE`` columns).
    """
    return max(needed, capacity + max(capacity // 4, MIN_RESERVE))


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
        self._last = CachedStep(torch.empty(0), None)
        self._clear()

    def _clear(self) -> None:
        """Forget every row: no cache, no columns."""
        self._cache: DynamicCache | None = None
        self._live: torch.Tensor | None = None  # (N, reserved) 1 where a column is a live token
        self._tokens: torch.Tensor | None = None  # (N, reserved) the token id of each column
        self._columns = 0  # columns in use
        self._lengths = np.zeros(self.num_rows, dtype=np.int64)  # live tokens of each row

    @property
    def _mask(self) -> torch.Tensor | None:
        """``(N, columns)`` 1 where a column holds a live token of its row (None: no columns)."""
        return None if self._live is None else self._live[:, : self._columns]

    @property
    def device(self) -> torch.device:
        """The model's device; inputs are moved there."""
        return next(self.model.parameters()).device

    def histories(self) -> list[list[int]]:
        """Each row's live token ids, oldest first (a copy)."""
        if self._live is None or self._tokens is None:
            return [[] for _ in range(self.num_rows)]
        live = self._live[:, : self._columns].bool().cpu()
        tokens = self._tokens[:, : self._columns].cpu()
        return [tokens[row][live[row]].tolist() for row in range(self.num_rows)]

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
        counts = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=self.num_rows)
        resets = np.zeros(self.num_rows, dtype=bool) if reset is None else np.asarray(reset, bool)
        if resets.shape != (self.num_rows,):
            raise ValueError(f"expected a reset flag for each of {self.num_rows} rows.")
        if (resets & (counts == 0)).any():
            raise ValueError("a reset row needs its new prefix (at least one token).")
        if resets.any():
            self._lengths[resets] = 0
            if self._live is not None:
                self._live[np.flatnonzero(resets).tolist()] = 0
        if not counts.any():
            return self._last
        if self._cache is not None and self._needs_compaction(counts):
            tokens = [h + list(t) for h, t in zip(self.histories(), tokens, strict=True)]
            counts = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=self.num_rows)
            self._clear()
        return self._forward(*self._chunk(tokens, counts), counts)

    def advance_one(self, ids: torch.Tensor | np.ndarray | Sequence[int]) -> CachedStep:
        """Append one token to every row with one forward: the per-token step, nothing per row.

        The same as ``advance([[i] for i in ids])``, without a Python loop over the rows.

        Args:
            ids: ``(N,)`` one token id per row (a tensor may already be on the model's device).

        Returns:
            The logits (and hidden states) at each row's last token.
        """
        ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1, 1)
        if ids.shape[0] != self.num_rows:
            raise ValueError(
                f"expected one token for each of {self.num_rows} rows, got {ids.shape[0]}."
            )
        longest = int(self._lengths.max()) + 1
        if self._cache is not None and self._columns + 1 > self.compact_factor * max(longest, 8):
            return self.advance([[token] for token in ids[:, 0].tolist()])
        positions = torch.from_numpy(self._lengths[:, None].copy())
        return self._forward(ids, None, positions, None)

    def _needs_compaction(self, counts: np.ndarray) -> bool:
        longest = int((self._lengths + counts).max())
        return self._columns + int(counts.max()) > self.compact_factor * max(longest, 8)

    def _chunk(
        self, tokens: Sequence[Sequence[int]], counts: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(ids, mask, positions)`` of a chunk: each row's new tokens right-aligned."""
        starts = self._lengths.tolist()
        if (counts == 1).all():  # the per-token step: no Python loop over rows
            ids = torch.tensor([t[0] for t in tokens], dtype=torch.long)[:, None]
            return ids, torch.ones_like(ids), torch.tensor(starts, dtype=torch.long)[:, None]
        width = int(counts.max())
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

    def _forward(
        self,
        ids: torch.Tensor,
        chunk_mask: torch.Tensor | None,
        positions: torch.Tensor,
        counts: np.ndarray | None,
    ) -> CachedStep:
        """One forward over a chunk: each row's new tokens right-aligned, the rest masked.

        ``chunk_mask`` and ``counts`` None: one token for every row (:meth:`advance_one`).
        """
        device = self.device
        ids = ids.to(device)
        self._append_columns(ids, None if chunk_mask is None else chunk_mask.to(device))
        self._lengths += 1 if counts is None else counts
        if self._cache is None:
            self._cache = self._new_cache()
        out = self.model(
            input_ids=ids,
            attention_mask=self._attention(self._mask, ids.shape[1]),
            position_ids=positions.to(device),
            cache=self._cache,
            use_cache=True,
            output_hidden_states=self.output_hidden,
        )
        self.num_forwards += 1
        self._cache = out.cache
        logits = out.logits[:, -1, :].float()
        if self.temperature != 1.0:  # x / 1.0 is x: skip a pass over (N, vocab)
            logits = logits / self.temperature
        hidden = out.hidden_states[-1][:, -1, :] if self.output_hidden else None
        return self._remember(logits, hidden, None if counts is None else np.flatnonzero(counts))

    def _new_cache(self) -> DynamicCache:
        """A cache laid out by the config, or of full layers only for a sliding-window model.

        A config's sliding layers keep only the last window of columns, and here the columns are
        a clock shared by all rows, not a row's own tokens.
        """
        return (
            DynamicCache() if self._sliding is not None else DynamicCache(config=self.model.config)
        )

    def _append_columns(self, ids: torch.Tensor, chunk_mask: torch.Tensor | None) -> None:
        """Write a chunk's ids and live mask (None: all live) after the columns in use."""
        end = self._columns + ids.shape[1]
        if self._live is None or self._tokens is None or end > self._live.shape[1]:
            self._reserve(end, ids.device)
        assert self._live is not None and self._tokens is not None
        self._live[:, self._columns : end] = 1 if chunk_mask is None else chunk_mask
        self._tokens[:, self._columns : end] = ids
        self._columns = end

    def _reserve(self, needed: int, device: torch.device) -> None:
        """Move the columns in use into buffers with room for ``needed`` and more."""
        reserved = 0 if self._live is None else self._live.shape[1]
        size = (self.num_rows, reserved_columns(needed, reserved))
        live = torch.zeros(size, dtype=torch.long, device=device)
        tokens = torch.zeros(size, dtype=torch.long, device=device)
        if self._live is not None and self._tokens is not None:
            live[:, : self._columns] = self._live[:, : self._columns]
            tokens[:, : self._columns] = self._tokens[:, : self._columns]
        self._live, self._tokens = live, tokens

    def _attention(
        self, mask: torch.Tensor | None, width: int
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """The 2D live mask, or per-row 4D masks whose sliding windows count each row's tokens."""
        assert mask is not None
        return mask if self._sliding is None else self._sliding.masks(mask, width)

    def _remember(
        self, logits: torch.Tensor, hidden: torch.Tensor | None, moved: np.ndarray | None
    ) -> CachedStep:
        """Keep the outputs of the rows that moved (None: all); the others keep theirs."""
        if moved is None or self._last.logits.numel() == 0 or len(moved) == self.num_rows:
            self._last = CachedStep(logits, hidden)
        else:
            rows = moved.tolist()
            merged_logits = self._last.logits.clone()
            merged_logits[rows] = logits[rows]
            merged_hidden = None
            if hidden is not None and self._last.hidden is not None:
                merged_hidden = self._last.hidden.clone()
                merged_hidden[rows] = hidden[rows]
            self._last = CachedStep(merged_logits, merged_hidden)
        return self._last
