import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rlhf_gym.toy import (
    SFTConfig,
    ToyCacheError,
    ToyWorld,
    build_toy_world,
    load_toy_world,
    sample_completions,
)
from rlhf_gym.toy import cache as toy_cache
from transformers import AutoModelForCausalLM, AutoTokenizer

REPO = Path(__file__).resolve().parents[2]
# A deliberately tiny build: enough to exercise every stage and the cache, not to learn.
TINY = SFTConfig(n_embd=32, n_layer=1, n_head=2, steps=4, batch_size=8, max_new_tokens=12)
TINY_PAIRS = 12


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    return tmp_path_factory.mktemp("toy-cache")


@pytest.fixture(scope="session")
def tiny(tiny_root):
    return build_toy_world(tiny_root, num_pairs=TINY_PAIRS, sft_config=TINY, progress=False)


def test_build_writes_every_artifact(tiny):
    assert toy_cache.check(tiny.root) is None
    rows = tiny.read_preferences()
    assert len(rows) == TINY_PAIRS
    world = tiny.world
    for row in rows:
        assert set(row) == {"prompt", "chosen", "rejected"}
        assert row["chosen"] != row["rejected"]
        assert row["prompt"] in world.train_prompts
    for key in ("well_formed_frac", "sft_gold_mean", "sft_gold_std", "labeler_bayes_accuracy"):
        assert np.isfinite(tiny.stats[key])


def test_artifacts_load_with_plain_auto_classes(tiny):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny.tokenizer_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny.sft_dir))
    assert (tiny.sft_dir / "model.safetensors").is_file()
    assert model.config.resid_pdrop == model.config.embd_pdrop == model.config.attn_pdrop == 0.0
    assert model.config.pad_token_id == tokenizer.pad_token_id != tokenizer.eos_token_id
    assert AutoTokenizer.from_pretrained(str(tiny.sft_dir)).get_vocab() == tokenizer.get_vocab()
    out = sample_completions(model, tokenizer, ["review of the phone :"] * 3, seed=1,
                             max_new_tokens=5, progress=False)
    again = sample_completions(model, tokenizer, ["review of the phone :"] * 3, seed=1,
                               max_new_tokens=5, progress=False)
    assert out == again and len(out) == 3


def test_second_build_is_fast_and_identical(tiny, tiny_root):
    before = json.loads((tiny.root / toy_cache.MANIFEST).read_text())
    start = time.perf_counter()
    again = build_toy_world(tiny_root, num_pairs=TINY_PAIRS, sft_config=TINY, progress=False)
    assert time.perf_counter() - start < 5.0
    assert again == tiny
    assert json.loads((again.root / toy_cache.MANIFEST).read_text()) == before
    assert load_toy_world(tiny.root) == tiny


def test_truncated_cache_is_detected_and_rebuilt(tiny, tmp_path, capsys):
    root = tmp_path / "copy"
    shutil.copytree(tiny.root, root / tiny.root.name)
    broken = root / tiny.root.name / "preferences.jsonl"
    broken.write_bytes(broken.read_bytes()[:10])
    assert "preferences.jsonl" in toy_cache.check(broken.parent)
    with pytest.raises(FileNotFoundError, match="not a complete toy-world build"):
        load_toy_world(broken.parent)
    rebuilt = build_toy_world(root, num_pairs=TINY_PAIRS, sft_config=TINY, progress=True)
    assert "broken" in capsys.readouterr().err
    assert toy_cache.check(rebuilt.root) is None
    assert rebuilt.read_preferences() == tiny.read_preferences()  # same seed, same data


def test_interrupted_build_leaves_nothing_that_passes(tmp_path):
    final = tmp_path / "entry"
    with pytest.raises(RuntimeError), toy_cache.staging(final) as tmp:
        (tmp / "half.bin").write_bytes(b"x" * 10)
        raise RuntimeError("killed mid-build")
    assert not final.exists() and list(tmp_path.iterdir()) == []
    final.mkdir()
    (final / "a.txt").write_text("hello")
    assert "COMPLETE" in toy_cache.check(final)
    toy_cache.seal(final, {})
    assert toy_cache.check(final) is None
    (final / "a.txt").unlink()
    assert "missing" in toy_cache.check(final)


def test_unwritable_out_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    bad = blocker / "out"
    with pytest.raises(ToyCacheError, match=str(bad)):
        build_toy_world(bad, progress=False)
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "toy.py"), "build", "--toy-dir", str(bad)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert str(bad) in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_default_build_meets_its_targets():
    artifacts = build_toy_world(progress=False)
    world = ToyWorld(artifacts.world_config)
    model, tokenizer = artifacts.load_sft_model(), artifacts.load_tokenizer()
    prompts = [str(p) for p in np.random.default_rng(11).choice(world.train_prompts, 1000)]
    completions = sample_completions(model, tokenizer, prompts, seed=11, progress=False)
    well_formed = np.mean([world.is_well_formed(c) for c in completions])
    assert well_formed >= 0.95
    assert artifacts.stats["well_formed_frac"] >= 0.95
    assert 0.6 < artifacts.stats["sft_gold_std"] < 1.6
    assert len(artifacts.read_preferences()) == 6000


def test_cli_info_and_build(tiny, tiny_root, capsys):
    from rlhf_gym.scripts.cli import main

    assert main(["toy", "info", "--path", str(tiny.root)]) == 0
    out = capsys.readouterr().out
    assert "well-formed fraction" in out and "Bayes accuracy" in out and "vocab size" in out
    assert main(["toy", "info", "--path", str(tiny_root / "nope")]) == 2  # user error: exit 2
    assert "not a complete toy-world build" in capsys.readouterr().err
    assert main(["toy"]) == 2
    with pytest.raises(SystemExit):
        main(["toy", "build", "--bogus"])


def test_cli_on_a_built_world_does_not_import_torch(tiny):
    """A cache hit must stay instant: the CLI imports only the chosen subcommand's module."""
    code = (
        "import sys\n"
        "from rlhf_gym.scripts.cli import main\n"
        f"assert main(['toy', 'info', '--path', {str(tiny.root)!r}]) == 0\n"
        "print('torch' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "False"
