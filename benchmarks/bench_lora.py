"""A LoRA rollout through env + agent, fused and unfused, vs ``generate`` + one reference forward.

The toy world's architecture (GPT-2, 4 layers, width 128, its 238-word vocabulary) built from
config, wrapped with LoRA adapters (r=8 on ``c_attn``, made non-zero so the policy is not its
reference); B=32 prompts, T=48 new tokens. The env's reference is a ``ReferenceView`` of the
policy's own peft model (the same base weights, adapters disabled). Three sides, each one
rollout of B x T tokens:

- **fused**: ``LMPPO.collect_rollouts`` with the fused forward (``fused_reference.py``): one
  cached forward of the peft model over 2B rows per token (B with the adapter, B on the base),
  the reference log-probs handed to the env, which runs no reference forward.
- **unfused**: the same rollout with the env pricing its reference itself: two cached forwards
  per token, the act, then the env's reference forward through the view.
- **generate + reference**: the cheapest way to get the same numbers outside an env: the LoRA
  model's ``generate`` (pure sampling, KV cache) and one teacher-forced forward of the
  finished sequences with adapters disabled, gathering log π_ref of the sampled tokens.

Beside them, the fused path's floor: a bare loop of cached HF forwards over the same 2B mixed
rows (sampling from the adapter rows, no env, no agent), the least the one-forward design costs.
On CPU a forward costs about its rows, so that floor is already above ``generate`` (B rows) plus
one teacher-forced forward; on an accelerator a decode step costs about the same for B or 2B
rows, which is where the goal line is meant to hold.

**EOS is suppressed on every side** so every row writes exactly T tokens: the model's head is
untied and one final-norm dimension is pinned to 1, on which only EOS has a weight (-30), so
EOS is never sampled; the weights are otherwise the toy architecture's random init.

Each side runs in its own child process (so its peak RSS is its own); the sides alternate, in a
rotating order, ``--repeats`` times, and each prints the median wall and process-CPU seconds of
its timed rollouts (one warm-up rollout first, in each child). On CUDA the agent autocasts to
bf16 and the baseline does too.

    python benchmarks/bench_lora.py [--device cuda] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import resource
import time

import numpy as np
import torch
from rlhf_gym.agents.common.fused_reference import fuse_reference_forward
from rlhf_gym.agents.common.lora import ReferenceView, apply_lora
from rlhf_gym.agents.ppo import LMPPO
from rlhf_gym.envs import TextGenerationVecEnv
from rlhf_gym.lm.device import resolve_device
from rlhf_gym.toy.grammar import ToyWorld
from rlhf_gym.toy.tokenizer import build_tokenizer
from transformers import DynamicCache, GPT2Config, GPT2LMHeadModel

B, NEW, EOS = 32, 48, 1
SIDES = {
    "fused": "fused rollout (1 forward, 2B rows)",
    "unfused": "unfused rollout (2 forwards)",
    "generate": "generate + reference forward",
    "floor": "floor: bare decode of 2B mixed rows",
}


def lora_model(vocab: int) -> torch.nn.Module:
    """The toy architecture with LoRA adapters, its EOS never sampled (see the module)."""
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=vocab, n_embd=128, n_layer=4, n_head=4, n_positions=128,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, eos_token_id=EOS, pad_token_id=0,
        bos_token_id=EOS, tie_word_embeddings=False,
    )  # fmt: skip
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # dimension 0 of the final norm is 1; only EOS reads it, at -30
        model.transformer.ln_f.weight[0], model.transformer.ln_f.bias[0] = 0.0, 1.0
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[EOS, 0] = -30.0
    peft = apply_lora(model, {"r": 8, "lora_alpha": 16, "target_modules": ["c_attn"]})
    for name, param in peft.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0.0, 0.02)
    return peft


def make_agent(device: torch.device, fused: bool) -> LMPPO:
    """An LMPPO agent on a LoRA policy whose env's reference is a view of its peft model."""
    tokenizer = build_tokenizer()
    peft = lora_model(len(tokenizer))
    env = TextGenerationVecEnv(
        B, tokenizer=tokenizer, reference_model=ReferenceView(peft),
        prompts=ToyWorld().train_prompts, reward=lambda p, c: np.zeros(len(c)),
        max_prompt_tokens=8, max_new_tokens=NEW, kl_coef=0.05, device=device,
    )  # fmt: skip
    policy_kwargs = {"model": peft.get_base_model(), "lora": peft}
    agent = LMPPO("LMPolicy", env, n_steps=NEW, seed=0, device=device, policy_kwargs=policy_kwargs)
    fuse_reference_forward(agent.policy, env)  # what the agent's setup does
    if not fused:
        env.hand_over_reference(False)  # the env prices its reference itself
    assert env.reference_handed_over == fused
    return agent


def rollout(agent: LMPPO) -> None:
    """One rollout, as ``learn`` collects it (every row writes NEW tokens)."""
    _, callback = agent._setup_learn(B * NEW, None)
    assert agent.collect_rollouts(agent.env, callback, agent.rollout_buffer, agent.n_steps)
    assert int(agent.rollout_buffer.lengths.min()) == NEW, "an episode ended early"


class Baseline:
    """The LoRA model's ``generate``, then one teacher-forced forward with adapters disabled."""

    def __init__(self, device: torch.device) -> None:
        self.tokenizer = build_tokenizer()
        self.model = lora_model(len(self.tokenizer)).to(device).eval()
        prompts = ToyWorld().train_prompts
        self.batch = self.tokenizer(
            [prompts[i % len(prompts)] for i in range(B)], return_tensors="pt", padding=True
        ).to(device)
        self.amp = torch.autocast("cuda", torch.bfloat16, enabled=device.type == "cuda")

    @torch.no_grad()
    def __call__(self) -> None:
        with self.amp:
            out = self.model.generate(
                **self.batch, do_sample=True, top_k=0, top_p=1.0, max_new_tokens=NEW,
                pad_token_id=0, eos_token_id=EOS,
            )  # fmt: skip
            assert out.shape[1] == self.batch["input_ids"].shape[1] + NEW
            mask = torch.cat([self.batch["attention_mask"], torch.ones_like(out[:, -NEW:])], 1)
            with self.model.disable_adapter():
                logits = self.model(input_ids=out, attention_mask=mask).logits[:, -NEW - 1 : -1]
        logp = torch.log_softmax(logits.float(), -1).gather(2, out[:, -NEW:, None])[..., 0]
        _ = logp.sum(dim=1).cpu()


class Floor(Baseline):
    """One cached forward per token over 2B rows, adapter then base: no env, no agent."""

    @torch.no_grad()
    def __call__(self) -> None:
        ids, mask = (torch.cat([self.batch[key]] * 2) for key in ("input_ids", "attention_mask"))
        names = {"adapter_names": ["default"] * B + ["__base__"] * B, "use_cache": True}
        cache = DynamicCache(config=self.model.config)
        with self.amp:
            out = self.model(input_ids=ids, attention_mask=mask, cache=cache, **names)
            for _ in range(NEW):
                dist = torch.log_softmax(out.logits[:, -1].float(), -1)
                actions = torch.multinomial(dist[:B].exp(), 1)
                _ = dist[B:].gather(1, actions)  # the reference rows' log-probs
                actions = torch.cat([actions, actions])
                mask = torch.cat([mask, torch.ones_like(actions)], 1)
                out = self.model(input_ids=actions, attention_mask=mask, cache=out.cache, **names)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_side(side: str, device_name: str, threads: int) -> dict[str, float]:
    """In a child process: build the side, run it once to warm up, then time one run."""
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(device_name)
    if side in ("generate", "floor"):
        run = Baseline(device) if side == "generate" else Floor(device)
    else:
        agent = make_agent(device, fused=side == "fused")
        run = functools.partial(rollout, agent)
    run()
    sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    run()
    sync(device)
    return {
        "s": time.perf_counter() - start,
        "cpu": time.process_time() - cpu,
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each side")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    results: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    names = list(SIDES)
    for r in range(args.repeats):
        for side in names[r % len(names) :] + names[: r % len(names)]:
            with context.Pool(1) as pool:
                results[side].append(pool.apply(run_side, (side, args.device, args.threads)))
    print(
        f"device={resolve_device(args.device)} threads={args.threads or 'default'} B={B} T={NEW} "
        f"LoRA r=8 (c_attn), EOS suppressed; median of {args.repeats} interleaved runs"
    )
    report(results)


def report(results: dict[str, list[dict[str, float]]]) -> None:
    """Each side's median (and its runs), the ratios to the baseline and fused / unfused."""
    med = {side: median_of(runs) for side, runs in results.items()}
    base = med["generate"]
    for side, label in SIDES.items():
        m, runs = med[side], ", ".join(f"{r['s'] * 1e3:.0f}" for r in results[side])
        ratio = ""
        if side != "generate":  # the floor too
            ratio = f" = {m['s'] / base['s']:.2f}x generate + ref"
            ratio += f" (CPU time {m['cpu'] / base['cpu']:.2f}x)"
        print(f"{label:<36}: {m['s'] * 1e3:6.0f} ms (runs {runs}){ratio}, RSS {m['rss']:.0f} MiB")
    fused, unfused, floor = med["fused"], med["unfused"], med["floor"]
    print(
        f"fused / unfused: {fused['s'] / unfused['s']:.2f}x "
        f"(CPU time {fused['cpu'] / unfused['cpu']:.2f}x); fused / its floor: "
        f"{fused['s'] / floor['s']:.2f}x"
    )
    print("goal: fused <= 1.25x generate + reference")


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median of each measure over the runs."""
    return {key: float(np.median([run[key] for run in runs])) for key in runs[0]}


if __name__ == "__main__":
    main()
