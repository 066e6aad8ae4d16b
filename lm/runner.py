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

A row that has finished for a while (one waiting for its round, see ``envs/groups.py``) is
*retired*: it stays in the cache, masked, until retired rows are ``drop_share`` of the cache's
rows, and then they all leave every layer's keys and values at once (:meth:`retire`). Later
forwards compute only the rows left; outputs stay indexed by the N logical rows.

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

#: Retired rows leave the cache once they are this share of its rows. A retired row left in the
#: cache costs up to 1/rows of each forward; a drop copies every layer's keys and values once.
#: Measured on CPU (env rounds, B=32, 48 tokens, the toy GPT-2; median CPU s of 3): 0 (drop at
#: once) 1.64, 1/4 1.60, 1/2 1.69, never 2.14. On an accelerator a decode step costs about the
#: same whatever its rows while a drop still copies the whole cache, so not one copy per ended
#: row: with 1/4, 32 rows that end one by one are dropped in 11 copies, not 32, and at most a
#: quarter of each forward's rows is wasted.
DROP_SHARE = 0.25


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
        drop_share: retired rows leave the cache when they are at least this share of its rows
            (0: at once; see ``DROP_SHARE``).
        adapter_names: per row, the LoRA adapter it runs, ``"__base__"`` for the base weights
            (PEFT's mixed-adapter batch: one forward for all); None: the model as it is.

    Attributes:
        num_forwards: forwards run so far.
        last_batch_rows: the rows the last forward computed (N less the retired rows dropped).

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
        drop_share: float = DROP_SHARE,
        adapter_names: Sequence[str] | None = None,
    ) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        if adapter_names is not None and len(adapter_names) != num_rows:
            raise ValueError(f"expected an adapter name for each of {num_rows} rows.")
        self.adapter_names = None if adapter_names is None else np.array(adapter_names, dtype=str)
        self.model, self.num_rows, self.temperature = model, num_rows, temperature
        self.output_hidden, self.compact_factor = output_hidden, compact_factor
        self.drop_share = drop_share
        self._sliding = sliding_window_of(model)  # None: no sliding layers, the 2D-mask path
        self.num_forwards = self.last_batch_rows = 0
        self._last = CachedStep(torch.empty(0), None)
        self._retired = np.zeros(num_rows, dtype=bool)  # left the batch until a reset
        self._clear()

    def _clear(self) -> None:
        """Forget every row: no cache, no columns; the rows not retired make up the batch."""
        self._cache: DynamicCache | None = None
        self._live: torch.Tensor | None = None  # (rows, reserved) 1 where a column is live
        self._tokens: torch.Tensor | None = None  # (rows, reserved) the token id of each column
        self._columns = 0  # columns in use
        self._lengths = np.zeros(self.num_rows, dtype=np.int64)  # live tokens of each row
        self._place(np.flatnonzero(~self._retired))

    def _place(self, rows: np.ndarray) -> None:
        """Make ``rows`` (ascending logical ids) the batch rows of the cache, in that order."""
        self._rows = rows  # the logical row of each cache row
        self._slot = np.full(self.num_rows, -1, dtype=np.int64)  # the cache row of each row
        self._slot[rows] = np.arange(len(rows))
        names = self.adapter_names  # PEFT's names follow the cache rows
        self._kwargs = {} if names is None else {"adapter_names": names[rows].tolist()}

    @property
    def _mask(self) -> torch.Tensor | None:
        """``(rows, columns)`` 1 where a column holds a live token of its row (None: none)."""
        return None if self._live is None else self._live[:, : self._columns]

    @property
    def device(self) -> torch.device:
        """The model's device; inputs are moved there."""
        return next(self.model.parameters()).device

    def histories(self) -> list[list[int]]:
        """Each row's live token ids, oldest first (a copy; empty for a retired row)."""
        out: list[list[int]] = [[] for _ in range(self.num_rows)]
        if self._live is None or self._tokens is None:
            return out
        live = self._live[:, : self._columns].bool().cpu()
        tokens = self._tokens[:, : self._columns].cpu()
        for slot, row in enumerate(self._rows.tolist()):
            if not self._retired[row]:
                out[row] = tokens[slot][live[slot]].tolist()
        return out

    def retire(self, rows: Sequence[int] | np.ndarray) -> None:
        """Take ``rows`` out of the batch: later forwards skip them, their outputs stay as they are.

        A retired row comes back only through a reset (:meth:`advance` with ``reset`` True for
        it). It stays in the cache, masked, until the retired rows there are ``drop_share`` of
        its rows; then one ``index_select`` of every layer's keys and values drops them all.
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self.num_rows):
            raise ValueError(f"rows to retire must be in [0, {self.num_rows}), got {rows}.")
        self._retired[rows] = True
        self._lengths[rows] = 0
        parked = self._retired[self._rows]
        if parked.any() and parked.sum() >= self.drop_share * len(self._rows):
            self._drop(np.flatnonzero(~parked))

    def _drop(self, keep: np.ndarray) -> None:
        """Keep only the cache rows ``keep``: one copy of each layer and buffer."""
        if not len(keep):
            self._clear()  # every row retired: nothing left to keep
            return
        self._place(self._rows[keep])
        if self._cache is None or self._live is None or self._tokens is None:
            return
        index = torch.from_numpy(keep).to(self._live.device)
        self._cache.batch_select_indices(index)
        self._live = self._live.index_select(0, index)
        self._tokens = self._tokens.index_select(0, index)

    def advance(
        self, tokens: Sequence[Sequence[int]], reset: Sequence[bool] | None = None
    ) -> CachedStep:
        """Append ``tokens[i]`` to row i (after forgetting it if ``reset[i]``) with one forward.

        A row given no tokens is left as it was and keeps its previous outputs. A reset brings
        a retired row back (a reset of every row starts a fresh cache).

        Args:
            tokens: per row, the ids to append (one action, or a whole prompt after a reset).
            reset: per row, whether to forget the row's history first. Default: no resets.

        Returns:
            The logits (and hidden states) at each row's last token.
        """
        counts, resets = self._check(tokens, reset)
        returning = resets & self._retired
        if resets.all():
            self._retired[:] = False
            self._clear()
        elif resets.any():
            self._lengths[resets] = 0
            slots = self._slot[resets]
            if self._live is not None:
                self._live[slots[slots >= 0].tolist()] = 0
        if not counts.any():
            return self._last
        self._retired[returning] = False  # back in the batch: the cache is rebuilt (rare)
        if self._cache is not None and (returning.any() or self._needs_compaction(counts)):
            tokens = [h + list(t) for h, t in zip(self.histories(), tokens, strict=True)]
            counts = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=self.num_rows)
            self._clear()
        elif returning.any():
            self._clear()  # no cache to rebuild: the returning rows only rejoin the batch
        if (counts[~self._retired] == 1).all():  # the per-token step: no Python loop over rows
            return self._step_one(torch.tensor([t[0] if len(t) else 0 for t in tokens]))
        return self._forward(*self._chunk(tokens, counts))

    def _check(
        self, tokens: Sequence[Sequence[int]], reset: Sequence[bool] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each row's token count and reset flag, after checking what :meth:`advance` got."""
        if len(tokens) != self.num_rows:
            raise ValueError(f"expected tokens for {self.num_rows} rows, got {len(tokens)}.")
        counts = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=self.num_rows)
        resets = np.zeros(self.num_rows, dtype=bool) if reset is None else np.asarray(reset, bool)
        if resets.shape != (self.num_rows,):
            raise ValueError(f"expected a reset flag for each of {self.num_rows} rows.")
        if (resets & (counts == 0)).any():
            raise ValueError("a reset row needs its new prefix (at least one token).")
        fed = (counts > 0) & self._retired & ~resets
        if fed.any():
            raise ValueError(
                f"rows {np.flatnonzero(fed).tolist()} are retired and were given tokens without "
                "a reset; a retired row takes tokens only as the new prefix of a reset."
            )
        return counts, resets

    def advance_one(self, ids: torch.Tensor | np.ndarray | Sequence[int]) -> CachedStep:
        """Append one token to every row not retired with one forward: the per-token step.

        The same as ``advance([[i] for i in ids])`` (with ``[]`` for retired rows, whose ids are
        ignored), without a Python loop over the rows.

        Args:
            ids: ``(N,)`` one token id per row (a tensor may already be on the model's device).

        Returns:
            The logits (and hidden states) at each row's last token.
        """
        ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
        if ids.shape[0] != self.num_rows:
            raise ValueError(
                f"expected one token for each of {self.num_rows} rows, got {ids.shape[0]}."
            )
        if self._retired.all():
            return self._last
        longest = int(self._lengths.max()) + 1
        if self._cache is not None and self._columns + 1 > self.compact_factor * max(longest, 8):
            pairs = zip(ids.tolist(), self._retired.tolist(), strict=True)
            return self.advance([[] if retired else [t] for t, retired in pairs])
        return self._step_one(ids)

    def _step_one(self, ids: torch.Tensor) -> CachedStep:
        """One token for each row not retired, from ``(N,)`` ids; the cache's retired rows idle."""
        if len(self._rows) < self.num_rows:
            ids = ids[torch.from_numpy(self._rows).to(ids.device)]
        moved = ~self._retired[self._rows]
        mask = None if moved.all() else torch.from_numpy(moved.astype(np.int64))[:, None]
        positions = torch.from_numpy(self._lengths[self._rows][:, None])
        return self._forward(ids[:, None], mask, positions, moved.astype(np.int64))

    def _needs_compaction(self, counts: np.ndarray) -> bool:
        longest = int((self._lengths + counts).max())
        return self._columns + int(counts.max()) > self.compact_factor * max(longest, 8)

    def _chunk(
        self, tokens: Sequence[Sequence[int]], counts: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
        """``(ids, mask, positions, counts)`` of a chunk, each cache row's tokens right-aligned."""
        starts, counts = self._lengths[self._rows].tolist(), counts[self._rows]
        size = (len(self._rows), int(counts.max()))
        ids, mask, positions = (torch.zeros(size, dtype=torch.long) for _ in range(3))
        width = size[1]
        for slot, row in enumerate(self._rows.tolist()):
            n, start = int(counts[slot]), starts[slot]
            if n:
                ids[slot, width - n :] = torch.as_tensor(list(tokens[row]), dtype=torch.long)
                mask[slot, width - n :] = 1
                positions[slot, width - n :] = torch.arange(start, start + n)
            positions[slot, : width - n] = max(start + n - 1, 0)
        return ids, mask, positions, counts

    def _forward(
        self,
        ids: torch.Tensor,
        chunk_mask: torch.Tensor | None,
        positions: torch.Tensor,
        counts: np.ndarray,
    ) -> CachedStep:
        """One forward over a chunk of the cache rows: new tokens right-aligned, the rest masked.

        ``chunk_mask`` None: every column of the chunk is live; ``counts``: each cache row's
        new tokens.
        """
        device = self.device
        ids = ids.to(device)
        self._append_columns(ids, None if chunk_mask is None else chunk_mask.to(device))
        self._lengths[self._rows] += counts
        if self._cache is None:
            self._cache = self._new_cache()
        out = self.model(
            input_ids=ids,
            attention_mask=self._attention(self._mask, ids.shape[1]),
            position_ids=positions.to(device),
            cache=self._cache,
            use_cache=True,
            output_hidden_states=self.output_hidden,
            **self._kwargs,
        )
        self.num_forwards += 1
        self.last_batch_rows = ids.shape[0]
        self._cache = out.cache
        logits = out.logits[:, -1, :].float()
        if self.temperature != 1.0:  # x / 1.0 is x: skip a pass over (N, vocab)
            logits = logits / self.temperature
        hidden = out.hidden_states[-1][:, -1, :] if self.output_hidden else None
        return self._remember(logits, hidden, np.flatnonzero(counts))

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
        size = (len(self._rows), reserved_columns(needed, reserved))
        live, tokens = (torch.zeros(size, dtype=torch.long, device=device) for _ in range(2))
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
        self, logits: torch.Tensor, hidden: torch.Tensor | None, moved: np.ndarray
    ) -> CachedStep:
        """Keep the outputs of the cache rows that moved; every other row keeps its own."""
        if len(moved) < self.num_rows:  # else every row moved: the cache rows are the N rows
            rows = torch.from_numpy(self._rows[moved]).to(logits.device)
            picked = torch.from_numpy(moved).to(logits.device)
            logits = _merged(self._last.logits, rows, logits[picked], self.num_rows)
            if hidden is not None:
                hidden = _merged(self._last.hidden, rows, hidden[picked], self.num_rows)
        self._last = CachedStep(logits, hidden)
        return self._last


def _merged(
    old: torch.Tensor | None, rows: torch.Tensor, new: torch.Tensor, num_rows: int
) -> torch.Tensor:
    """A copy of ``old`` (zeros before any output) with ``new`` written in ``rows``."""
    if old is None or old.numel() == 0:
        old = new.new_zeros((num_rows, *new.shape[1:]))
    return old.index_copy(0, rows, new)
