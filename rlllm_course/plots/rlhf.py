"""Pictures of modules 13 and 14: the four models of RLHF-PPO, the reward of each token, proxy and
gold reward against steps and against KL over seeds, and what the policies write.

A *runs* dict is ``{name: [result of each seed]}`` as ``rlhf.rlhf_runs.load_runs`` gives it;
each result's ``history`` holds the held-out figures under ``eval/...`` at evaluation steps.
"""

import matplotlib.pyplot as plt
import numpy as np

from ..rlhf.rlhf_runs import kl_at_evals
from .pipeline import _arrow, _box
from .reasoning import eval_points

RUN_COLORS = {"ppo-beta-0.01": "C3", "ppo-beta-0.05": "C1", "ppo-beta-0.2": "C0", "grpo": "C2", "dpo": "C4",
              "best-of-n": "0.3"}


def four_models_diagram(models):
    """RLHF-PPO's four models as boxes, what flows between them as arrows (lecture §4.1).

    models: {"policy", "reference", "reward model", "critic"} -> parameter counts (shown).
    """
    fig, ax = plt.subplots(figsize=(10, 3.8))
    count = lambda name: f"\n{models[name] / 1e6:.2f}M params" if name in models else ""
    _box(ax, 0.0, 1.5, "prompts x", "0.9", width=1.3, height=0.6)
    _box(ax, 2.6, 1.5, "policy $\\pi_\\theta$\n(trained)" + count("policy"), "C0", width=1.9, height=1.0)
    _box(ax, 5.6, 2.6, "reward model $r_\\phi$\n(frozen)" + count("reward model"), "C2", width=2.1, height=0.9)
    _box(ax, 5.6, 1.2, "reference $\\pi_{ref}$\n(frozen)" + count("reference"), "0.75", width=2.1, height=0.9)
    _box(ax, 5.6, -0.2, "critic $V_\\psi$\n(trained)" + count("critic"), "C1", width=2.1, height=0.9)
    _box(ax, 9.0, 1.2, "per-token reward\n$r_t = -\\beta\\,\\mathrm{kl}_t + [t = T]\\,r_\\phi(x, y)$\n"
         "GAE $\\to \\hat A_t$, returns $\\hat R_t$", "0.95", width=3.0, height=1.3)
    _arrow(ax, (0.65, 1.5), (1.65, 1.5))
    for y in (2.6, 1.2, -0.2):
        _arrow(ax, (3.55, 1.5), (4.55, y))
    ax.text(3.7, 2.35, "y ~ $\\pi_\\theta$(. | x)", fontsize=8, color="0.3")
    _arrow(ax, (6.65, 2.6), (7.5, 1.6))
    _arrow(ax, (6.65, 1.2), (7.5, 1.2))
    _arrow(ax, (6.65, -0.2), (7.5, 0.8))
    ax.text(6.8, 2.35, "score", fontsize=8, color="0.3")
    ax.text(6.75, 1.3, "log $\\pi_{ref}$", fontsize=8, color="0.3")
    ax.text(6.8, 0.0, "$V(s_t)$", fontsize=8, color="0.3")
    ax.annotate("", xy=(2.6, 0.95), xytext=(9.0, 0.5),
                arrowprops=dict(arrowstyle="-|>", color="C3", connectionstyle="arc3,rad=-0.35"))
    ax.text(4.3, -1.25, "PPO updates the policy (clipped surrogate) and the critic (clipped value loss)",
            fontsize=8, color="C3")
    ax.set(xlim=(-0.8, 10.6), ylim=(-1.5, 3.3))
    ax.axis("off")
    fig.tight_layout()
    return fig


def _matrix(results, x_of, key):
    """(x, values (seeds, points)) of `key` over the seeds' histories, at the first seed's points."""
    x, _ = x_of(results[0]["history"], key)
    rows = [x_of(r["history"], key)[1] for r in results]
    n = min(len(row) for row in rows)
    return np.asarray(x[:n]), np.array([row[:n] for row in rows], dtype=float)


def seed_band(ax, x, values, label, color, marker="o"):
    """The mean over seeds (rows of `values`) as a line, their min and max as a band."""
    ax.plot(x, values.mean(0), marker=marker, markersize=3, color=color, label=label)
    if len(values) > 1:
        ax.fill_between(x, values.min(0), values.max(0), color=color, alpha=0.15)


def training_curves(axes, runs, start, names=None):
    """Held-out proxy score and gold reward against steps, one line per run (mean, band over seeds).

    axes: two axes (score, gold); start: the base's held-out figures (at step 0).
    """
    names = names or list(runs)
    for name in names:
        for ax, key in zip(axes, ("eval/score", "eval/gold")):
            x, values = _matrix(runs[name], eval_points, key)
            x = np.concatenate([[0], x])
            values = np.concatenate([np.full((len(values), 1), start[key.split("/")[1]]), values], axis=1)
            seed_band(ax, x, values, f"{name} ({len(runs[name])} seeds)", RUN_COLORS.get(name))
    for ax, what in zip(axes, ("reward model's score (proxy)", "gold reward")):
        ax.set(xlabel="step", ylabel=f"held-out {what}")
        ax.grid(alpha=0.3)
    axes[1].axhline(start["gold"], color="0.4", linestyle=":", linewidth=1, label="the base")
    axes[0].legend(fontsize=7)


def reward_against_kl(ax, runs, start, key="gold", names=None, extra=None):
    """Held-out `key` ("gold" or "score") against sqrt(KL to the reference), per run (mean over seeds).

    The KL of an evaluation is the batch KL around it (``rlhf_runs.kl_at_evals``); the base
    sits at KL 0. extra: {label: (kl list, value list)} drawn as they are (best-of-n, DPO).
    """
    names = names or list(runs)
    for name in names:
        kl = np.array([kl_at_evals(r["history"])[1] for r in runs[name]], dtype=float)
        _, values = _matrix(runs[name], eval_points, f"eval/{key}")
        n = min(kl.shape[1], values.shape[1])
        x = np.sqrt(np.clip(np.concatenate([[0.0], kl[:, :n].mean(0)]), 0, None))
        y = np.concatenate([[start[key]], values[:, :n].mean(0)])
        ax.plot(x, y, marker="o", markersize=3, color=RUN_COLORS.get(name), label=name)
    for label, (kl, values) in (extra or {}).items():
        ax.plot(np.sqrt(np.clip(kl, 0, None)), values, marker="s", markersize=4, linestyle="--",
                color=RUN_COLORS.get(label, "0.3"), label=label)
    ax.axhline(start[key], color="0.4", linestyle=":", linewidth=1)
    ax.set(xlabel=r"$\sqrt{\mathrm{KL}(\pi \,\|\, \pi_{ref})}$  (nats$^{1/2}$)", ylabel=f"held-out {key}")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


PARTS = ("right", "wrong", "refusal", "hedged", "rude", "openers")


def part_shares(figures):
    """{part: value} of ``evaluate.gold_figures``' output: answer kinds, hedged and rude shares, openers."""
    kinds = figures["kinds"]
    return {"right": kinds["right"], "wrong": kinds["wrong"], "refusal": kinds["refusal"],
            "hedged": figures["hedged"], "rude": figures["rude"], "openers": figures["openers"]}


def parts_bars(ax, columns):
    """Grouped bars: for each part of a response, its share (openers: mean count) per column.

    columns: {label: figures of ``evaluate.gold_figures`` (or a dict of ``part_shares``)}.
    """
    width = 0.8 / len(columns)
    for i, (label, figures) in enumerate(columns.items()):
        shares = figures if set(PARTS) <= set(figures) else part_shares(figures)
        ax.bar(np.arange(len(PARTS)) + (i - (len(columns) - 1) / 2) * width, [shares[p] for p in PARTS], width,
               label=label, color=RUN_COLORS.get(label, f"C{i}") if i else "0.6")
    ax.set_xticks(range(len(PARTS)), [p if p != "openers" else "openers\n(per response)" for p in PARTS])
    ax.set(ylabel="share of responses")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
