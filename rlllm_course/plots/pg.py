"""Pictures for REINFORCE (lecture §2.1-2.2): seeds' learning curves, gradient variance, a Gaussian policy."""

import numpy as np

from .common import learning_curve


def seed_curves(ax, histories, title, window=20):
    """One learning curve per seed (episode returns against env steps), moving average bold."""
    for seed, history in histories.items():
        learning_curve(ax, history["episode/return"], window=window, x=history["episode/step"],
                       label=f"seed {seed}")
    ax.axhline(500, color="gray", linestyle=":", linewidth=0.8)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("environment steps")
    ax.set_ylim(0, 520)
    ax.legend(fontsize=7, loc="upper left")


def variance_bars(ax, results, baselines, colors=("tab:red", "tab:orange", "tab:green")):
    """Total gradient variance per baseline (bars, log scale), one group per policy.

    results: {policy label: {baseline: variance}} as from ``policy_gradient_variance``.
    """
    width = 0.8 / len(baselines)
    for i, (baseline, color) in enumerate(zip(baselines, colors)):
        values = [res[baseline] for res in results.values()]
        x = np.arange(len(results)) + (i - (len(baselines) - 1) / 2) * width
        bars = ax.bar(x, values, width, color=color, label=f"baseline: {baseline}")
        ax.bar_label(bars, fmt="%.2g", fontsize=8)
    ax.set_yscale("log")
    values = [res[b] for res in results.values() for b in baselines]
    ax.set_ylim(10 ** np.floor(np.log10(min(values))), 3 * max(values))  # room for the labels and the legend
    ax.set_xticks(np.arange(len(results)), list(results))
    ax.set_ylabel(r"total variance $\sum_p \mathrm{Var}[\hat g_p]$ over batches")
    ax.legend(fontsize=8)


def sampled_gradient_error(ax, n_samples, errors, variances, colors=("tab:red", "tab:blue", "tab:green")):
    """Measured RMS error of a sampled gradient (dots) against sqrt(Var / N) (lines), log-log.

    errors: {label: (K,) RMS errors at n_samples}; variances: {label: exact single-sample variance}.
    """
    for (label, err), color in zip(errors.items(), colors):
        ax.loglog(n_samples, err, "o", color=color, markersize=4)
        ax.loglog(n_samples, np.sqrt(variances[label] / np.asarray(n_samples)), color=color,
                  label=f"{label}: Var = {variances[label]:.2f}")
    ax.set_xlabel("trajectories N in the estimate")
    ax.set_ylabel(r"RMS error $\|\hat g - \nabla J\|$")
    ax.legend(fontsize=8)


def gaussian_variance(ax, result, color="tab:blue"):
    """Measured gradient variance against sigma (log-log, dots and line), with a 1/sigma^2 guide.

    result: from ``pg_continuous.gaussian_gradient_variance`` ("std", "variance").
    The dashed guide goes through the smallest sigma's point.
    """
    stds, variance = np.asarray(result["std"]), np.asarray(result["variance"])
    ax.loglog(stds, variance, "o-", color=color, label="measured: total variance of the mean network's gradient")
    ax.loglog(stds, variance[0] * (stds[0] / stds) ** 2, "--", color="gray", label=r"$\propto 1/\sigma^2$")
    ax.set_xlabel(r"policy std $\sigma$")
    ax.set_ylabel(r"$\sum_p \mathrm{Var}[\hat g_p]$ over batches")
    ax.legend(fontsize=8)


def continuous_run(ax, history, window=20, color="tab:blue"):
    """Episode returns of a ``train_gaussian_reinforce`` run (faint, moving average bold), sigma on a twin axis."""
    learning_curve(ax, history["episode/return"], window=window, x=history["episode/step"], color=color,
                   label="episode return")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    twin = ax.twinx()
    twin.plot(history["step"], history["std"], color="tab:orange", label=r"policy std $\sigma$")
    twin.set_ylabel(r"$\sigma$", color="tab:orange")
    twin.set_ylim(0, 1.2 * max(history["std"]))  # from 0: a small change in sigma looks small
    lines = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="lower right")
    return twin
