"""Tokens per second of LMPPO iterations on 1 process and on K data-parallel processes.

Each rank runs the same job as ``bench_ppo.py``'s LMPPO (GPT-2, 4 layers, width 128, the toy
world's vocabulary and prompts) with ``--envs`` envs of its own, so K ranks make K times the
tokens per iteration (weak scaling); gradients are all-reduced every minibatch
(docs/distributed.md). Every process gets ``--threads`` torch threads, so on CPU the K-rank run
uses K times the cores. The K-rank run is launched with ``torchrun`` (gloo on CPU, nccl on CUDA).
Run: ``python benchmarks/bench_ddp.py [--nproc 2] [--device cuda]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time

import torch
from bench_ppo import length_reward, make_model
from rlhf_gym import distributed
from rlhf_gym.agents.ppo import LMPPO
from rlhf_gym.envs import TextGenerationVecEnv
from rlhf_gym.toy.grammar import ToyWorld
from rlhf_gym.toy.tokenizer import build_tokenizer


def build_agent(args: argparse.Namespace, device: str) -> LMPPO:
    tokenizer = build_tokenizer()
    model = make_model(len(tokenizer))
    env = TextGenerationVecEnv(
        args.envs,
        tokenizer=tokenizer,
        reference_model=copy.deepcopy(model),
        prompts=ToyWorld().train_prompts,
        reward=length_reward,
        max_prompt_tokens=8,
        max_new_tokens=args.new_tokens,
        device=device,
    )
    return LMPPO(
        "LMPolicy",
        env,
        n_steps=args.new_tokens,
        batch_size=8,
        n_epochs=2,
        seed=0,
        device=device,
        policy_kwargs={"model": model},
    )


def worker(args: argparse.Namespace) -> None:
    """One rank: warm up, time ``--iterations`` iterations, rank 0 prints a JSON line."""
    torch.set_num_threads(args.threads)
    distributed.init_from_env()
    device = f"cuda:{torch.cuda.current_device()}" if args.device == "cuda" else "cpu"
    agent = build_agent(args, device)
    steps = agent.n_steps * agent.n_envs
    agent.learn(steps)  # warm-up
    distributed.barrier()
    start = time.perf_counter()
    agent.learn(steps * args.iterations, reset_num_timesteps=False)
    distributed.barrier()
    seconds = time.perf_counter() - start
    tokens = steps * args.iterations * distributed.world_size()
    if distributed.is_main_process():
        result = {"ranks": distributed.world_size(), "seconds": seconds, "tok_s": tokens / seconds}
        print("RESULT " + json.dumps(result), flush=True)


def launch(args: argparse.Namespace, nproc: int) -> dict[str, float]:
    """Run the workers under torchrun; their rank-0 result."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", __file__, "--worker", *sys.argv[1:]]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        sys.exit(f"{nproc}-process run failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2, help="ranks of the parallel run")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--envs", type=int, default=8, help="envs per rank")
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    one, many = launch(args, 1), launch(args, args.nproc)
    print(f"LMPPO on {args.device}, {args.envs} envs x {args.new_tokens} tokens per rank")
    print(f"{'ranks':>5} {'s/iteration':>12} {'tokens/s':>10}")
    for run in (one, many):
        print(f"{run['ranks']:>5} {run['seconds'] / args.iterations:>12.2f} {run['tok_s']:>10.0f}")
    efficiency = many["tok_s"] / (args.nproc * one["tok_s"])
    print(f"scaling efficiency {efficiency:.0%} of {args.nproc}x")


if __name__ == "__main__":
    main()
