"""Pictures of module 12: the noisy labeller, the reward model's accuracy against the ceiling,
what it learned part by part, and best-of-n against the proxy and the gold reward."""

import numpy as np

from ..rlhf.preferences import LABEL_TEMPERATURE, preference_probability


def labeller_curve(ax, gold_a, gold_b, labels, bins=12, temperature=LABEL_TEMPERATURE):
    """Share of pairs whose side a was preferred against g(a) - g(b), beside sigmoid(delta / T).

    gold_a, gold_b: (N,) gold rewards of the two sides; labels: (N,) 1 where the
    labeller preferred a. Binned means with their binomial standard errors.
    """
    delta = np.asarray(gold_a, dtype=float) - np.asarray(gold_b, dtype=float)
    labels = np.asarray(labels, dtype=float)
    if delta.shape != labels.shape or delta.ndim != 1 or not len(delta):
        raise ValueError(f"gold_a, gold_b and labels must have one shape (N,), got {delta.shape} and {labels.shape}")
    edges = np.quantile(delta, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, delta, side="right") - 1, 0, bins - 1)
    for b in np.unique(which):
        rows = which == b
        p, n = labels[rows].mean(), rows.sum()
        ax.errorbar(delta[rows].mean(), p, yerr=np.sqrt(p * (1 - p) / n), fmt="o", color="C0", capsize=2)
    x = np.linspace(delta.min(), delta.max(), 200)
    ax.plot(x, [preference_probability(v, 0.0, temperature) for v in x], color="C1",
            label=rf"$\sigma(\Delta g / T)$, T = {temperature}")
    ax.axhline(0.5, color="0.6", linewidth=0.6)
    ax.set(xlabel=r"gold reward difference $g(a) - g(b)$", ylabel="share of pairs labelled a over b",
           ylim=(-0.03, 1.03))
    ax.plot([], [], "o", color="C0", label="the shipped pairs (binned)")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)


def accuracy_curve(ax, points, ceiling, agreement=None, blind=None):
    """Held-out pairwise accuracy against training pairs seen, under the labeller-noise ceiling.

    points: list of {"pairs", "accuracy"}; ceiling: the best any model can reach;
    agreement: two labellers' agreement; blind: a reference line (e.g. a scorer that
    knows every part of a response but cannot add).
    """
    ax.plot([p["pairs"] for p in points], [p["accuracy"] for p in points], marker="o", markersize=3,
            label="reward model (held-out pairs)")
    ax.axhline(ceiling, color="C3", linestyle="--", label=f"ceiling: labeller noise ({ceiling:.1%})")
    if agreement is not None:
        ax.axhline(agreement, color="C1", linestyle=":", label=f"two labellers agree ({agreement:.1%})")
    if blind is not None:
        ax.axhline(blind, color="0.5", linestyle="-.", label=f"knows the parts, cannot add ({blind:.1%})")
    ax.axhline(0.5, color="0.7", linewidth=0.6)
    ax.set(xlabel="training pairs seen", ylabel="pairwise accuracy", ylim=(0.45, 0.9))
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)


def probe_bars(ax, table, probes=None):
    """The reward model's mean score of each probe beside the gold reward's (both centred on "right")."""
    probes = probes or [k for k in table if not k.startswith("right beats")]
    score = np.array([table[k]["score"] for k in probes]) - table["right"]["score"]
    gold = np.array([table[k]["gold"] for k in probes]) - table["right"]["gold"]
    # one scale for both: the reward model's is arbitrary (Bradley-Terry fixes differences up to a factor)
    scale = np.abs(gold).max() / max(np.abs(score).max(), 1e-9)
    y = np.arange(len(probes))
    ax.barh(y - 0.2, gold, 0.4, color="C1", label="gold reward")
    ax.barh(y + 0.2, score * scale, 0.4, color="C0", label=f"reward model (x{scale:.2f})")
    ax.set_yticks(y, probes, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="0.3", linewidth=0.8)
    ax.set_xlabel('mean score minus that of the plain right answer')
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(axis="x", alpha=0.3)


def right_beats_wrong(ax, table, comparisons=("right beats wrong", "right beats a slip")):
    """Per operand length, the share of questions whose right answer outscores a wrong one, per kind of error."""
    for k, name in enumerate(comparisons):
        shares = table[name]
        digits = sorted(shares, key=int)
        ax.plot([int(d) for d in digits], [shares[d] for d in digits], marker="os"[k % 2], label=name)
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=0.8, label="the gold reward: always")
    ax.axhline(0.5, color="0.6", linewidth=0.6)
    ax.set(xlabel="operand digits", ylabel="share of questions", ylim=(-0.03, 1.05),
           xticks=sorted({int(d) for name in comparisons for d in table[name]}))
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)


def accuracy_by_kind(ax, by_kind):
    """Held-out accuracy on each kind of pair beside that kind's labeller-noise ceiling.

    by_kind: {kind: {"pairs", "accuracy", "ceiling"}} (what tells the two sides apart).
    """
    kinds = list(by_kind)
    x = np.arange(len(kinds))
    ax.bar(x - 0.2, [by_kind[k]["ceiling"] for k in kinds], 0.4, color="0.75", label="ceiling (labeller noise)")
    bars = ax.bar(x + 0.2, [by_kind[k]["accuracy"] for k in kinds], 0.4, color="C0", label="reward model")
    ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, [f"{k}\n({by_kind[k]['pairs']} pairs)" for k in kinds], fontsize=8)
    ax.axhline(0.5, color="0.5", linewidth=0.6)
    ax.set(ylabel="pairwise accuracy", ylim=(0.3, 1.05))
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)


def best_of_n_plot(ax, curve):
    """Proxy (left axis) and gold reward (right axis) of best-of-n against sqrt(KL(best-of-n || policy)).

    curve: ``rlhf.best_of_n.best_of_n_curve``'s dict; n is written on the gold points.
    The two rewards have their own units, so each gets an axis. Returns the gold axis.
    """
    x = np.sqrt(curve["kl"])
    proxy, = ax.plot(x, curve["proxy"], marker="o", color="C0", label="proxy: the reward model that picks")
    gold_ax = ax.twinx()
    gold, = gold_ax.plot(x, curve["gold"], marker="s", color="C1", label="gold: the labeller's judgement")
    for xi, n, g in zip(x, curve["n"], curve["gold"]):
        gold_ax.annotate(f"n={n}", (xi, g), textcoords="offset points", xytext=(0, 6), fontsize=7, ha="center")
    ax.set_xlabel(r"$\sqrt{\mathrm{KL}}$, KL(best-of-$n$ $\|$ policy) $= \log n - (n-1)/n$ nats")
    ax.set_ylabel("proxy reward of the pick (normalised)", color="C0")
    gold_ax.set_ylabel("gold reward of the pick", color="C1")
    ax.legend(handles=[proxy, gold], fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return gold_ax
