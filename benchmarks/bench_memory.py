"""Memory of the frozen models: fp32 vs bf16, and the LoRA reference as a view vs a second copy.

Two side-by-side lines, each case measured in a fresh process (resident memory, RSS, is only
comparable between processes that loaded nothing else):

* **precision**: a frozen model (a Llama built from config and saved as a float32 checkpoint)
  loaded with ``load_causal_lm(path, dtype=...)`` in float32 and in bfloat16: its parameter
  bytes (exactly halved) and the RSS it added once a forward has read every weight (a float32
  checkpoint is memory-mapped, so before that its pages are not all resident).
* **LoRA reference**: a ``train-ppo --lora-r 8`` job's env and agent after one iteration, built
  the way train-ppo builds them (the env's reference is a view of the policy's base weights)
  and the way it did before (the reference loaded as a second full copy): the bytes of
  reference weights that the policy does not share, and the job's RSS.

Run: ``python benchmarks/bench_memory.py [--hidden 512] [--layers 8]`` (CPU; about a minute).
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

PROMPTS = ["the phone is", "a good lamp", "it was not", "the book"]


def rss_mb(kind: str = "VmRSS") -> float:
    """This process's resident memory in MiB (Linux ``/proc``): ``VmRSS``, ``RssAnon``..."""
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(kind + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {kind} in /proc/self/status (this benchmark needs Linux)")


def unique_bytes(*modules: nn.Module) -> int:
    """Bytes of the distinct parameter and buffer storages of ``modules`` together."""
    seen: dict[int, int] = {}
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            storage = tensor.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def save_model(folder: Path, hidden: int, layers: int) -> Path:
    """A float32 Llama over the toy tokenizer's vocabulary, saved with its tokenizer."""
    from rlhf_gym.toy.tokenizer import build_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=4 * hidden,
        num_hidden_layers=layers, num_attention_heads=8, num_key_value_heads=8,
        max_position_embeddings=128, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def warm_up(dtype: str) -> None:
    """One forward of a throwaway tiny Llama, so torch's one-off start-up memory is not counted."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2)  # fmt: skip
    with torch.no_grad():
        LlamaForCausalLM(config).to(getattr(torch, dtype))(input_ids=torch.tensor([[1, 2, 3]]))


def measure_frozen(path: str, dtype: str) -> dict[str, float]:
    """Load the model frozen in ``dtype``: its parameter bytes and the RSS it added."""
    from rlhf_gym.lm.loading import load_causal_lm

    warm_up(dtype)
    before = rss_mb()
    model = load_causal_lm(path, dtype=dtype).requires_grad_(False)
    with torch.no_grad():  # touch every weight: a float32 checkpoint is mmapped until read
        model(input_ids=torch.tensor([[1, 2, 3]]))
    return {"params_mb": unique_bytes(model) / 2**20, "rss_mb": rss_mb() - before}


def measure_lora(path: str, view: bool) -> dict[str, float]:
    """A LoRA job's env and agent; ``view=False`` loads the reference as its own copy."""
    from rlhf_gym.lm.loading import load_tokenizer
    from rlhf_gym.training import builders
    from rlhf_gym.training.config import TrainPPOConfig
    from rlhf_gym.training.sources import PPOSources

    config = TrainPPOConfig(policy=path, lora_r=8, num_envs=4, max_new_tokens=8, device="cpu")
    sources = PPOSources(path, path, load_tokenizer(path), PROMPTS, PROMPTS)
    before = rss_mb()
    models = builders.load_models(config, sources) if view else builders.JobModels(None)
    env = builders.build_env(config, sources, lambda p, c: [0.0] * len(c), models.reference)
    agent = builders.build_agent(config, sources, env, models.lora)
    agent.learn(agent.n_steps * agent.n_envs)  # one iteration: every weight is read
    reference, policy = env.reference_model, agent.policy
    extra = unique_bytes(reference, policy) - unique_bytes(policy)
    return {"reference_only_mb": extra / 2**20, "rss_mb": rss_mb() - before}


def in_fresh_process(case: str, *args: object) -> dict[str, float]:
    """Run one ``--case`` in a new Python process and read its JSON result."""
    command = [sys.executable, __file__, "--case", case, *map(str, args)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    """Print the precision line and the LoRA-reference line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--case", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.case:
        name, path, option = args.case
        cases = {"frozen": lambda: measure_frozen(path, option),
                 "lora": lambda: measure_lora(path, option == "view")}  # fmt: skip
        print(json.dumps(cases[name]()))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = save_model(Path(tmp) / "model", args.hidden, args.layers)
        fp32, bf16 = (in_fresh_process("frozen", path, d) for d in ("float32", "bfloat16"))
        copy, view = (in_fresh_process("lora", path, how) for how in ("copy", "view"))
    print(
        f"frozen model    params fp32 {fp32['params_mb']:7.1f} MiB  bf16 {bf16['params_mb']:7.1f} "
        f"MiB (x{bf16['params_mb'] / fp32['params_mb']:.2f}) | RSS added fp32 "
        f"{fp32['rss_mb']:7.1f} MiB  bf16 {bf16['rss_mb']:7.1f} MiB"
    )
    print(
        f"LoRA reference  unshared weights: second copy {copy['reference_only_mb']:7.1f} MiB  "
        f"view {view['reference_only_mb']:7.1f} MiB (saved "
        f"{copy['reference_only_mb'] - view['reference_only_mb']:.1f} MiB) | job RSS copy "
        f"{copy['rss_mb']:7.1f} MiB  view {view['rss_mb']:7.1f} MiB"
    )


if __name__ == "__main__":
    main()
