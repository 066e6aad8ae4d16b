"""The RLHF run report: report.md, report.html, PNG plots and summary.json in one folder.

``write_report`` documents one run (training curves, before/after evaluation with sample
completions, reward-model accuracy against the Bayes ceiling); ``write_comparison_report``
puts several runs (a baseline and its mitigations) side by side. summary.json holds every
number the report shows, so a later comparison can load a run back with
:meth:`RunSummary.from_json`.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf_gym.evaluation.held_out import EvalResult
from rlhf_gym.evaluation.plots import plot_calibration, write_plots

NUM_SAMPLE_PROMPTS = 5


@dataclass
class RunSummary:
    """What a comparison needs from one run.

    Attributes:
        history: per-iteration records (see :mod:`rlhf_gym.evaluation.plots`).
        after: the final held-out evaluation, if any (preferred over the last history record).
        before: the evaluation of the starting policy, if any (the reference for gains).
        config: the run's settings, shown in the report.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    after: EvalResult | None = None
    before: EvalResult | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, path: str | Path) -> RunSummary:
        """Load the summary.json that :func:`write_report` wrote (a file or its folder)."""
        path = Path(path)
        data = json.loads((path / "summary.json" if path.is_dir() else path).read_text())
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        """Accept summary.json's layout; ``before``/``after`` may be EvalResults or dicts."""
        def result(value: Any) -> EvalResult | None:
            return EvalResult.from_dict(value) if isinstance(value, Mapping) else value

        return cls(history=list(data.get("history", [])), after=result(data.get("after")),
                   before=result(data.get("before")), config=dict(data.get("config", {})))

    def final(self) -> dict[str, float | None]:
        """Final proxy, gold, KL, length and distinct-2, and the proxy-minus-gold gain gap.

        ``gap`` is (final − start proxy) − (final − start gold) in raw units, the start being
        ``before`` or else the first history record; None when either gain is unknown.
        """
        last = self.history[-1] if self.history else {}
        first = self.history[0] if self.history else {}

        def pick(result: EvalResult | None, record: Mapping[str, Any]) -> dict[str, Any]:
            if result is not None:
                agg = result.aggregates()
                return {"proxy": agg["reward_mean"], "gold": agg["gold_mean"],
                        "kl": agg["kl_mean"], "length": agg["length_mean"],
                        "distinct_2": agg["distinct_2"]}
            return {"proxy": record.get("proxy"), "gold": record.get("gold"),
                    "kl": record.get("kl"), "length": record.get("response_length"),
                    "distinct_2": record.get("distinct_2")}

        end, start = pick(self.after, last), pick(self.before, first)
        gains = [end[k] - start[k] if end[k] is not None and start[k] is not None else None
                 for k in ("proxy", "gold")]
        end["gap"] = None if None in gains else gains[0] - gains[1]
        return end


def _clean(value: Any) -> Any:
    """JSON-safe copy: EvalResults as dicts, non-finite floats as None."""
    if isinstance(value, EvalResult):
        return _clean(value.to_dict())
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return value


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "n/a"
    return str(value).replace("|", "\\|").replace("\n", " ")


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table (cells formatted, pipes escaped)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _short(text: str, limit: int = 140) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sample_rows(before: EvalResult, after: EvalResult) -> list[list[Any]]:
    """First sample of each of the first prompts both results share."""
    def first_index(result: EvalResult) -> dict[str, int]:
        index: dict[str, int] = {}
        for i, p in enumerate(result.prompts):
            index.setdefault(p, i)
        return index

    b, a = first_index(before), first_index(after)
    rows = []
    for prompt in [p for p in a if p in b][:NUM_SAMPLE_PROMPTS]:
        i, j = b[prompt], a[prompt]
        rows.append([prompt, _short(before.completions[i]), before.scores[i],
                     before.gold[i] if before.gold else None, _short(after.completions[j]),
                     after.scores[j], after.gold[j] if after.gold else None])
    return rows


def plot_section(plots: Mapping[str, Path]) -> list[str]:
    """The report's "Plots" section: one image line per plot file."""
    return ["## Plots", ""] + [f"![{name}]({name})\n" for name in plots]


def write_report(
    run_dir: str | Path,
    *,
    history: list[dict[str, Any]],
    before: EvalResult,
    after: EvalResult,
    rm_accuracy: float | None = None,
    bayes_accuracy: float | None = None,
    calibration: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    title: str = "RLHF run report",
) -> Path:
    """Write report.md, report.html, the PNG plots and summary.json into ``run_dir``.

    Returns:
        The path of report.md.
    """
    run_dir = Path(run_dir)
    plots = write_plots({title: history}, run_dir)
    if calibration is not None:
        plots["calibration.png"] = plot_calibration(calibration, run_dir / "calibration.png")
    run = RunSummary(history=history, after=after, before=before, config=dict(config or {}))
    headroom = None
    if rm_accuracy is not None and bayes_accuracy is not None and bayes_accuracy > 0.5:
        headroom = (rm_accuracy - 0.5) / (bayes_accuracy - 0.5)
    ab, aa = before.aggregates(), after.aggregates()
    md = [f"# {title}", "", "## Before and after (held-out prompts)", "",
          md_table(["metric", "before", "after"], [[k, ab[k], aa[k]] for k in ab]), "",
          "## Sample completions", "",
          md_table(["prompt", "before", "proxy", "gold", "after", "proxy", "gold"],
                   _sample_rows(before, after)), "",
          "## Reward model", "",
          md_table(["RM accuracy", "Bayes ceiling", "fraction of headroom (acc−0.5)/(Bayes−0.5)",
                    "calibration error (ECE)"],
                   [[rm_accuracy, bayes_accuracy, headroom,
                     calibration["ece"] if calibration else None]]), ""]
    md += plot_section(plots)
    md += ["## Config", "", md_table(["setting", "value"], sorted((config or {}).items())), ""]
    summary = {"title": title, "final": run.final(), "rm_accuracy": rm_accuracy,
               "bayes_accuracy": bayes_accuracy, "rm_headroom_fraction": headroom,
               "calibration": calibration,
               "config": dict(config or {}), "plots": sorted(plots), "history": history,
               "before": before, "after": after}
    return write_files(run_dir, "\n".join(md), summary, title)


def write_comparison_report(
    run_dir: str | Path,
    runs: Mapping[str, RunSummary | Mapping[str, Any]],
    *,
    title: str = "RLHF comparison",
) -> Path:
    """Put several runs side by side: a table of final numbers and overlaid plots.

    Args:
        run_dir: where to write report.md, report.html, the PNGs and summary.json.
        runs: run name -> :class:`RunSummary` or a dict in summary.json's layout.
        title: the report's title.

    Returns:
        The path of report.md.
    """
    run_dir = Path(run_dir)
    summaries = {n: r if isinstance(r, RunSummary) else RunSummary.from_dict(r)
                 for n, r in runs.items()}
    finals = {name: s.final() for name, s in summaries.items()}
    plots = write_plots({name: s.history for name, s in summaries.items()}, run_dir)
    columns = ["proxy", "gold", "gap", "kl", "length", "distinct_2"]
    md = [f"# {title}", "", "## Final numbers", "",
          "`gap` = proxy gain − gold gain since the start (raw units): large means the policy "
          "learned what the reward model likes but the gold utility does not.", "",
          md_table(["run", *columns], [[n, *(f[c] for c in columns)] for n, f in finals.items()]),
          ""]
    md += plot_section(plots)
    summary = {"title": title, "runs": {n: {"final": finals[n], "config": s.config,
                                            "history": s.history}
                                        for n, s in summaries.items()},
               "plots": sorted(plots)}
    return write_files(run_dir, "\n".join(md), summary, title)


def write_files(run_dir: Path, markdown: str, summary: Mapping[str, Any], title: str) -> Path:
    """Write summary.json, report.html and report.md (returned) into ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps(_clean(summary), indent=2))
    (run_dir / "report.html").write_text(markdown_to_html(markdown, title))
    path = run_dir / "report.md"
    path.write_text(markdown)
    return path


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def markdown_to_html(markdown: str, title: str) -> str:
    """The small markdown subset the reports use (headings, tables, images, paragraphs)."""
    body: list[str] = []
    table: list[list[str]] = []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            if not all(re.fullmatch(r"-+", c.strip()) for c in cells):
                table.append([c.strip().replace("\\|", "|") for c in cells])
            continue
        if table:
            head, *rows = table
            body.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>"
                                  for r in rows) + "</table>")
            table = []
        if heading := re.match(r"(#{1,3}) (.*)", line):
            level = len(heading.group(1))
            body.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif image := re.fullmatch(r"!\[([^\]]*)\]\(([^)]+)\)", line.strip()):
            alt, src = (html.escape(g, quote=True) for g in image.groups())
            body.append(f'<p><img src="{src}" alt="{alt}"></p>')
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:4px 8px;text-align:left}img{max-width:100%}")
    head = f"<meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style>"
    return f"<!DOCTYPE html>\n<html><head>{head}</head><body>\n" + "\n".join(body) + (
        "\n</body></html>\n")
