"""Pictures of the GRPO module (08): training curves, zero-signal groups, KL-penalty
gradients, length bias."""

import matplotlib.pyplot as plt
import numpy as np

from .common import moving_average


def _eval_points(history, key, base=None):
    """(steps, values) of an evaluation metric; `base` (value before training) is plotted at step 0."""
    steps = [h["step"] + 1 for h in history if key in h]
    values = [h[key] for h in history if key in h]
    if base is not None:
        steps, values = [0] + steps, [base] + values
    return np.array(steps), np.array(values)


def training_curves(history, base=None, window=5):
    """Left: greedy pass@1 and format rate on held-out problems; right: completion length.

    history: ``train_grpo``'s per-step dicts; base: ``evaluate`` of the model before
    training (drawn at step 0). The x axis counts completed updates.
    """
    base = base or {}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    for key, label, color in [("pass@1", "greedy pass@1 (held out)", "C0"),
                              ("format", "greedy format rate (held out)", "C2")]:
        x, y = _eval_points(history, f"eval/{key}", base.get(key))
        ax1.plot(x, y, "o-", color=color, label=label)
    steps = np.array([h["step"] + 1 for h in history])
    ax1.plot(steps, moving_average([h["accuracy"] for h in history], window), color="C1", alpha=0.7,
             label=f"accuracy of the training samples ({window}-step mean)")
    ax1.set(xlabel="GRPO step", ylabel="rate", ylim=(-0.03, 1.03), title="Accuracy and format")
    ax1.legend(fontsize=8, loc="lower right")
    ax2.plot(steps, [h["length"] for h in history], color="C1", alpha=0.35)
    ax2.plot(steps, moving_average([h["length"] for h in history], window), color="C1",
             label=f"sampled completions ({window}-step mean)")
    x, y = _eval_points(history, "eval/length", base.get("length"))
    ax2.plot(x, y, "o-", color="C0", label="greedy completions (held out)")
    ax2.set(xlabel="GRPO step", ylabel="tokens", ylim=(0, None), title="Completion length")
    ax2.legend(fontsize=8, loc="lower right")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def zero_signal_groups(reward_batches, group_size, max_reward):
    """Share of groups per step whose rewards are all equal: all 0, all `max_reward`, other."""
    grouped = [r.view(-1, group_size) for r in reward_batches]  # each (N, G)
    equal = np.array([(g == g[:, :1]).all(1).numpy() for g in grouped])  # (steps, N)
    first = np.array([g[:, 0].numpy() for g in grouped])  # (steps, N)
    parts = [("all rewards 0", equal & (first == 0), "C3"),
             (f"all rewards {max_reward:g}", equal & (first == max_reward), "C2"),
             ("all equal, other value", equal & (first != 0) & (first != max_reward), "C7")]
    steps = np.arange(len(grouped))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.stackplot(steps, *[p.mean(1) for _, p, _ in parts], labels=[n for n, _, _ in parts],
                 colors=[c for _, _, c in parts], alpha=0.8)
    ax.set(xlabel="GRPO step", ylabel="share of the step's groups", ylim=(0, 1),
           title=f"Groups with zero advantage for all {group_size} samples (no gradient)")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def kl_gradients(table, distances, ns):
    """Left: the exact gradients of KL(pi||ref) and KL(ref||pi) with respect to each logit
    (bars), and the expected gradient of each penalty (markers). Right: distance of the
    Monte Carlo gradient of k3 and rho * k3 from each exact gradient against the sample size.

    table: ``kl_study.gradient_table``; distances: ``kl_study.sampled_distances`` for
    "k3" and "ratio_k3"; ns: its sample sizes.
    """
    forward, reverse = table["targets"]["KL(pi||ref)"].numpy(), table["targets"]["KL(ref||pi)"].numpy()
    x = np.arange(len(forward))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    ax1.bar(x - 0.2, forward, 0.4, color="C0", alpha=0.45, label=r"$\nabla\,\mathrm{KL}(\pi_\theta\|\pi_{ref})$ (exact)")
    ax1.bar(x + 0.2, reverse, 0.4, color="C3", alpha=0.45, label=r"$\nabla\,\mathrm{KL}(\pi_{ref}\|\pi_\theta)$ (exact)")
    for name, marker, color, shift, label in [
            ("ratio_k3", "o", "C0", -0.2, r"$\mathbb{E}[\nabla(\rho\,k_3)]$"),
            ("ratio_k1", "^", "C9", -0.2, r"$\mathbb{E}[\nabla(\rho\,k_1)]$"),
            ("k3", "D", "C3", 0.2, r"$\mathbb{E}[\nabla k_3]$"),
            ("k1", "x", "k", 0.0, r"$\mathbb{E}[\nabla k_1]$")]:
        ax1.scatter(x + shift, table[name]["gradient"].numpy(), marker=marker, color=color, s=36,
                    zorder=3, label=label)
    ax1.axhline(0, color="k", lw=0.8)
    ax1.set(xlabel="outcome o (the logit the gradient is taken for)", ylabel="gradient component",
            title="Expected penalty gradients vs the two exact KL gradients")
    ax1.legend(fontsize=7, ncol=2)
    for name, color, label in [("k3", "C3", r"$k_3$"), ("ratio_k3", "C0", r"$\rho\,k_3$")]:
        for key, ls in [("KL(pi||ref)", "-"), ("KL(ref||pi)", "--")]:
            target = r"$\nabla\mathrm{KL}(\pi_\theta\|\pi_{ref})$" if key == "KL(pi||ref)" else r"$\nabla\mathrm{KL}(\pi_{ref}\|\pi_\theta)$"
            ax2.plot(ns, distances[name][key], "o" + ls, color=color, label=f"{label} vs {target}")
    ax2.set(xscale="log", yscale="log", xlabel="samples n in the mean", ylabel="max |sampled gradient - exact|",
            title="Monte Carlo: each penalty converges to one KL gradient")
    ax2.legend(fontsize=7)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def length_bias(lengths, advantages, weights, titles=None, seed=0):
    """One panel per aggregation: |A_i| times the weight each token of sequence i gets.

    lengths, advantages: (B,) arrays; weights: {aggregation: (B,) per-token weight of
    each row}. Rows with A > 0 (better than their group) green, A < 0 red, A = 0 grey.
    seed: of the horizontal jitter that separates dots of equal length.
    """
    lengths, advantages = np.asarray(lengths), np.asarray(advantages)
    fig, axes = plt.subplots(1, len(weights), figsize=(3.4 * len(weights), 3.6), sharey=True)
    for ax, (name, w) in zip(axes, weights.items()):
        push = np.abs(advantages) * np.asarray(w) * len(lengths)  # per-token push, x B for readable numbers
        for sel, color, label in [(advantages > 0, "C2", "A > 0 (above the group mean)"),
                                  (advantages < 0, "C3", "A < 0 (below the group mean)"),
                                  (advantages == 0, "C7", "A = 0")]:
            jitter = np.random.default_rng(seed).uniform(-0.3, 0.3, sel.sum())
            ax.scatter(lengths[sel] + jitter, push[sel], s=10, color=color, alpha=0.6, label=label)
        ax.set(xlabel="completion length |o_i| (tokens)", title=(titles or {}).get(name, name))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(r"$|A_i|\,\cdot\,w_t \cdot B$  (push on each token)")
    axes[0].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig
