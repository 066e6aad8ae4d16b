"""One LMPPO iteration vs a bare PyTorch loop doing the same generate/score/forward/backward work.

Both use the toy world's architecture (GPT-2, 4 layers, width 128, its 238-word vocabulary) built
from config, B=32 prompts, 48 new tokens, 4 epochs of minibatches of 8 sequences, Adam. The bare
loop is the natural hand-written RLHF step: KV-cached sampling from the policy (values from its
hidden states), one full forward of the reference over the finished sequences, scoring, GAE and
the PPO epochs. LMPPO does the same through the VecEnv (the env runs the reference cached, step by
step). LMPPO runs twice: with episode-aligned rollouts (its default: one whole episode per
env, finished rows out of the batch) and with SB3's fixed ``n_steps`` rollouts
(``episode_aligned=False``, episodes carried across iterations). ``--critic`` runs the second
configuration: a separate critic initialised from a reward model (itself initialised from the
policy), trained with the policy; the bare loop evaluates it with one teacher-forced forward
over the finished sequences. Each side runs in its own child process, so the peak RSS printed
is that side's alone. Beside the wall-clock ratio it prints the ratio of process CPU seconds,
which a busy shared machine disturbs less. ``--rounds`` alternates the three sides that many
times and prints the median (and range) of each side's per-round medians. LMPPO's peak RSS is
broken down into the process before any model, the models' weights, Adam's state and the rest
(activations, caches, allocator slack).
Run: ``python benchmarks/bench_ppo.py [--critic] [--device cuda] [--threads 2] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rlhf_gym.agents.ppo import LMPPO
from rlhf_gym.envs import TextGenerationVecEnv
from rlhf_gym.lm.device import resolve_device
from rlhf_gym.toy.grammar import ToyWorld
from rlhf_gym.toy.tokenizer import build_tokenizer
from transformers import DynamicCache, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerBase

B, NEW, EPOCHS, MB = 32, 48, 4, 8


def length_reward(prompts: list[str], completions: list[str]) -> np.ndarray:
    """A cheap reward: word count / 10."""
    return np.array([len(c.split()) / 10 for c in completions])


def make_model(vocab: int, seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=vocab,
        n_embd=128,
        n_layer=4,
        n_head=4,
        n_positions=128,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        eos_token_id=1,
        pad_token_id=0,
        bos_token_id=1,
    )
    return GPT2LMHeadModel(config).eval()


def save_critic_source(
    model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerBase, folder: Path
) -> str:
    """A reward model initialised from the policy: ``--critic`` runs start their critic here."""
    from rlhf_gym.reward_models import RewardModel, init_reward_model

    model.save_pretrained(folder / "sft")
    network = init_reward_model(folder / "sft", pad_token_id=0, seed=1)
    RewardModel(network, tokenizer, device="cpu").save_pretrained(folder / "rm")
    return str(folder / "rm")


def lmppo_iteration(
    device: torch.device, critic: bool, episode_aligned: bool
) -> tuple[float, float, dict[str, float]]:
    tokenizer = build_tokenizer()
    model = make_model(len(tokenizer))
    policy_kwargs: dict = {"model": model}
    if critic:  # the folder is left for the OS to clean: the agent reads it while it lives
        policy_kwargs["critic"] = save_critic_source(model, tokenizer, Path(tempfile.mkdtemp()))
    env = TextGenerationVecEnv(
        B,
        tokenizer=tokenizer,
        reference_model=copy.deepcopy(model),
        prompts=ToyWorld().train_prompts,
        reward=length_reward,
        max_prompt_tokens=8,
        max_new_tokens=NEW,
        device=device,
    )
    agent = LMPPO(
        "LMPolicy",
        env,
        n_steps=NEW,
        batch_size=MB,
        n_epochs=EPOCHS,
        episode_aligned=episode_aligned,
        seed=0,
        device=device,
        policy_kwargs=policy_kwargs,
    )
    agent.learn(B * NEW)  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    agent.learn(B * NEW, reset_num_timesteps=False)
    sync(device)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return seconds, agent.last_metrics["time/rollout_s"], memory_held(agent), cpu


def mib(tensors) -> float:
    """The MiB the tensors hold (each storage counted once)."""
    seen: dict[int, int] = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values()) / 2**20


def memory_held(agent: LMPPO) -> dict[str, float]:
    """MiB of the models' weights and of the optimizer's state, by owner."""
    policy = agent.policy
    critic = policy.critic_trunk
    critic_ids = {id(p) for p in critic.parameters()} if critic is not None else set()
    own = [p for p in policy.parameters() if id(p) not in critic_ids]
    state = [t for s in policy.optimizer.state.values() for t in s.values() if t.dim()]
    return {
        "policy (+ value head)": mib(own),
        "critic": mib(critic.parameters()) if critic is not None else 0.0,
        "reference": mib(agent.env.get_attr("reference_model")[0].parameters()),
        "Adam state": mib(state),
    }


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Bare:
    """The hand-written loop: policy + value head (or a separate critic), frozen reference, Adam."""

    def __init__(self, device: torch.device, critic: bool = False) -> None:
        self.tokenizer = build_tokenizer()
        self.policy = make_model(len(self.tokenizer)).to(device)
        self.reference = copy.deepcopy(self.policy).requires_grad_(False)
        self.head = torch.nn.Linear(128, 1).to(device)
        # the separate critic: a copy of the policy's trunk, as a reward model initialised from it
        self.critic = copy.deepcopy(self.policy.transformer) if critic else None
        params = [*self.policy.parameters(), *self.head.parameters()]
        params += [*self.critic.parameters()] if critic else []
        self.optimizer = torch.optim.Adam(params, lr=1e-5, eps=1e-5)
        self.generator = torch.Generator(device).manual_seed(0)
        self.device = device
        prompts = ToyWorld().train_prompts
        self.prompts = [prompts[i % len(prompts)] for i in range(B)]
        self.amp = torch.autocast("cuda", torch.bfloat16, enabled=device.type == "cuda")

    @torch.no_grad()
    def generate(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        ids = torch.tensor([self.tokenizer.encode(p) for p in self.prompts], device=self.device)
        prompt_len = ids.shape[1]
        cache, step_ids, logps, values = DynamicCache(config=self.policy.config), ids, [], []
        for _ in range(NEW):
            with self.amp:
                out = self.policy(
                    input_ids=step_ids, cache=cache, use_cache=True, output_hidden_states=True
                )
            cache = out.cache
            dist = torch.log_softmax(out.logits[:, -1].float(), -1)
            token = torch.multinomial(dist.exp(), 1, generator=self.generator)
            logps.append(dist.gather(1, token).squeeze(1))
            if self.critic is None:
                values.append(self.head(out.hidden_states[-1][:, -1].float()).squeeze(-1))
            ids, step_ids = torch.cat([ids, token], 1), token
        if self.critic is not None:  # one teacher-forced critic forward over the sequences
            return ids, torch.stack(logps, 1), self.critic_values(ids, prompt_len), prompt_len
        return ids, torch.stack(logps, 1), torch.stack(values, 1), prompt_len

    def critic_values(self, ids: torch.Tensor, prompt_len: int) -> torch.Tensor:
        with self.amp:
            hidden = self.critic(input_ids=ids).last_hidden_state
        return self.head(hidden[:, prompt_len - 1 : -1].float()).squeeze(-1)

    @torch.no_grad()
    def rewards(self, ids: torch.Tensor, logps: torch.Tensor, prompt_len: int) -> tuple:
        with self.amp:
            ref = torch.log_softmax(self.reference(input_ids=ids).logits.float(), -1)
        ref_lp = ref[:, prompt_len - 1 : -1].gather(2, ids[:, prompt_len:, None]).squeeze(-1)
        gen = ids[:, prompt_len:]
        is_eos = gen == 1
        first = torch.where(
            is_eos.any(1), is_eos.float().argmax(1), torch.full_like(gen[:, 0], NEW - 1)
        )
        mask = torch.arange(NEW, device=ids.device)[None] <= first[:, None]
        texts = [
            self.tokenizer.decode(g[: int(f) + 1].tolist(), skip_special_tokens=True)
            for g, f in zip(gen.cpu(), first.cpu(), strict=True)
        ]
        score = torch.as_tensor(length_reward(self.prompts, texts), dtype=torch.float32)
        rewards = -0.05 * (logps - ref_lp) * mask
        rewards[torch.arange(B), first] += score.to(ids.device)
        return rewards, mask

    def gae(self, rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> tuple:
        values = values * mask
        adv, last = torch.zeros_like(rewards), torch.zeros(B, device=rewards.device)
        for t in reversed(range(NEW)):
            next_v = values[:, t + 1] if t + 1 < NEW else torch.zeros_like(last)
            delta = rewards[:, t] + next_v - values[:, t]
            last = delta + 0.95 * last * mask[:, t]
            adv[:, t] = last
        returns = adv + values
        adv = (adv - adv[mask].mean()) / (adv[mask].std() + 1e-8)
        return adv, returns

    def update(self, ids, old_lp, old_v, adv, returns, mask, prompt_len: int) -> None:
        for _ in range(EPOCHS):
            for rows in torch.randperm(B).split(MB):
                with self.amp:
                    out = self.policy(input_ids=ids[rows], output_hidden_states=True)
                logits = out.logits[:, prompt_len - 1 : -1].float()
                lp = (
                    torch.log_softmax(logits, -1)
                    .gather(2, ids[rows, prompt_len:, None])
                    .squeeze(-1)
                )
                if self.critic is None:
                    v = self.head(out.hidden_states[-1][:, prompt_len - 1 : -1].float()).squeeze(-1)
                else:
                    v = self.critic_values(ids[rows], prompt_len)
                ratio = (lp - old_lp[rows]).exp()
                a, m = adv[rows], mask[rows]
                pg = torch.max(-a * ratio, -a * ratio.clamp(0.8, 1.2))
                vc = old_v[rows] + (v - old_v[rows]).clamp(-0.2, 0.2)
                vf = torch.max((v - returns[rows]) ** 2, (vc - returns[rows]) ** 2)
                loss = (pg * m).sum() / m.sum() + 0.1 * 0.5 * (vf * m).sum() / m.sum()
                self.optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), 1.0)
                self.optimizer.step()

    def iteration(self) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        ids, logps, values, prompt_len = self.generate()
        rewards, mask = self.rewards(ids, logps, prompt_len)
        adv, returns = self.gae(rewards, values, mask)
        self.update(ids, logps, values, adv, returns, mask, prompt_len)
        sync(self.device)
        return time.perf_counter() - start, time.process_time() - cpu


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


SIDES = {
    "bare": "bare PyTorch loop",
    "episodes": "LMPPO, episode-aligned",
    "fixed": "LMPPO, fixed n_steps",
}


def run_side(side: str, device_name: str, threads: int, critic: bool, repeats: int) -> dict:
    """One side's median seconds (and LMPPO's rollout seconds), in a fresh child process."""
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(device_name)
    start_rss = peak_rss_mib()  # the process with torch and transformers loaded, no model yet
    if side == "bare":
        bare = Bare(device, critic)
        bare.iteration()  # warm-up
        times = np.array([bare.iteration() for _ in range(repeats)])
        seconds, cpu = np.median(times, axis=0)
        return {"s": seconds, "cpu": cpu, "rollout_s": 0.0, "rss": peak_rss_mib(), "held": {}}
    runs = [lmppo_iteration(device, critic, side == "episodes") for _ in range(repeats)]
    return {
        "s": float(np.median([r[0] for r in runs])),
        "cpu": float(np.median([r[3] for r in runs])),
        "rollout_s": float(np.median([r[1] for r in runs])),
        "rss": peak_rss_mib(),
        "held": {"process before any model": start_rss, **runs[-1][2]},
    }


def spread(values: list[float]) -> str:
    """``median (min…max)`` of a side's per-round figures."""
    return f"{np.median(values):.3f} ({min(values):.3f}…{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--repeats", type=int, default=3, help="timed iterations (median)")
    parser.add_argument("--rounds", type=int, default=1, help="times the sides alternate")
    parser.add_argument("--critic", action="store_true", help="a separate critic from an RM")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    results: dict[str, list[dict]] = {side: [] for side in SIDES}
    for _ in range(args.rounds):
        for side in SIDES:
            task = (side, args.device, args.threads, args.critic, args.repeats)
            with context.Pool(1) as pool:
                results[side].append(pool.apply(run_side, task))
    values = "critic from a reward model" if args.critic else "value head on the policy trunk"
    print(
        f"device={resolve_device(args.device)} threads={args.threads or 'default'} B={B} "
        f"new_tokens={NEW} epochs={EPOCHS} minibatch={MB} values: {values}; "
        f"median (min…max) of {args.rounds} round(s), each the median of {args.repeats}"
    )
    bare = {key: float(np.median([r[key] for r in results["bare"]])) for key in ("s", "cpu")}
    for side, label in SIDES.items():
        runs = results[side]
        wall, cpu = (float(np.median([r[key] for r in runs])) for key in ("s", "cpu"))
        rollout = "" if side == "bare" else f", rollout {spread([r['rollout_s'] for r in runs])} s"
        ratio = f" = {wall / bare['s']:.2f}x bare (CPU time {cpu / bare['cpu']:.2f}x)"
        print(
            f"{label:<24}: {spread([r['s'] for r in runs])} s/iteration"
            f"{'' if side == 'bare' else ratio}{rollout}, "
            f"peak RSS {np.median([r['rss'] for r in runs]):.0f} MiB"
        )
    held = results["episodes"][-1]["held"]
    rest = np.median([r["rss"] for r in results["episodes"]]) - sum(held.values())
    parts = ", ".join(f"{name} {value:.0f}" for name, value in held.items())
    print(f"episode-aligned peak RSS, MiB: {parts}, the rest (activations, caches) {rest:.0f}")
    print("goal: LMPPO episode-aligned <= 1.2x bare")


if __name__ == "__main__":
    main()
