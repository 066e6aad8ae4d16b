import json
import math

import numpy as np
import pytest
from rlhf_gym.evaluation.frontier import (
    at_kl,
    band,
    common_grid,
    first_crossing,
    frontier,
    frontier_section,
    gold_gain,
    peak,
    seed_figures,
    spread,
    sqrt_kl_curve,
)
from rlhf_gym.evaluation.report import markdown_to_html


def record(kl: float, gold: float, proxy: float, step: int = 0, **more: float) -> dict:
    return {"step": step, "kl": kl, "gold": gold, "proxy": proxy, **more}


def curve(kls: list[float], golds: list[float], proxies: list[float] | None = None) -> list[dict]:
    proxies = proxies or [2 * g for g in golds]
    return [record(k, g, p, step=i, gold_std=0.5, seconds=10.0 * i)
            for i, (k, g, p) in enumerate(zip(kls, golds, proxies, strict=True))]  # fmt: skip


def test_sqrt_kl_curve_skips_incomplete_records_and_counts_negative_kl_as_zero():
    history = [record(-0.01, 1.0, 0.0), {"kl": 4.0, "proxy": 1.0}, record(9.0, 3.0, 2.0)]
    x, y = sqrt_kl_curve(history, "gold")
    assert x.tolist() == [0.0, 3.0] and y.tolist() == [1.0, 3.0]


def test_first_crossing_interpolates_and_never_extrapolates():
    x, y = np.array([0.0, 1.0, 2.0]), np.array([0.0, 10.0, 0.0])
    got = first_crossing(x, y, np.array([0.0, 0.5, 1.5, 2.0, 2.5]))
    assert got[:4].tolist() == [0.0, 5.0, 5.0, 0.0]
    assert math.isnan(got[4])  # past the largest KL the seed reached
    assert math.isnan(first_crossing(np.array([1.0, 2.0]), np.array([1.0, 2.0]),
                                     np.array([0.5]))[0])  # below the first record  # fmt: skip


def test_first_crossing_takes_the_first_visit_when_the_kl_comes_back():
    # √KL goes 0 -> 2 -> 1 -> 3: 1.5 is read on the way up (0 -> 2), not on the way back;
    # 2.5 is first reached on the last segment, 1 -> 3 (-10 -> 6)
    x, y = np.array([0.0, 2.0, 1.0, 3.0]), np.array([0.0, 4.0, -10.0, 6.0])
    assert first_crossing(x, y, np.array([1.5, 2.5])).tolist() == [3.0, 2.0]


def test_band_needs_every_seed():
    values = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, np.nan]])
    b = band(values)
    assert b.mean[:2].tolist() == [2.0, 3.0] and b.low[:2].tolist() == [1.0, 2.0]
    assert b.high[:2].tolist() == [3.0, 4.0]
    assert math.isnan(b.mean[2]) and math.isnan(b.low[2]) and math.isnan(b.high[2])


def test_gold_at_equal_kl_is_blank_where_one_seed_never_got_there():
    far = curve([0.0, 1.0, 4.0, 9.0], [0.0, 1.0, 2.0, 3.0])  # √KL 0, 1, 2, 3: gold = √KL
    near = curve([0.0, 1.0, 4.0], [0.0, 0.5, 1.0])  # stops at KL 4; gold = √KL / 2
    got = at_kl([far, near], [1.0, 2.25, 4.0, 6.0])
    assert got[:3] == pytest.approx([0.75, 1.125, 1.5])
    assert got[3] is None  # `near` never reached KL 6
    assert at_kl([far], [6.0]) == [pytest.approx(math.sqrt(6.0))]


def test_frontier_line_stops_where_the_shortest_seed_stops_and_peak_is_marked():
    rise_fall = curve([0.0, 1.0, 4.0, 9.0, 16.0], [0.0, 2.0, 3.0, 1.0, -1.0])  # peak at √KL 2
    shorter = curve([0.0, 1.0, 4.0, 9.0], [0.0, 1.0, 2.0, 0.0])
    runs = {"ppo": [rise_fall, shorter]}
    grid = common_grid(runs, points=9)  # 0, 0.5, ..., 4: every record's √KL is among them
    assert grid.tolist() == [0.5 * i for i in range(9)]
    front = frontier(runs["ppo"], grid)
    gold = front.bands["gold"]
    assert np.isfinite(gold.mean[:7]).all() and np.isnan(gold.mean[7:]).all()  # √KL > 3: gone
    assert gold.mean[4] == pytest.approx(2.5) and gold.low[4] == 2.0 and gold.high[4] == 3.0
    assert peak(front) == (2.0, pytest.approx(2.5))
    assert front.bands["proxy"].mean[4] == pytest.approx(5.0) and front.seeds == 2


def test_grid_holds_every_record_so_no_curve_loses_its_end():
    runs = {"a": [curve([0.0, 0.49, 1.0], [0.0, 1.0, 2.0])], "b": [curve([0.0, 0.3], [0.0, 5.0])]}
    grid = common_grid(runs, points=3)  # 0, 0.5, 1 and the records' √KL 0.7 and √0.3
    assert grid.tolist() == pytest.approx([0.0, 0.5, math.sqrt(0.3), 0.7, 1.0])
    b = frontier(runs["b"], grid)
    assert b.bands["gold"].mean[2] == 5.0 and math.isnan(b.bands["gold"].mean[3])  # b ends there
    assert peak(b) == (pytest.approx(math.sqrt(0.3)), 5.0)


def test_peak_is_none_without_gold():
    history = [{"kl": 0.0, "proxy": 0.0}, {"kl": 1.0, "proxy": 1.0}]
    front = frontier([history], np.array([0.0, 1.0]))
    assert peak(front) is None and front.bands["proxy"].mean.tolist() == [0.0, 1.0]


def test_seed_figures_by_hand():
    history = curve([0.0, 2.0, 5.0, 8.0], [-1.0, 0.5, 1.0, 0.0], [0.0, 1.0, 2.0, 4.0])
    figures = seed_figures(history)
    assert figures["end_gold"] == 0.0 and figures["peak_gold"] == 1.0 and figures["end_kl"] == 8.0
    assert figures["end_gap"] == pytest.approx((4.0 - 0.0) - (0.0 - -1.0))
    assert figures["gain_std"] == pytest.approx((1.0 - -1.0) / 0.5)  # best at KL <= 6: 1.0
    assert figures["train_s"] == 30.0
    assert gold_gain(history, max_kl=3.0) == pytest.approx(3.0)  # only KL 0 and 2 count
    assert gold_gain([{"kl": 0.0, "gold": 1.0}]) is None  # no start std, no unit


def test_spread_skips_missing_seeds():
    s = spread([1.0, None, 3.0, float("nan")])
    assert (s.mean, s.low, s.high, s.n) == (2.0, 1.0, 3.0, 2)
    assert s.text() == "2 (1…3)" and spread([None]) is None and spread([0.25]).text() == "0.25"


def test_bad_histories_are_refused_by_name():
    with pytest.raises(ValueError, match=r"'dpo', seed 1: no record has a finite 'kl'"):
        common_grid({"dpo": [curve([0.0], [0.0]), [{"gold": 1.0}]]})
    with pytest.raises(ValueError, match="'grpo' has no seed histories"):
        common_grid({"grpo": []})


def test_frontier_section_writes_the_plot_and_tables(tmp_path):
    runs = {
        "ppo": [curve([0.0, 1.0, 4.0, 9.0], [0.0, 1.0, 2.0, 1.5]),
                curve([0.0, 2.0, 5.0, 7.0], [0.0, 1.2, 1.8, 1.0])],
        "dpo": [curve([0.0, 0.5, 1.5], [0.0, 0.3, 0.6]), curve([0.0, 0.8, 1.2], [0.0, 0.2, 0.4])],
    }  # fmt: skip
    extra = {"ppo": [{"rss_mb": 500.0}, {"rss_mb": 520.0}], "dpo": [{"rss_mb": 400.0}] * 2}
    section = frontier_section(runs, tmp_path, extra=extra, extra_columns=[("rss_mb", "RSS")])
    png = tmp_path / "frontier.png"
    assert section.plots == {"frontier.png": png} and png.read_bytes()[:4] == b"\x89PNG"
    md = "\n".join(section.markdown)
    assert "![frontier.png](frontier.png)" in md
    gold_at, figures = md.split("## Per-run figures")
    rows = {line.split("|")[1].strip(): line for line in gold_at.splitlines() if line[:2] == "| "}
    # dpo's seeds stop at KL 1.5 and 1.2: KL 1 only; ppo reaches KL 6 with both seeds
    assert rows["dpo"].count("n/a") == 3 and "n/a" not in rows["ppo"]
    assert "| RSS |" in figures and "510 (500…520)" in figures
    summary = section.summary
    assert summary["gold_at_kl"]["kl"] == [1.0, 2.0, 4.0, 6.0]
    assert (
        summary["gold_at_kl"]["dpo"][1:] == [None] * 3 and None not in summary["gold_at_kl"]["ppo"]
    )
    assert summary["per_seed"]["ppo"][1]["end_kl"] == 7.0
    json.dumps(summary)  # JSON-able as written by write_files
    assert '<img src="frontier.png"' in markdown_to_html(md, "t")
    with pytest.raises(ValueError, match="extra figures of 'dpo'"):
        frontier_section(runs, tmp_path, extra={"dpo": [{"rss_mb": 1.0}]})
