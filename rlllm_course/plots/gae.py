"""Pictures for GAE (lecture §2.3): the weights over k, advantages along a rollout, bias and variance."""

import numpy as np


def kstep_weights(ax, lams, kmax=30):
    """GAE's weight (1 - lam) lam^(k-1) on the k-step advantage A^(k), for each lam."""
    k = np.arange(1, kmax + 1)
    for lam in lams:
        ax.plot(k, (1 - lam) * lam ** (k - 1), marker="o", markersize=3, label=f"$\\lambda$ = {lam:g}")
    ax.set_xlabel("k (number of TD residuals summed)")
    ax.set_ylabel(r"weight $(1-\lambda)\,\lambda^{k-1}$ on $\hat A^{(k)}_t$")
    ax.legend(fontsize=8)


def advantages_along_rollout(ax, curves, dones, truncated=None):
    """Advantage curves {label: (T,)} over time, episode ends as vertical lines."""
    for label, values in curves.items():
        ax.plot(values, label=label, linewidth=1.2)
    for t in np.flatnonzero(dones):
        cut = truncated is not None and truncated[t]
        ax.axvline(t + 0.5, color="tab:green" if cut else "black", linestyle=":" if cut else "--", linewidth=0.8)
    ax.axhline(0, color="gray", linewidth=0.5)
    ends = np.flatnonzero(dones)
    cuts = [t for t in ends if truncated is not None and truncated[t]]
    legend = [f"dashed: terminated after t ({len(ends) - len(cuts)})"] if len(ends) > len(cuts) else []
    legend += [f"dotted: time limit after t ({len(cuts)})"] if cuts else []
    ax.set_xlabel(f"time step t ({'; '.join(legend) or 'no episode ends in this column'})")
    ax.set_ylabel(r"$\hat A_t$")
    ax.legend(fontsize=8)


def bias_variance_curves(ax, lams, stats, label, color=None):
    """Squared bias (solid) and variance (dashed) of GAE(lam) against lam, on a symlog scale.

    stats: the dict of ``gae_study.bias_variance`` over lams. The lams are
    placed at equal spacing (most of the action happens near 1).
    """
    x = np.arange(len(lams))
    line, = ax.plot(x, stats["bias2"], marker="o", color=color, label=f"bias² ({label})")
    ax.plot(x, stats["variance"], marker="s", linestyle="--", color=line.get_color(), label=f"variance ({label})")
    ax.set_xticks(x, [f"{lam:g}" for lam in lams])
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_xlabel(r"$\lambda$ (not to scale)")
    ax.legend(fontsize=8)
    return line


def mse_curve(ax, lams, stats, label, color=None):
    """bias² + variance against lam, the best lam marked."""
    x = np.arange(len(lams))
    line, = ax.plot(x, stats["mse"], marker="o", color=color, label=label)
    best = int(np.argmin(stats["mse"]))
    ax.plot(x[best], stats["mse"][best], marker="*", markersize=16, color=line.get_color())
    ax.set_xticks(x, [f"{lam:g}" for lam in lams])
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_xlabel(r"$\lambda$ (not to scale)")
    ax.set_ylabel("bias² + variance")
    ax.legend(fontsize=8)
    return best
