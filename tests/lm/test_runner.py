import random
from dataclasses import dataclass, field

import pytest
import torch
from rlhf_gym.lm.attention import SlidingWindow
from rlhf_gym.lm.runner import CachedCausalLM
from transformers import (
    AutoModelForCausalLM,
    Gemma2Config,
    Gemma3TextConfig,
    GPTNeoConfig,
    Llama4TextConfig,
    MistralConfig,
    OPTConfig,
    Phi3Config,
    PretrainedConfig,
    PreTrainedModel,
    Qwen2Config,
)
from word_lm import tiny_causal_lm

VOCAB, WINDOW = 30, 4
SLIDING = ["mistral", "mistral-eager", "gemma2", "gemma3", "qwen2"]
NO_WINDOW = ["gpt2", "llama", "neox", "opt", "phi3", "gpt-neo"]


def tiny_config(arch: str) -> PretrainedConfig:
    """A 2-3 layer config, dropout off; the sliding ones have a window of 4 tokens."""
    common = {
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "num_attention_heads": 2,
        "num_hidden_layers": 2,
        "max_position_embeddings": 128,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "pad_token_id": 2,
    }
    gqa = {**common, "intermediate_size": 64, "num_key_value_heads": 1}
    three = {**gqa, "num_hidden_layers": 3}
    if arch == "opt":
        return OPTConfig(
            **common, ffn_dim=64, word_embed_proj_dim=32, dropout=0.0, attention_dropout=0.0
        )
    if arch == "phi3":
        return Phi3Config(**gqa)
    if arch == "gpt-neo":  # global layers only: GPT-Neo's local layers are refused
        return GPTNeoConfig(
            **common,
            attention_types=[[["global"], 2]],
            embed_dropout=0.0,
            attention_dropout=0.0,
            resid_dropout=0.0,
        )
    if arch.startswith("mistral"):  # every layer slides
        return MistralConfig(**gqa, sliding_window=WINDOW)
    if arch == "gemma2":  # alternates sliding and full layers
        return Gemma2Config(**gqa, head_dim=16, sliding_window=WINDOW)
    if arch == "gemma3":
        kinds = ["sliding_attention", "full_attention", "sliding_attention"]
        return Gemma3TextConfig(**three, head_dim=16, sliding_window=WINDOW, layer_types=kinds)
    if arch == "qwen2":  # layer 0 full, layers 1-2 slide
        return Qwen2Config(
            **three, use_sliding_window=True, sliding_window=WINDOW, max_window_layers=1
        )
    raise ValueError(arch)


def tiny_model(arch: str, seed: int = 0) -> PreTrainedModel:
    """A tiny causal LM from config in eval mode (``mistral-eager``: eager attention)."""
    if arch in ("gpt2", "llama", "neox"):
        return tiny_causal_lm(arch, VOCAB, seed)
    torch.manual_seed(seed)
    implementation = "eager" if arch.endswith("-eager") else None
    model = AutoModelForCausalLM.from_config(tiny_config(arch), attn_implementation=implementation)
    return model.eval()


pytestmark = pytest.mark.usefixtures("one_thread")


def _full_forward(model, ids, temperature):
    out = model(torch.tensor([ids]), output_hidden_states=True)
    return out.logits[0, -1] / temperature, out.hidden_states[-1][0, -1]


@dataclass
class Drive:
    """What :func:`drive_staggered` saw: worst gaps to a lone forward, and the schedule."""

    logprob_gap: float = 0.0
    hidden_gap: float = 0.0
    widths: list[int] = field(default_factory=list)
    restarts: set[tuple[int, int]] = field(default_factory=set)  # (step, row), after step 0
    longest: int = 0

    @property
    def compacted(self) -> bool:
        return any(b < a for a, b in zip(self.widths, self.widths[1:], strict=False))


def _schedule(rng, histories, targets, step, drive):
    """Per row: a new 1-6 token prompt when its episode is over, else one token or nothing."""
    tokens, reset = [], []
    for row, history in enumerate(histories):
        if len(history) >= targets[row]:
            prompt = [rng.randrange(VOCAB) for _ in range(rng.randint(1, 6))]
            targets[row] = rng.randint(7, 15)  # episodes longer than the window
            histories[row] = list(prompt)
            tokens.append(prompt)
            reset.append(True)
            if step:
                drive.restarts.add((step, row))
        elif rng.random() < 0.1:  # an idle row
            tokens.append([])
            reset.append(False)
        else:
            tokens.append([rng.randrange(VOCAB)])
            reset.append(False)
            history.append(tokens[-1][0])
    return tokens, reset


@torch.no_grad()
def drive_staggered(model, steps=48, num_rows=3, temperature=0.7, seed=0) -> Drive:
    """Run N rows with staggered restarts; compare each row, each step, to a lone forward."""
    rng, drive = random.Random(seed), Drive()
    runner = CachedCausalLM(model, num_rows, temperature=temperature, output_hidden=True)
    histories: list[list[int]] = [[] for _ in range(num_rows)]
    targets = [0] * num_rows
    for step in range(steps):
        out = runner.advance(*_schedule(rng, histories, targets, step, drive))
        drive.widths.append(runner._mask.shape[1])
        for row, history in enumerate(histories):
            logits, hidden = _full_forward(model, history, temperature)
            gap = torch.log_softmax(logits, -1) - torch.log_softmax(out.logits[row], -1)
            drive.logprob_gap = max(drive.logprob_gap, gap.abs().max().item())
            drive.hidden_gap = max(drive.hidden_gap, (hidden - out.hidden[row]).abs().max().item())
            drive.longest = max(drive.longest, len(history))
    assert runner.histories() == histories
    return drive


@pytest.mark.parametrize("arch", SLIDING + NO_WINDOW)
def test_every_row_matches_a_lone_forward_of_its_own_tokens(arch):
    """Staggered restarts, idle rows, prompts and compaction: each row as if it ran alone."""
    drive = drive_staggered(tiny_model(arch))
    assert drive.logprob_gap < 1e-5
    assert drive.hidden_gap < 1e-4
    assert drive.compacted and drive.longest > 2 * WINDOW
    assert len({step for step, _ in drive.restarts}) >= 3  # rows restart at different steps
    assert {row for _, row in drive.restarts} == {0, 1, 2}


def _record_masks(model) -> list:
    seen: list = []
    model.register_forward_pre_hook(
        lambda _m, _a, kwargs: seen.append(kwargs["attention_mask"]), with_kwargs=True
    )
    return seen


@pytest.mark.parametrize("arch", NO_WINDOW)
@torch.no_grad()
def test_models_without_a_window_keep_the_2d_mask_path(arch):
    model = tiny_model(arch)
    seen = _record_masks(model)
    runner = CachedCausalLM(model, 2)
    runner.advance([[3, 4, 5], [6]])
    runner.advance([[7], [8]], [False, False])
    assert [mask.dim() for mask in seen] == [2, 2]
    torch.testing.assert_close(seen[-1], runner._mask)


@pytest.mark.parametrize("arch", SLIDING)
@torch.no_grad()
def test_sliding_models_get_4d_masks_and_a_cache_that_keeps_every_column(arch):
    model = tiny_model(arch)
    seen = _record_masks(model)
    runner = CachedCausalLM(model, 2)
    runner.advance([[3, 4, 5, 6, 7, 8], [6]])
    for _ in range(3 * WINDOW):
        runner.advance([[7], [8]])
    masks = seen[-1] if isinstance(seen[-1], dict) else {"sliding_attention": seen[-1]}
    assert isinstance(seen[-1], dict) == (arch not in ("mistral", "mistral-eager"))
    assert all(mask.shape == (2, 1, 1, runner._mask.shape[1]) for mask in masks.values())
    assert all(layer.keys.shape[-2] == runner._mask.shape[1] for layer in runner._cache.layers)


def test_a_row_sees_its_own_last_tokens_across_padding_columns():
    """Window 2 counts the row's tokens, not columns: a masked column in between is skipped."""
    plan = SlidingWindow(window=2, mixed=True, additive=False, dtype=torch.float32)
    masks = plan.masks(torch.tensor([[0, 1, 1, 0, 1], [0, 0, 0, 0, 0]]), width=1)
    assert masks["sliding_attention"][0, 0, 0].tolist() == [False, False, True, False, True]
    assert masks["full_attention"][0, 0, 0].tolist() == [False, True, True, False, True]
    assert masks["sliding_attention"][1].all()  # no key at all: kept finite, never read


@torch.no_grad()
def test_staggered_rows_match_full_forward(tiny_lm):
    """Resets, idle rows and compaction must not change any row's logits or hidden state."""
    rng = random.Random(0)
    num_rows, vocab, temperature = 4, tiny_lm.config.vocab_size, 0.7
    runner = CachedCausalLM(tiny_lm, num_rows, temperature=temperature, output_hidden=True)
    histories: list[list[int]] = [[] for _ in range(num_rows)]
    worst = 0.0
    for _ in range(60):
        tokens, reset = [], []
        for row in range(num_rows):
            if not histories[row] or rng.random() < 0.08:
                prompt = [rng.randrange(vocab) for _ in range(rng.randint(1, 6))]
                tokens.append(prompt)
                reset.append(True)
                histories[row] = list(prompt)
            elif rng.random() < 0.1:
                tokens.append([])
                reset.append(False)
            else:
                token = rng.randrange(vocab)
                tokens.append([token])
                reset.append(False)
                histories[row].append(token)
        step = runner.advance(tokens, reset)
        for row in range(num_rows):
            logits, hidden = _full_forward(tiny_lm, histories[row], temperature)
            worst = max(worst, (logits - step.logits[row]).abs().max().item())
            worst = max(worst, (hidden - step.hidden[row]).abs().max().item())
    assert worst < 1e-4
    assert runner.num_forwards == 60
    assert runner.histories() == histories


@torch.no_grad()
def test_cache_stays_bounded_by_compaction(tiny_lm):
    runner = CachedCausalLM(tiny_lm, 2, compact_factor=2.0)
    for step in range(200):
        # Row 0 restarts every 5 steps with a 4-token prompt, piling up masked columns.
        if step % 5 == 0:
            runner.advance([[3, 4, 5, 6], [7]], [True, step == 0])
        else:
            runner.advance([[8], [9]])
        if step % 50 == 49:
            runner.advance([[3], [3]], [True, True])
    assert runner._mask is not None
    assert runner._mask.shape[1] <= 2 * max(len(h) for h in runner.histories()) + 8


def test_reset_row_needs_tokens(tiny_lm):
    runner = CachedCausalLM(tiny_lm, 2)
    with pytest.raises(ValueError, match="reset row needs"):
        runner.advance([[3], []], [False, True])


# ------------------------------------------------------------------- retired rows
#: (step, rows retired before it) and (step, rows reset with a new prompt at it), 8 rows.
RETIRE_AT = {6: [1], 9: [4], 13: [6], 16: [0]}
RESET_AT = {20: [1], 30: list(range(8))}


def _retiring_step(rng, step, histories, retired):
    """Tokens and resets of one step: prompts at RESET_AT, else a token per live row (or none)."""
    tokens: list[list[int]] = []
    reset = [row in RESET_AT.get(step, ()) for row in range(len(histories))]
    for row, history in enumerate(histories):
        if reset[row]:
            history[:] = [rng.randrange(VOCAB) for _ in range(rng.randint(1, 4))]
            retired.discard(row)
            tokens.append(list(history))
        elif row in retired or (step % 5 == 3 and row == 2):  # retired, or idle
            tokens.append([])
        else:
            history.append(rng.randrange(VOCAB))
            tokens.append([history[-1]])
    return tokens, reset


@pytest.mark.parametrize(("arch", "drop_share"), [("gpt2", 0.25), ("gpt2", 2.0), ("gemma2", 0.25)])
@torch.no_grad()
def test_retired_rows_leave_the_batch_and_live_rows_keep_their_logits(arch, drop_share):
    """Live rows match a twin that retires no one; retired rows keep theirs; resets return."""
    model, rng, temperature = tiny_model(arch), random.Random(0), 0.7
    runner = CachedCausalLM(model, 8, temperature=temperature, drop_share=drop_share)
    twin = CachedCausalLM(model, 8, temperature=temperature)  # the same tokens, no retiring
    histories: list[list[int]] = [[rng.randrange(VOCAB)] for _ in range(8)]
    step0 = [list(h) for h in histories]
    out, _ = runner.advance(step0, [True] * 8), twin.advance(step0, [True] * 8)
    retired: set[int] = set()
    frozen: dict[int, torch.Tensor] = {}
    batch_rows, widths, worst = [], [], 0.0
    for step in range(1, 40):
        for row in RETIRE_AT.get(step, []):
            runner.retire([row])
            retired.add(row)
            frozen[row] = out.logits[row].clone()
        tokens, reset = _retiring_step(rng, step, histories, retired)
        expected = twin.advance(tokens, reset).logits
        if not any(reset) and all(len(t) == 1 for r, t in enumerate(tokens) if r not in retired):
            out = runner.advance_one([t[0] if t else 0 for t in tokens])
        else:
            out = runner.advance(tokens, reset)
        batch_rows.append(runner.last_batch_rows)
        widths.append(runner._mask.shape[1])
        for row in range(8):
            if row in retired:
                assert torch.equal(out.logits[row], frozen[row])
                continue
            torch.testing.assert_close(out.logits[row], expected[row], atol=1e-5, rtol=0)
            lone, _ = _full_forward(model, histories[row], temperature)
            worst = max(worst, (lone - out.logits[row]).abs().max().item())
    assert worst < 1e-5
    assert runner.num_forwards == twin.num_forwards == 40
    assert any(b < a for a, b in zip(widths, widths[1:], strict=False))  # columns compacted
    assert runner.histories() == twin.histories() == histories
    # Steps 6-21: retired before 6, 9, 13 and 16; row 1's reset at 20 rebuilds the cache, which
    # leaves out the rows still retired, dropped or not.
    dropped = [8] * 3 + [6] * 7 + [4] * 4 if drop_share < 1 else [8] * 14
    assert batch_rows[5:21] == dropped + [5, 5]
    assert batch_rows[-1] == 8  # the full reset at 30 brought every row back


@torch.no_grad()
def test_per_token_steps_with_retired_rows_run_one_forward_without_them(monkeypatch):
    model = tiny_model("gpt2")
    seen = []
    model.register_forward_pre_hook(
        lambda _m, _a, kwargs: seen.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    runner = CachedCausalLM(model, 4, drop_share=0.0)
    runner.advance([[3, 4], [5], [6, 7, 8], [9]], [True] * 4)
    runner.retire([2])
    monkeypatch.setattr(runner, "_chunk", None)  # the Python loop over rows is not called
    runner.advance_one([10, 11, 12, 13])  # row 2's id is ignored
    runner.advance([[14], [15], [], [16]])
    assert seen[1:] == [(3, 1), (3, 1)] and runner.num_forwards == 3
    assert runner.histories() == [[3, 4, 10, 14], [5, 11, 15], [], [9, 13, 16]]


@torch.no_grad()
def test_a_retired_row_takes_tokens_only_with_a_reset():
    runner = CachedCausalLM(tiny_model("gpt2"), 2)
    runner.advance([[3], [4]], [True, True])
    runner.retire([1])
    with pytest.raises(ValueError, match=r"rows \[1\] are retired .* only as the new prefix"):
        runner.advance([[5], [6]])
    before = runner.advance([[5], []]).logits
    after = runner.advance([[7], [8, 9]], [False, True]).logits  # a reset brings row 1 back
    assert runner.histories() == [[3, 5, 7], [8, 9]]
    assert not torch.equal(before[1], after[1])


@torch.no_grad()
def test_every_row_retired_runs_no_forward():
    runner = CachedCausalLM(tiny_model("gpt2"), 3, drop_share=0.5)
    first = runner.advance([[3], [4], [5]], [True] * 3)
    runner.retire([0, 1, 2])
    assert runner._cache is None  # dropped: nothing left in the batch
    assert runner.advance_one([6, 7, 8]) is first and runner.advance([[], [], []]) is first
    assert runner.num_forwards == 1
    runner.advance([[6], [7], [8]], [True] * 3)
    assert runner.num_forwards == 2 and runner.last_batch_rows == 3


# ------------------------------------------------------------------- caches that cannot be exact
def test_local_attention_counted_inside_the_model_is_refused():
    """GPT-Neo applies its local window itself, in cache columns: no mask can correct it."""
    config = tiny_config("gpt-neo")
    config.attention_types = [[["global", "local"], 1]]
    config.attention_layers = config.expand_attention_types_params(config.attention_types)
    config.window_size = WINDOW
    with pytest.raises(ValueError, match="local-attention layers \\[1\\].*all 'global'"):
        CachedCausalLM(AutoModelForCausalLM.from_config(config), 2)


def test_chunked_attention_is_refused():
    config = Llama4TextConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        intermediate_size_mlp=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        attention_chunk_size=4,
        num_local_experts=2,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    with pytest.raises(ValueError, match="chunked_attention.*full or sliding"):
        CachedCausalLM(AutoModelForCausalLM.from_config(config), 2)


def test_a_sliding_model_without_dense_masks_is_refused():
    model = tiny_model("mistral")
    model.set_attn_implementation("flex_attention")
    with pytest.raises(ValueError, match="attn_implementation='sdpa'"):
        CachedCausalLM(model, 2)
