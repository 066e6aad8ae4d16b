"""Env stepping vs HF ``generate`` + one teacher-forced reference forward, same batch and policy.

The env path is what an agent does through the env: its own cached sampling loop on the policy
(one :class:`CachedCausalLM` forward per token), the act-time log-probs handed over with
``set_policy_logprobs``, and ``TextGenerationVectorEnv.step`` (one cached reference forward per
token, KL terms, scores at the end). The baseline is the cheapest way to get the same numbers
outside an env: ``model.generate`` then one full forward of the reference. EOS is suppressed on
both sides so every row writes exactly ``T`` tokens.

The env's own floor is printed beside it: two bare cached HF forwards per token (policy, then
reference, a ``DynamicCache`` each, no env), the least any env pays that returns r_t from
``step()``. Per T: env / floor, the per-token times, the process's peak RSS so far and the
1-minute load average (the runs share the machine); at the end, how the per-token cost at the
largest T compares with the smallest (linear in T: close to 1). The env, floor and baseline runs
alternate within each repeat, so a change of load hits all three alike.

    python benchmarks/bench_env.py --device auto            # B=32, T=48, then 96 and 192
    python benchmarks/bench_env.py --model tiny --device cpu --repeats 2
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from rlhf_gym.envs import TextGenerationVectorEnv
from rlhf_gym.lm.device import resolve_device
from rlhf_gym.lm.runner import CachedCausalLM
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import DynamicCache, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast


def toy_setup() -> tuple | None:
    """(tokenizer, sft model, prompts) from a cached toy build, or None."""
    try:
        from rlhf_gym.toy import build_toy_world, cache
    except ImportError:
        return None
    root = cache.default_cache_root()
    if not any(cache.check(p) is None for p in Path(root).glob("toy-*")):
        return None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    art = build_toy_world(progress=False)
    tok = AutoTokenizer.from_pretrained(str(art.tokenizer_dir))
    return tok, AutoModelForCausalLM.from_pretrained(str(art.sft_dir)), art.world.train_prompts


def tiny_setup() -> tuple:
    """A word-level tokenizer and a random GPT-2 the size of the toy SFT (128 wide, 4 layers)."""
    words = [f"w{i}" for i in range(97)]
    vocab = {w: i for i, w in enumerate(["<pad>", "<eos>", "<unk>", *words])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tok),
        n_embd=128,
        n_layer=4,
        n_head=4,
        n_positions=256,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=1,
        eos_token_id=1,
        pad_token_id=0,
    )
    rng = np.random.default_rng(0)
    prompts = [" ".join(rng.choice(words, size=5)) for _ in range(200)]
    return tok, GPT2LMHeadModel(config).eval(), prompts


@torch.no_grad()
def env_path(vec: TextGenerationVectorEnv, policy, steps: int, seed: int) -> None:
    """Sample ``steps`` tokens per row with a cached policy loop, stepping the env each token."""
    gen = torch.Generator(device=policy.device).manual_seed(seed)
    obs, _ = vec.reset(seed=seed)
    runner = CachedCausalLM(policy, vec.num_envs, temperature=vec.temperature)
    ids, mask = obs["input_ids"], obs["attention_mask"]
    prompts = [row[m == 1].tolist() for row, m in zip(ids, mask, strict=True)]
    logits = runner.advance(prompts, [True] * vec.num_envs).logits
    for t in range(steps):
        logits[:, vec.eos_token_id] = float("-inf")
        logp = torch.log_softmax(logits, dim=-1)
        actions = torch.multinomial(logp.exp(), 1, generator=gen)[:, 0]
        vec.set_policy_logprobs(logp.gather(1, actions[:, None])[:, 0].cpu().numpy())
        vec.step(actions.cpu().numpy())
        if t + 1 < steps:
            logits = runner.advance_one(actions).logits


@torch.no_grad()
def baseline_path(tok, policy, reference, prompts: list[str], steps: int, device) -> None:
    """HF generate (pure sampling) + one teacher-forced reference forward with log-probs."""
    tok.padding_side = "left"
    batch = tok(prompts, return_tensors="pt", padding=True).to(device)
    out = policy.generate(
        **batch,
        do_sample=True,
        top_k=0,
        top_p=1.0,
        max_new_tokens=steps,
        min_new_tokens=steps,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    mask = torch.cat(
        [batch["attention_mask"], torch.ones_like(out[:, batch["input_ids"].shape[1] :])], 1
    )
    logits = reference(input_ids=out, attention_mask=mask).logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1).gather(2, out[:, 1:, None])[..., 0]
    _ = logp[:, -steps:].sum(dim=1).cpu()


@torch.no_grad()
def per_token_floor(tok, policy, reference, prompts: list[str], steps: int, device) -> None:
    """Two bare cached HF forwards per token, policy then reference, and nothing else.

    No env bookkeeping: this is the least any design costs that prices each token with the
    reference as it is written, which a token-level env must do to return r_t from step().
    """
    tok.padding_side = "left"
    batch = tok(prompts, return_tensors="pt", padding=True).to(device)
    mask = batch["attention_mask"]
    out_p = policy(**batch, cache=DynamicCache(config=policy.config), use_cache=True)
    out_r = reference(**batch, cache=DynamicCache(config=reference.config), use_cache=True)
    for _ in range(steps):
        logits = out_p.logits[:, -1].float()
        logits[:, tok.eos_token_id] = float("-inf")
        actions = torch.multinomial(torch.softmax(logits, dim=-1), 1)
        _ = torch.log_softmax(out_r.logits[:, -1].float(), dim=-1).gather(1, actions)
        mask = torch.cat([mask, torch.ones_like(actions)], dim=1)
        out_p = policy(input_ids=actions, attention_mask=mask, cache=out_p.cache, use_cache=True)
        out_r = reference(input_ids=actions, attention_mask=mask, cache=out_r.cache, use_cache=True)


def timed(fn: Callable[[], None]) -> tuple[float, float]:
    """Wall and process CPU seconds of one ``fn()`` call (cuda synchronised).

    CPU time (all threads) is what a run cost when other jobs share the cores; wall time is
    what it took.
    """
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu


def interleaved(
    runs: dict[str, Callable[[], None]], repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall and CPU seconds of each run; each repeat runs each once, in a rotating order."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(timed(runs[name]))
    wall = {name: float(np.median([w for w, _ in values])) for name, values in times.items()}
    cpu = {name: float(np.median([c for _, c in values])) for name, values in times.items()}
    return wall, cpu


def peak_rss_mib() -> float:
    """The process's peak resident set so far (``ru_maxrss``, KiB on Linux), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(vec, tok, policy, reference, prompts: list[str], steps: int, device, repeats: int):
    """Median wall and CPU seconds of the env loop, the baseline and the floor."""
    env_path(vec, policy, 4, 0)  # warm-ups
    baseline_path(tok, policy, reference, prompts, 4, device)
    per_token_floor(tok, policy, reference, prompts, 4, device)
    runs = {
        "env": partial(env_path, vec, policy, steps, 1),
        "base": partial(baseline_path, tok, policy, reference, prompts, steps, device),
        "floor": partial(per_token_floor, tok, policy, reference, prompts, steps, device),
    }
    return interleaved(runs, repeats)


def report(steps: int, t: dict[str, float], cpu: dict[str, float]) -> None:
    """Today's line (env vs generate + ref forward), then env / floor, RSS and the load."""
    print(
        f"T={steps:4d}: env loop {t['env'] * 1e3:8.1f} ms | generate + ref forward "
        f"{t['base'] * 1e3:8.1f} ms | ratio {t['env'] / t['base']:5.2f}x | per-token floor "
        f"{t['floor'] * 1e3:8.1f} ms ({t['floor'] / t['base']:4.2f}x)\n"
        f"        env / floor {t['env'] / t['floor']:5.2f}x (CPU time "
        f"{cpu['env'] / cpu['floor']:4.2f}x) | per token: env {t['env'] / steps * 1e3:6.2f} ms, "
        f"floor {t['floor'] / steps * 1e3:6.2f} ms | peak RSS {peak_rss_mib():6.1f} MiB | "
        f"load {os.getloadavg()[0]:4.2f}"
    )


def report_linearity(per_token: dict[int, tuple[float, float]]) -> None:
    """Per-token cost at the largest T over that at the smallest, env and floor."""
    if len(per_token) < 2:
        return
    short, long = min(per_token), max(per_token)
    print(
        f"per-token cost at T={long} vs T={short}: env "
        f"{per_token[long][0] / per_token[short][0]:4.2f}x, floor "
        f"{per_token[long][1] / per_token[short][1]:4.2f}x (linear in T: 1.00x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, nargs="+", default=[48, 96, 192])
    parser.add_argument("--model", choices=["auto", "toy", "tiny"], default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    setup = toy_setup() if args.model in ("auto", "toy") else None
    if setup is None and args.model == "toy":
        raise SystemExit("no cached toy build; run build_toy_world() first or use --model tiny")
    name = "toy SFT" if setup is not None else "tiny GPT-2 (128x4)"
    tok, policy, prompt_pool = setup if setup is not None else tiny_setup()
    policy = policy.to(device).eval()
    reference = copy.deepcopy(policy)
    prompts = prompt_pool[: args.batch]
    print(
        f"model: {name}, device: {device}, B={args.batch}, torch threads {torch.get_num_threads()}"
    )
    per_token: dict[int, tuple[float, float]] = {}  # T -> per-token seconds (env, floor)
    for steps in args.new_tokens:
        max_pos = getattr(policy.config, "n_positions", 10**9)
        if 8 + steps > max_pos:
            print(f"T={steps}: skipped (model has {max_pos} positions)")
            continue
        vec = TextGenerationVectorEnv(
            args.batch,
            tokenizer=tok,
            reference_model=reference,
            prompts=prompts,
            reward=lambda p, c: np.zeros(len(c)),
            max_prompt_tokens=8,
            max_new_tokens=steps,
            kl_coef=0.05,
            device=device,
        )
        t, cpu = measure(vec, tok, policy, reference, prompts, steps, device, args.repeats)
        per_token[steps] = (t["env"] / steps, t["floor"] / steps)
        report(steps, t, cpu)
    report_linearity(per_token)


if __name__ == "__main__":
    main()
