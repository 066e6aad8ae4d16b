import json
import math

import pytest
from rlhf_gym.evaluation.held_out import EvalResult
from rlhf_gym.evaluation.report import (
    RunSummary,
    markdown_to_html,
    write_comparison_report,
    write_report,
)


def synthetic_history(gold_peak: float = 4.0, steps: int = 12) -> list[dict]:
    """Proxy rises with KL; gold rises then falls past sqrt(KL) = gold_peak / 2 (Gao et al.)."""
    history = []
    for i in range(steps):
        kl = 0.5 * i * i
        root = math.sqrt(kl)
        history.append({
            "step": 100 * i, "kl": kl, "proxy": 1.2 * root, "gold": root * (gold_peak - root) / 4,
            "kl_coef": 0.1 * 0.95**i, "response_length": 10 + i, "distinct_1": 0.5 - 0.02 * i,
            "distinct_2": 0.8 - 0.03 * i,
        })
    return history


def eval_result(shift: float, word: str) -> EvalResult:
    prompts = [f"review of the item{i} :" for i in range(7) for _ in range(2)]
    completions = [f"it is {word} {'very ' * (i % 3)}." for i in range(14)]
    return EvalResult(
        prompts=prompts, completions=completions,
        scores=[shift + 0.1 * i for i in range(14)], gold=[-shift + 0.01 * i for i in range(14)],
        kl=[shift] * 14, length=[len(c.split()) for c in completions], num_tokens=[6] * 14,
        ended=[True] * 14,
    )


def test_write_report_writes_markdown_html_plots_and_matching_summary(tmp_path):
    history = synthetic_history()
    before, after = eval_result(0.0, "good"), eval_result(2.0, "great")
    path = write_report(tmp_path / "run", history=history, before=before, after=after,
                        rm_accuracy=0.71, bayes_accuracy=0.81, config={"beta": 0.05},
                        title="toy run")
    run = tmp_path / "run"
    assert path == run / "report.md"
    for name in ["report.md", "report.html", "reward_vs_kl.png", "rewards.png", "kl.png",
                 "length.png", "diversity.png", "kl_coef.png"]:
        assert (run / name).stat().st_size > 0, name
    assert (run / "reward_vs_kl.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = path.read_text()
    assert "review of the item0 :" in md and "item5" not in md  # the first 5 prompts only
    assert "it is great" in md and "![kl_coef.png](kl_coef.png)" in md
    html = (run / "report.html").read_text()
    assert "<table>" in html and '<img src="reward_vs_kl.png"' in html and "<th>RM accuracy" in html

    summary = json.loads((run / "summary.json").read_text())
    assert summary["history"] == history
    assert summary["rm_accuracy"] == 0.71 and summary["bayes_accuracy"] == 0.81
    assert summary["rm_headroom_fraction"] == pytest.approx(0.21 / 0.31)
    assert summary["config"] == {"beta": 0.05}
    final = summary["final"]
    assert final["proxy"] == pytest.approx(after.reward_mean)
    assert final["gold"] == pytest.approx(after.gold_mean)
    assert final["kl"] == pytest.approx(2.0)
    assert final["gap"] == pytest.approx((2.0 - 0.0) - (-2.0 - 0.0))
    assert summary["after"]["aggregates"]["distinct_2"] == pytest.approx(
        after.aggregates()["distinct_2"])
    again = RunSummary.from_json(run)
    assert again.after.completions == after.completions and again.history == history


def test_comparison_report_puts_runs_side_by_side(tmp_path):
    baseline = RunSummary(history=synthetic_history(4.0), config={"beta": 0.0})
    mitigated = {"history": synthetic_history(8.0)[:6], "config": {"beta": 0.1}}
    path = write_comparison_report(tmp_path, {"baseline": baseline, "kl 0.1": mitigated})
    md = path.read_text()
    assert "| baseline |" in md and "| kl 0.1 |" in md
    summary = json.loads((tmp_path / "summary.json").read_text())
    last = synthetic_history(4.0)[-1]
    final = summary["runs"]["baseline"]["final"]
    assert final["proxy"] == pytest.approx(last["proxy"])
    assert final["gap"] == pytest.approx(last["proxy"] - last["gold"])  # both start at 0
    assert summary["runs"]["kl 0.1"]["final"]["length"] == 15
    assert {"reward_vs_kl.png", "length.png", "kl_coef.png"} <= set(summary["plots"])
    assert (tmp_path / "report.html").exists()


def test_markdown_to_html_escapes_and_keeps_pipes_inside_cells():
    html = markdown_to_html("# T <x>\n\n| a | b |\n|---|---|\n| 1 \\| 2 | `c` |\n", "T")
    assert "<h1>T &lt;x&gt;</h1>" in html
    assert "<td>1 | 2</td><td><code>c</code></td>" in html
