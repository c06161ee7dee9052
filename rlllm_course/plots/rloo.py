"""Pictures of module 07: gradient noise per baseline, training curves of RLOO and the moving average,
and the same curves against the number of sampled completions (equal sample budget)."""

import matplotlib.ticker
import numpy as np

from .common import moving_average

LABELS = {"none": "no baseline", "moving_average": "moving average", "rloo": "leave-one-out (RLOO)"}
COLORS = {"none": "tab:gray", "moving_average": "tab:orange", "rloo": "tab:blue"}


def variance_bars(ax, studies, estimators=("none", "moving_average", "rloo")):
    """Grouped bars of tr Cov[g], one group per policy. studies: {policy label: gradient_variance result}."""
    width = 0.8 / len(estimators)
    x = np.arange(len(studies))
    for j, name in enumerate(estimators):
        heights = [study[name]["variance"] for study in studies.values()]
        bars = ax.bar(x + (j - (len(estimators) - 1) / 2) * width, heights, width, color=COLORS[name],
                      label=LABELS[name])
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_xticks(x, list(studies))
    ax.set_yscale("log")  # the policies differ by more than a factor 10
    ax.set_ylim(1, 3 * max(study[n]["variance"] for study in studies.values() for n in estimators))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_ylabel(r"tr Cov[$\hat g$] (summed over parameters, log scale)")
    ax.legend(fontsize=8, loc="upper left")


def projection_strip(ax, study, estimators=("none", "moving_average", "rloo"), seed=0):
    """Each batch's gradient estimate projected on the direction u: one dot per batch, mean as a bar."""
    rng = np.random.default_rng(seed)
    for j, name in enumerate(estimators):
        values = np.asarray(study[name]["projection"], dtype=np.float64)
        ax.scatter(j + rng.uniform(-0.15, 0.15, len(values)), values, s=14, alpha=0.6, color=COLORS[name])
        ax.hlines(values.mean(), j - 0.3, j + 0.3, color="black", linewidth=2)
    ax.set_xticks(range(len(estimators)), [LABELS[n] for n in estimators], fontsize=8)
    ax.set_ylabel(r"$\langle \hat g_k, u \rangle$ per batch")


def training_curves(axes, histories, start=None, key_batch="reward", key_eval="eval/pass@1", window=5):
    """Left: the batch's mean reward (smoothed, raw faint); right: held-out greedy pass@1.

    histories: {estimator name: history list of train_grpo}; start: the initial
    model's held-out pass@1, drawn at step 0 of every curve.
    """
    ax1, ax2 = axes
    for name, history in histories.items():
        steps = np.array([h["step"] + 1 for h in history])
        values = np.array([h[key_batch] for h in history])
        ax1.plot(steps, moving_average(values, window), color=COLORS[name], label=LABELS[name])
        ax1.plot(steps, values, color=COLORS[name], alpha=0.25, linewidth=0.8)
        evals = [(0, start)] if start is not None else []
        evals += [(h["step"] + 1, h[key_eval]) for h in history if key_eval in h]
        if evals:
            ax2.plot(*zip(*evals), marker="o", color=COLORS[name], label=LABELS[name])
    ax1.set_xlabel("step"), ax1.set_ylabel("mean reward of the batch (accuracy + format)")
    ax2.set_xlabel("step"), ax2.set_ylabel("held-out greedy pass@1")
    ax2.set_ylim(-0.02, 1.02)
    ax1.legend(fontsize=8), ax2.legend(fontsize=8)


def baseline_trace(ax, history, window=5):
    """The moving-average baseline b_k next to the batch's mean reward, step by step."""
    steps = np.array([h["step"] + 1 for h in history])
    rewards = np.array([h["reward"] for h in history])
    ax.plot(steps, rewards, color=COLORS["moving_average"], alpha=0.35, label="mean reward of the batch")
    ax.plot(steps, [h["baseline"] for h in history], color="black", label="baseline $b_k$ after the step")
    ax.set_xlabel("step"), ax.set_ylabel("reward")
    ax.legend(fontsize=8)


def budget_curves(axes, runs, start=None, n_eval=None, window=5, key_eval="eval/pass@1"):
    """Training runs against the number of completions sampled, with their noise.

    runs: {label: (history, completions_per_step, style)}, style a dict of plot
    keywords (color, linestyle). Left: the batch reward over the last `window`
    steps' samples, ±1 standard error shaded (sampling noise of that window);
    right: held-out greedy pass@1 with ±1 binomial standard error bars when
    `n_eval` (the number of held-out problems) is given; `start` is the initial
    model's pass@1, drawn at 0 completions.
    """
    ax1, ax2 = axes
    for label, (history, per_step, style) in runs.items():
        x = np.array([(h["step"] + 1) * per_step for h in history])
        mean, se = [], []
        for i in range(len(history)):
            pooled = np.concatenate([np.asarray(h["rewards"], dtype=np.float64)
                                     for h in history[max(0, i + 1 - window):i + 1]])
            mean.append(pooled.mean())
            se.append(pooled.std(ddof=1) / np.sqrt(len(pooled)) if len(pooled) > 1 else 0.0)
        mean, se = np.array(mean), np.array(se)
        ax1.plot(x, mean, label=label, **style)
        ax1.fill_between(x, mean - se, mean + se, alpha=0.2, color=style.get("color"))
        evals = [(0, start)] if start is not None else []
        evals += [((h["step"] + 1) * per_step, h[key_eval]) for h in history if key_eval in h]
        if evals:
            ex, ey = np.array(evals, dtype=np.float64).T
            err = np.sqrt(ey * (1 - ey) / n_eval) if n_eval else None
            ax2.errorbar(ex, ey, yerr=err, marker="o", markersize=4, capsize=2, label=label, **style)
    ax1.set_xlabel("completions sampled"), ax1.set_ylabel(f"batch reward, last {window} steps (±1 s.e.)")
    ax2.set_xlabel("completions sampled"), ax2.set_ylabel("held-out greedy pass@1 (±1 s.e.)")
    ax2.set_ylim(-0.02, 1.02)
    ax1.legend(fontsize=8), ax2.legend(fontsize=8)
