"""Pictures of the R1-Zero module (09): the run at a glance, per-level curves, the forms
of the chain of thought, the base per level, re-checks before and after, language mixing,
and where two accuracy checkers disagree.

``curves`` below is ``reasoning.r1_zero.training_curves``'s dict of per-step lists;
``history`` is ``train_grpo``'s log (held-out figures under ``eval/...`` at evaluation steps).
"""

import matplotlib.pyplot as plt
import numpy as np

from .common import moving_average

LINESTYLES = ("-", "--", ":", "-.")


def curve_levels(curves):
    """The levels present in `curves` (from its ``accuracy/level_d`` keys), sorted."""
    return sorted(int(k.rsplit("_", 1)[1]) for k in curves if k.startswith("accuracy/level_"))


def eval_points(history, key):
    """(steps, values) of a held-out metric logged at evaluation steps; steps count updates."""
    rows = [(h["step"] + 1, h[key]) for h in history if key in h]
    return (np.array([s for s, _ in rows]), np.array([v for _, v in rows])) if rows else (None, None)


def _smooth(values, window):
    values = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(values)  # a level absent from a step's batch gives NaN there
    if not keep.any():
        return values
    filled = np.interp(np.arange(len(values)), np.flatnonzero(keep), values[keep])
    return moving_average(filled, window)


def run_overview(runs, window=5):
    """Three panels for one or more runs: pass@1 per level, sampled length, reflection rate.

    runs: list of (label, history, curves). pass@1 is the held-out greedy
    ``eval/pass@1/level_d`` where the history has it, otherwise the accuracy of the
    training samples per level (a `window`-step mean). Runs differ by line style,
    levels by colour.
    """
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for r, (label, history, curves) in enumerate(runs):
        ls = LINESTYLES[r % len(LINESTYLES)]
        steps = np.array(curves["step"]) + 1
        for j, d in enumerate(curve_levels(curves)):
            x, y = eval_points(history, f"eval/pass@1/level_{d}")
            if x is not None:
                axes[0].plot(x, y, ls, marker="o", ms=3, color=f"C{j}", label=f"{label}: {d} digits")
            else:
                axes[0].plot(steps, _smooth(curves[f"accuracy/level_{d}"], window), ls, color=f"C{j}",
                             label=f"{label}: {d} digits (samples)")
        axes[1].plot(steps, _smooth(curves["length"], window), ls, color="C4", label=label)
        axes[2].plot(steps, _smooth(curves["reflection"], window), ls, color="C3", label=label)
    axes[0].set(title="pass@1 per level (held out, greedy)", ylabel="accuracy", ylim=(-0.03, 1.03))
    axes[1].set(title=f"Sampled response length ({window}-step mean)", ylabel="tokens", ylim=(0, None))
    axes[2].set(title=f"Samples that re-check (\"wait\", {window}-step mean)", ylabel="share",
                ylim=(-0.03, 1.03))
    for ax in axes:
        ax.set_xlabel("GRPO step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def level_panels(curves, metrics=("accuracy", "length", "reflection"), window=5):
    """One panel per metric of the training samples, one line per level (`window`-step means)."""
    titles = {"accuracy": "accuracy of the samples", "length": "length (tokens)",
              "reflection": "share that re-checks"}
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    steps = np.array(curves["step"]) + 1
    for ax, metric in zip(axes[0], metrics):
        for j, d in enumerate(curve_levels(curves)):
            ax.plot(steps, _smooth(curves[f"{metric}/level_{d}"], window), color=f"C{j}", label=f"{d} digits")
        ax.set(title=titles.get(metric, metric), xlabel="GRPO step")
        if metric != "length":
            ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def form_shares(curves, forms, window=5):
    """Stacked area: the share of each CoT form (``curves["form/<f>"]``) over steps."""
    steps = np.array(curves["step"]) + 1
    fig, ax = plt.subplots(figsize=(8, 3.6))
    colors = {"none": "C7", "guess": "C0", "recheck": "C3", "other": "C8"}
    ax.stackplot(steps, *[_smooth(curves[f"form/{f}"], window) for f in forms], labels=list(forms),
                 colors=[colors.get(f, f"C{i}") for i, f in enumerate(forms)], alpha=0.85)
    ax.set(xlabel="GRPO step", ylabel="share of the samples", ylim=(0, 1), xlim=(steps[0], steps[-1]),
           title=f"Forms of the chain of thought ({window}-step mean)")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def grouped_bars(ax, groups, series, fmt="{:.0%}"):
    """Bars of series {name: [value per group]} side by side for each group label."""
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        x = np.arange(len(groups)) + (i - (len(series) - 1) / 2) * width
        ax.bar(x, values, width, label=name, color=f"C{i}")
        for xi, v in zip(x, values):
            if np.isfinite(v):
                ax.text(xi, v, fmt.format(v), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")


def level_figures(figures, k=8, title="Base model"):
    """Two panels from ``evaluate_levels``' result: rates per level, and lengths per level."""
    levels = sorted(figures["levels"])
    per = [figures["levels"][d] for d in levels]
    groups = [f"{d} digits" for d in levels]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 3.8), gridspec_kw={"width_ratios": [2, 1]})
    grouped_bars(ax1, groups, {"greedy pass@1": [f["pass@1"] for f in per],
                                f"pass@{k} (samples)": [f[f"pass@{k}"] for f in per],
                                "accuracy of a sample": [f["sample_accuracy"] for f in per],
                                "samples that re-check": [f["reflection"] for f in per]})
    ax1.set(ylim=(0, 1.15), ylabel="rate", title=f"{title}: accuracy and re-checks per level")
    grouped_bars(ax2, groups, {"greedy": [f["length"] for f in per],
                                "sampled": [f["sample_length"] for f in per]}, fmt="{:.1f}")
    ax2.set(ylabel="tokens", title="Response length")
    fig.tight_layout()
    return fig


def recheck_profiles(profiles, forms):
    """Left: the share of each CoT form; right: accuracy with and without a re-check.

    profiles: {label: ``reflection_study.recheck_profile`` result}, e.g. base and trained.
    """
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 3.8))
    labels = list(profiles)
    grouped_bars(ax1, list(forms), {lb: [profiles[lb]["forms"][f] for f in forms] for lb in labels})
    ax1.set(ylim=(0, 1.15), ylabel="share of the samples", title="Forms of the chain of thought")
    grouped_bars(ax2, ["with a re-check", "without"],
                  {lb: [profiles[lb]["accuracy_recheck"], profiles[lb]["accuracy_other"]] for lb in labels})
    ax2.set(ylim=(0, 1.15), ylabel="accuracy", title="What a re-check buys")
    fig.tight_layout()
    return fig


def consistency_comparison(runs, finals, window=5):
    """Left: share of mixed-notation CoTs over steps per run; right: final pass@1 per level.

    runs: list of (label, curves); finals: {label: {level: pass@1}} (held out).
    """
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 3.8))
    for r, (label, curves) in enumerate(runs):
        ax1.plot(np.array(curves["step"]) + 1, _smooth(curves["mixed"], window), color=f"C{r}", label=label)
    ax1.set(xlabel="GRPO step", ylabel="share of the samples", ylim=(-0.02, None),
            title=f"CoTs that mix notations ({window}-step mean)")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    levels = sorted({d for f in finals.values() for d in f})
    grouped_bars(ax2, [f"{d} digits" for d in levels],
                  {label: [f.get(d, np.nan) for d in levels] for label, f in finals.items()})
    ax2.set(ylim=(0, 1.15), ylabel="greedy pass@1 (held out)", title="Accuracy after training")
    fig.tight_layout()
    return fig


def checker_disagreement(levels, strict, naive):
    """Per level: the share of samples paid by each checker (strict vs substring).

    levels: (N,) level of each sample; strict, naive: (N,) 0/1 rewards of the two checkers.
    """
    levels, strict, naive = map(np.asarray, (levels, strict, naive))
    if not levels.shape == strict.shape == naive.shape:
        raise ValueError(f"levels, strict and naive must have the same shape, got "
                         f"{levels.shape}, {strict.shape}, {naive.shape}")
    ds = sorted(set(levels.tolist()))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    grouped_bars(ax, [f"{d} digits" for d in ds],
                  {"strict (last answer block, whole)": [strict[levels == d].mean() for d in ds],
                   "substring (answer anywhere)": [naive[levels == d].mean() for d in ds]})
    ax.set(ylim=(0, 1.15), ylabel="share of the samples paid", title="Two accuracy checkers on the same samples")
    fig.tight_layout()
    return fig
