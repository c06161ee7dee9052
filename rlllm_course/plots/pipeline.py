"""Pictures of the R1 pipeline module (10): the pipeline itself, the shipped models side by
side, what SFT does to the log-probability of responses it was not shown, runs over seeds,
why rejection sampling drops a sample, and distillation against RL on a small student.

A *figures* dict below is ``reasoning.evaluate.evaluate_levels``' result or a ``run.json``'s
``eval``: {"overall": {...}, "levels": {level: {...}}} with ``pass@1``, ``sample_accuracy``,
``mixed``, ... (level keys may be ints or strings).
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .reasoning import grouped_bars

STAGES = ("base model", "cold start\n(SFT on readable CoTs)", "reasoning RL\n(+ consistency reward)",
          "rejection sampling\n(keep right, readable)", "SFT of the base\n(on the kept samples)",
          "RL for all scenarios")
METRIC_TITLES = {"pass@1": "greedy pass@1", "pass@1/level_5": "greedy pass@1, 5 digits",
                 "sample_accuracy": "accuracy of a sample", "mixed": "samples with a mixed CoT",
                 "sample_length": "sampled length (tokens)", "reflection": "samples that re-check"}


def _box(ax, x, y, text, color, dashed=False, width=1.7, height=0.75):
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.05",
                                facecolor=color, edgecolor="0.3", linestyle="--" if dashed else "-", alpha=0.9))
    ax.text(x, y, text, ha="center", va="center", fontsize=8, color="0.45" if dashed else "black")


def _arrow(ax, start, end, dashed=False):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="0.3",
                                 linestyle="--" if dashed else "-", shrinkA=0, shrinkB=0))


def pipeline_diagram(stages=STAGES, student="distillation:\nSFT of a small student"):
    """R1's pipeline as boxes and arrows; the last stage dashed (not run here), distillation below.

    stages: the box labels in order (at least two); the sampled data of the next-to-last
    box also feeds the `student` box.
    """
    if len(stages) < 2:
        raise ValueError(f"stages must hold at least two labels, got {len(stages)}")
    n = len(stages)
    fig, ax = plt.subplots(figsize=(2.1 * n, 2.9))
    xs = 2.0 * np.arange(n)
    colors = ["0.9", "C0", "C3", "C2", "C1", "0.95"]
    for i, (x, label) in enumerate(zip(xs, stages)):
        _box(ax, x, 1.0, label, colors[i % len(colors)] if i < n - 1 else "0.97", dashed=i == n - 1)
        if i:
            _arrow(ax, (xs[i - 1] + 0.9, 1.0), (x - 0.9, 1.0), dashed=i == n - 1)
    src = xs[-3] if n >= 3 else xs[0]  # the rejection-sampled data
    _box(ax, xs[-2], -0.2, student, "C4")
    _arrow(ax, (src, 0.6), (xs[-2] - 0.9, -0.2))
    ax.text(src - 0.1, 0.1, "the same samples", fontsize=7, ha="right", color="0.3")
    ax.set(xlim=(xs[0] - 1.1, xs[-1] + 1.1), ylim=(-0.8, 1.6))
    ax.axis("off")
    ax.set_title("DeepSeek-R1's pipeline (dashed: not run in this notebook)", fontsize=10)
    fig.tight_layout()
    return fig


def model_summary(rows, metrics=("pass@1", "pass@1/level_5", "sample_accuracy", "mixed", "sample_length")):
    """One panel per metric, one horizontal bar per model.

    rows: list of (label, {metric: value}); a missing metric draws no bar.
    """
    if not rows:
        raise ValueError("rows must hold at least one (label, figures) pair")
    labels = [label for label, _ in rows]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics) + 1.5, 0.35 * len(rows) + 1.4),
                             sharey=True, squeeze=False)
    y = np.arange(len(rows))
    for ax, metric in zip(axes[0], metrics):
        values = np.array([figures.get(metric, np.nan) for _, figures in rows], dtype=float)
        ax.barh(y, np.nan_to_num(values), color=[f"C{i % 10}" for i in range(len(rows))])
        for yi, v in zip(y, values):
            if np.isfinite(v):
                ax.text(v, yi, f" {v:.0%}" if metric != "sample_length" else f" {v:.0f}", va="center", fontsize=7)
        ax.set_title(METRIC_TITLES.get(metric, metric), fontsize=9)
        if metric != "sample_length":
            ax.set_xlim(0, 1.25)
        else:
            ax.set_xlim(0, 1.25 * max(1.0, np.nanmax(np.append(values, 1.0))))
        ax.grid(alpha=0.3, axis="x")
    axes[0][0].set_yticks(y, labels, fontsize=8)
    axes[0][0].invert_yaxis()
    fig.tight_layout()
    return fig


def logprob_shift(groups):
    """Paired dots: log pi of each response before and after SFT, one column pair per group.

    groups: {label: (before, after)} with two equal-length sequences of log-probabilities.
    Returns the figure; the mean change of each group is written above it.
    """
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    for j, (label, (before, after)) in enumerate(groups.items()):
        before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
        if before.shape != after.shape:
            raise ValueError(f"{label}: before and after must have the same shape, got {before.shape}, {after.shape}")
        x0, x1 = 2 * j, 2 * j + 1
        for b, a in zip(before, after):
            ax1.plot([x0, x1], [b, a], color=f"C{j}", alpha=0.35, lw=0.8)
        ax1.scatter(np.full(len(before), x0), before, s=8, color=f"C{j}")
        ax1.scatter(np.full(len(after), x1), after, s=8, color=f"C{j}")
        delta = after - before
        parts = ax2.violinplot([delta], positions=[j], showmeans=True, widths=0.7) if len(delta) > 1 else None
        if parts is not None:
            for body in parts["bodies"]:
                body.set_facecolor(f"C{j}")
            for key in ("cbars", "cmins", "cmaxes", "cmeans"):
                parts[key].set_color(f"C{j}")
        ax2.scatter(np.full(len(delta), j), delta, s=6, color=f"C{j}", alpha=0.6)
    names = list(groups)
    ax1.set_xticks([2 * j + 0.5 for j in range(len(names))], [f"{n}\nbefore → after" for n in names], fontsize=8)
    ax1.set(ylabel="log π(response | prompt)", title="Each response's log-probability, before and after SFT")
    ax2.axhline(0, color="0.3", lw=0.8)
    ax2.set_xticks(range(len(names)), names, fontsize=8)
    ax2.set(ylabel="change of log π", title="The change per response (mean marked)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def _level_value(figures, level, metric):
    levels = figures["levels"]
    f = levels.get(level, levels.get(str(level)))
    return np.nan if f is None else f.get(metric, np.nan)


def level_comparison(figures, metrics=("pass@1", "sample_accuracy", "mixed"), title=""):
    """One panel per metric, grouped bars per level, one bar per model.

    figures: {label: figures dict}; the levels are those of the first model.
    """
    if not figures:
        raise ValueError("figures must hold at least one model")
    levels = sorted(int(d) for d in next(iter(figures.values()))["levels"])
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        grouped_bars(ax, [f"{d} digits" for d in levels],
                      {label: [_level_value(f, d, metric) for d in levels] for label, f in figures.items()})
        top = max([_level_value(f, d, metric) for f in figures.values() for d in levels] + [0.0])
        ax.set(ylim=(0, 1.4 if metric != "mixed" else max(0.1, 1.6 * top)),
               title=f"{title}{METRIC_TITLES.get(metric, metric)}")
        ax.legend(fontsize=7, loc="upper center", ncol=min(3, len(figures)))  # above the bars
    fig.tight_layout()
    return fig


def seed_curves(runs, keys=("pass@1", "pass@1/level_5"), x="step"):
    """Held-out curves of several runs over seeds: a thin line per seed, a thick mean.

    runs: {label: {seed: [point, ...]}} where a point is a dict with `x` and each key
    (``load_figures("seeds")``'s lists). One panel per key, one colour per run.
    """
    fig, axes = plt.subplots(1, len(keys), figsize=(6.5 * len(keys), 3.8), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for r, (label, seeds) in enumerate(runs.items()):
            curves = []
            for seed, points in sorted(seeds.items()):
                xs, ys = [p[x] for p in points], [p[key] for p in points]
                ax.plot(xs, ys, color=f"C{r}", alpha=0.35, lw=1, marker="o", ms=2)
                curves.append((xs, ys))
            common = min(len(c[0]) for c in curves)  # seeds share their evaluation steps
            mean = np.mean([c[1][:common] for c in curves], axis=0)
            ax.plot(curves[0][0][:common], mean, color=f"C{r}", lw=2.5, label=f"{label} (mean of {len(curves)})")
        ax.set(xlabel="GRPO step" if x == "step" else x, ylabel="held-out greedy pass@1", ylim=(-0.03, 1.03),
               title=METRIC_TITLES.get(key, key))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def rejection_reasons(levels, reasons, order=("kept", "mixed", "wrong", "malformed")):
    """Stacked bars per level: the share of samples kept and of each reason for rejecting one.

    levels: (N,) level of each sample; reasons: (N,) one label of `order` per sample.
    """
    levels, reasons = np.asarray(levels), np.asarray(reasons)
    if levels.shape != reasons.shape:
        raise ValueError(f"levels and reasons must have the same shape, got {levels.shape} and {reasons.shape}")
    unknown = set(reasons.tolist()) - set(order)
    if unknown:
        raise ValueError(f"reasons must be among {order}, got {sorted(unknown)}")
    ds = sorted(set(levels.tolist()))
    colors = {"kept": "C2", "mixed": "C1", "wrong": "C3", "malformed": "C7"}
    fig, ax = plt.subplots(figsize=(8, 3.6))
    bottom = np.zeros(len(ds))
    for i, reason in enumerate(order):
        share = np.array([(reasons[levels == d] == reason).mean() for d in ds])
        ax.bar([f"{d} digits" for d in ds], share, bottom=bottom, label=reason, color=colors.get(reason, f"C{i}"))
        for x, (b, s) in enumerate(zip(bottom, share)):
            if s >= 0.04:
                ax.text(x, b + s / 2, f"{s:.0%}", ha="center", va="center", fontsize=7)
        bottom += share
    ax.set(ylim=(0, 1), ylabel="share of the teacher's samples", title="Rejection sampling: kept, or why not")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def distillation_comparison(per_seed, metric="pass@1", arms=(("rl", "RL on the student"),
                                                            ("distilled", "distilled into the student"))):
    """Per level and overall: the mean over seeds of each arm as a bar, every seed as a dot.

    per_seed: {seed: {arm: figures dict}} (``load_figures("distillation")``); arms: (key, label) pairs.
    """
    seeds = sorted(per_seed)
    if not seeds:
        raise ValueError("per_seed must hold at least one seed")
    levels = sorted(int(d) for d in per_seed[seeds[0]][arms[0][0]]["levels"])
    groups = [f"{d} digits" for d in levels] + ["overall"]
    fig, ax = plt.subplots(figsize=(9, 3.8))
    width = 0.8 / len(arms)
    for a, (key, label) in enumerate(arms):
        values = np.array([[_level_value(per_seed[s][key], d, metric) for d in levels]
                           + [per_seed[s][key]["overall"][metric]] for s in seeds])  # (seeds, groups)
        x = np.arange(len(groups)) + (a - (len(arms) - 1) / 2) * width
        ax.bar(x, values.mean(0), width, color=f"C{a}", alpha=0.7, label=f"{label} (mean of {len(seeds)} seeds)")
        for row in values:
            ax.scatter(x, row, color="black", s=8, zorder=3)
        for xi, v in zip(x, values.mean(0)):
            ax.text(xi, v + 0.02, f"{v:.0%}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set(ylim=(0, 1.15), ylabel=f"held-out {METRIC_TITLES.get(metric, metric)}",
           title="The small student: distillation vs RL for the same wall time (dots: seeds)")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig
