"""Pictures of the Kimi k1.5 module (11): the RL loop, the length reward on real groups,
sampling strategies over seeds, model merging, and partial rollouts' busy and idle rows.

A *runs* dict is ``{name: [history of each seed]}`` as ``reasoning.kimi_sampling`` and
``reasoning.kimi_partial`` load them; held-out figures sit in a history's evaluation
steps under ``eval/...`` keys (``reasoning.eval_points`` reads them).
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

from .pipeline import _arrow, _box
from .reasoning import eval_points

IDLE, NEW, CONTINUED = 0, 1, 2  # the cell values of ``occupancy``


def rl_loop_diagram():
    """Kimi k1.5's iterative synchronous RL loop as boxes and arrows (a systems figure)."""
    fig, ax = plt.subplots(figsize=(10, 3.8))
    _box(ax, 0.0, 1.6, "prompts\n(curriculum /\nprioritized sampling)", "0.9", width=1.9, height=0.9)
    _box(ax, 2.8, 1.6, "rollout phase\n(inference engine)\nat most a token budget\nper trajectory", "C0",
         width=2.2, height=1.0)
    _box(ax, 2.8, -0.2, "replay buffer\nunfinished trajectories", "C1", width=2.2, height=0.8)
    _box(ax, 5.8, 1.6, "reward\n(rule / verifier,\n+ length reward)", "C2", width=1.9, height=1.0)
    _box(ax, 8.6, 1.6, "training phase\n(policy update on\nfinished trajectories)", "C3", width=2.1, height=1.0)
    _arrow(ax, (0.95, 1.6), (1.7, 1.6))
    _arrow(ax, (3.9, 1.6), (4.85, 1.6))
    _arrow(ax, (6.75, 1.6), (7.55, 1.6))
    _arrow(ax, (2.45, 1.1), (2.45, 0.2))
    _arrow(ax, (3.15, 0.2), (3.15, 1.1))
    ax.text(2.35, 0.65, "cut at the budget", fontsize=7, ha="right", color="0.3")
    ax.text(3.25, 0.65, "continued next iteration", fontsize=7, ha="left", color="0.3")
    ax.annotate("", xy=(2.8, 2.1), xytext=(8.6, 2.1),
                arrowprops=dict(arrowstyle="-|>", color="0.3", connectionstyle="arc3,rad=0.25"))
    ax.text(5.7, 2.95, "new weights back to the rollout workers (same GPUs: hybrid deployment)",
            fontsize=8, ha="center", color="0.2")
    ax.set(xlim=(-1.1, 9.8), ylim=(-0.8, 3.2))
    ax.axis("off")
    ax.set_title("Kimi k1.5's RL loop: one iteration = a rollout phase, then a training phase", fontsize=10)
    fig.tight_layout()
    return fig


def length_reward_groups(groups, columns=4):
    """One panel per group: the length reward against length, correct and wrong answers apart.

    groups: list of dicts with ``lengths``, ``correct``, ``reward`` (sequences of G
    values) and ``title``. The dashed line is lambda = 0.5 - (len - min)/(max - min).
    """
    if not groups:
        raise ValueError("groups must hold at least one group")
    rows = int(np.ceil(len(groups) / columns))
    fig, axes = plt.subplots(rows, min(columns, len(groups)), figsize=(3.3 * min(columns, len(groups)), 2.8 * rows),
                             squeeze=False, sharey=True)
    for ax, g in zip(axes.flat, groups):
        lengths, correct, reward = (np.asarray(g[k], dtype=float) for k in ("lengths", "correct", "reward"))
        low, high = lengths.min(), lengths.max()
        if high > low:
            x = np.linspace(low, high, 50)
            ax.plot(x, 0.5 - (x - low) / (high - low), "--", color="0.6", linewidth=1)
        right = correct > 0
        ax.scatter(lengths[right], reward[right], marker="o", color="C2", label="correct", zorder=3)
        ax.scatter(lengths[~right], reward[~right], marker="x", color="C3", label="wrong", zorder=3)
        ax.axhline(0, color="0.3", linewidth=0.6)
        ax.set(title=g.get("title", ""), xlabel="length (tokens)", ylim=(-0.6, 0.6))
        ax.title.set_fontsize(8)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(groups):]:
        ax.axis("off")
    axes[0, 0].set_ylabel("length reward")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def normalization_comparison(lengths, correct, levels, rewards):
    """Length reward against length per level, for each normalization, and its mean per level.

    lengths, correct, levels: (B,) per sample; rewards: {name: (B,) length rewards}.
    Left panels: every sample (colour = level, x = wrong); right: the mean reward of
    the correct samples of each level, one bar per normalization.
    """
    if not rewards:
        raise ValueError("rewards must hold at least one normalization")
    lengths, correct, levels = np.asarray(lengths, float), np.asarray(correct) > 0, np.asarray(levels)
    names, uniq = list(rewards), sorted(set(levels.tolist()))
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(4.6 * (len(names) + 1), 3.6))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        r = np.asarray(rewards[name], float)
        if r.shape != lengths.shape:
            raise ValueError(f"rewards[{name!r}] must have shape {lengths.shape}, got {r.shape}")
        for j, d in enumerate(uniq):
            sel = levels == d
            axes[k].scatter(lengths[sel & correct], r[sel & correct], s=12, color=f"C{j}", label=f"{d} digits")
            axes[k].scatter(lengths[sel & ~correct], r[sel & ~correct], s=12, color=f"C{j}", marker="x")
            means = r[sel & correct].mean() if (sel & correct).any() else 0.0
            axes[-1].bar(j + (k - (len(names) - 1) / 2) * width, means, width, color=f"C{j}",
                         alpha=1.0 - 0.45 * k, edgecolor="0.3", label=name if j == 0 else None)
        axes[k].axhline(0, color="0.3", linewidth=0.6)
        axes[k].set(title=f"{name} (x: wrong)", xlabel="length (tokens)", ylabel="length reward", ylim=(-0.6, 0.6))
        axes[k].grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[-1].axhline(0, color="0.3", linewidth=0.6)
    axes[-1].set_xticks(range(len(uniq)), [f"{d} digits" for d in uniq])
    axes[-1].set(title="mean reward of the correct answers\n(dark: " + names[0] + ")", ylabel="length reward")
    axes[-1].title.set_fontsize(9)
    fig.tight_layout()
    return fig


def _eval_matrix(histories, key):
    """(steps, values (seeds, points)) of one eval key over the runs of several seeds."""
    points = [eval_points(h, key) for h in histories]
    steps = points[0][0]
    if steps is None or any(p[0] is None or not np.array_equal(p[0], steps) for p in points):
        raise ValueError(f"every run must log {key!r} at the same steps")
    return steps, np.stack([p[1] for p in points])


def strategy_curves(runs, key, samples_per_step=None, threshold=None, ax=None, xlabel="step", x_of=None):
    """Mean over seeds (bold) and each seed (thin) of `key`, one colour per run name.

    x_of: optional f(history) -> array of x values per logged step (e.g. seconds);
    samples_per_step: adds a top axis counting samples; threshold: a dotted line.
    """
    if not runs:
        raise ValueError("runs must hold at least one entry")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7.5, 4))
    for i, (name, histories) in enumerate(runs.items()):
        steps, values = _eval_matrix(histories, key)
        if x_of is None:
            xs = np.tile(steps, (len(histories), 1))
        else:
            xs = np.stack([np.asarray(x_of(h))[[j for j, log in enumerate(h) if key in log]] for h in histories])
        for x, v in zip(xs, values):
            ax.plot(x, v, color=f"C{i}", alpha=0.3, linewidth=0.8)
        ax.plot(xs.mean(0), values.mean(0), color=f"C{i}", linewidth=2.2, marker="o", markersize=3,
                label=f"{name} (mean of {len(histories)} seeds)" if len(histories) > 1 else f"{name} (1 seed)")
    if threshold is not None:
        ax.axhline(threshold, color="0.4", linestyle=":", linewidth=1)
    ax.set(xlabel=xlabel, ylabel=key.replace("eval/", "held-out "), ylim=(-0.03, 1.03))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if samples_per_step:
        top = ax.secondary_xaxis("top", functions=(lambda s: s * samples_per_step, lambda n: n / samples_per_step))
        top.set_xlabel("samples drawn")
    return fig


def final_levels(finals):
    """Grouped bars of the final held-out pass@1 per level: {name: {level: [value of each seed]}}."""
    if not finals:
        raise ValueError("finals must hold at least one entry")
    names = list(finals)
    levels = sorted({d for f in finals.values() for d in f})
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        x = np.arange(len(levels)) + (k - (len(names) - 1) / 2) * width
        values = [np.asarray(finals[name].get(d, [np.nan]), float) for d in levels]
        ax.bar(x, [v.mean() for v in values], width, color=f"C{k}", alpha=0.8, label=name)
        for xi, v in zip(x, values):
            ax.scatter(np.full(len(v), xi), v, color="0.15", s=8, zorder=3)
    ax.set_xticks(range(len(levels)), [str(d) for d in levels])
    ax.set(xlabel="level (operand digits)", ylabel="final held-out pass@1", ylim=(0, 1.05),
           title="After the last step (bars: mean over seeds, dots: each seed)")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def sampling_drift(levels, weights, shares=None):
    """Prioritized sampling's weights at a few steps, and the level shares of the draws.

    levels: (n,) the level of each pool problem; weights: {step: (n,) weights after
    that step}, drawn with the problems sorted by level (then by the last weights);
    shares: optional {name: {level: per-step shares}} for a second panel.
    """
    if not weights:
        raise ValueError("weights must hold at least one step")
    levels = np.asarray(levels)
    last = np.asarray(weights[max(weights)], float)
    order = np.lexsort((-last, levels))  # by level, then the most wanted first
    fig, axes = plt.subplots(1, 2 if shares else 1, figsize=(13 if shares else 7, 3.8), squeeze=False)
    ax = axes[0, 0]
    for i, (step, w) in enumerate(sorted(weights.items())):
        ax.plot(np.asarray(w, float)[order] * len(order), color=plt.cm.viridis(i / max(1, len(weights) - 1)),
                linewidth=1.2, label=f"after {step} steps")
    for cut in np.flatnonzero(np.diff(levels[order])) + 0.5:
        ax.axvline(cut, color="0.5", linewidth=0.6)
    ax.set(xlabel="pool problem (sorted by level, then by its last weight)", ylabel="weight x pool size (1 = uniform)",
           title="Prioritized sampling: p_i ∝ 1 - s_i")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    if shares:
        ax = axes[0, 1]
        for k, (name, by_level) in enumerate(shares.items()):
            for j, (d, values) in enumerate(sorted(by_level.items())):
                ax.plot(np.arange(1, len(values) + 1), values, color=f"C{j}", linestyle=["-", "--", ":"][k % 3],
                        label=f"{name}, {d} digits")
        ax.set(xlabel="step", ylabel="share of the step's problems", ylim=(0, 1), title="Levels drawn per step")
        ax.legend(fontsize=6, ncol=2)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def merge_tradeoff(points):
    """Greedy pass@1 against mean tokens for merged models: points = [(alpha, pass@1, tokens)]."""
    if not points:
        raise ValueError("points must hold at least one (alpha, pass@1, tokens)")
    alphas, acc, tokens = (np.array(v, float) for v in zip(*points))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    sc = axes[0].scatter(tokens, acc, c=alphas, cmap="coolwarm", vmin=0, vmax=1, s=40, zorder=3)
    for a, x, y in zip(alphas, tokens, acc):
        axes[0].annotate(f"α={a:g}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    axes[0].set(xlabel="mean greedy tokens", ylabel="greedy pass@1", ylim=(-0.03, 1.05),
                title="Merged models: accuracy against length")
    fig.colorbar(sc, ax=axes[0], label="α (weight of the long model)")
    order = np.argsort(alphas)
    axes[1].plot(alphas[order], acc[order], "o-", color="C2", label="pass@1")
    axes[1].set(xlabel="α", ylabel="greedy pass@1", ylim=(-0.03, 1.05), title="Against α")
    twin = axes[1].twinx()
    twin.plot(alphas[order], tokens[order], "s--", color="C1", label="tokens")
    twin.set_ylabel("mean greedy tokens", color="C1")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def length_spread(spreads, lengths=None):
    """Per problem, max - min length over its samples: {level: array}; optional {level: all lengths}."""
    if not spreads:
        raise ValueError("spreads must hold at least one level")
    fig, axes = plt.subplots(1, 2 if lengths else 1, figsize=(11 if lengths else 6, 3.6), squeeze=False)
    levels = sorted(spreads)
    top = max(int(np.max(v)) for v in spreads.values()) + 2
    for j, d in enumerate(levels):
        axes[0, 0].hist(np.asarray(spreads[d]), bins=np.arange(-0.5, top), histtype="step", linewidth=1.5,
                        color=f"C{j}", label=f"{d} digits")
    axes[0, 0].set(xlabel="longest - shortest of a problem's samples (tokens)", ylabel="problems",
                   title="Spread of lengths within a group")
    axes[0, 0].legend(fontsize=8)
    if lengths:
        axes[0, 1].boxplot([np.asarray(lengths[d]) for d in levels])
        axes[0, 1].set_xticks(range(1, len(levels) + 1), [f"{d} digits" for d in levels])
        axes[0, 1].set(ylabel="sampled length (tokens)", title="Lengths of all samples per level")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def occupancy(summary):
    """Rows x decode steps of a rollout phase: (R, S) int array, IDLE, NEW or CONTINUED per cell.

    summary: ``full_rollouts`` / ``partial_rollouts``' dict. Calls are laid out one
    after the other along the decode steps; in a call of S steps, a row that kept
    k tokens is busy for its first k steps (CONTINUED when the trajectory started in
    an earlier iteration) and idle for the rest. R is the most rows any call used.
    """
    records = summary["iterations"]
    kept = {r["iteration"]: [] for r in records}
    for t in summary["trajectories"]:
        for s, segment in enumerate(t.segments):
            kept.setdefault(segment.iteration, []).append((s > 0, len(segment.tokens)))
    for r in records:
        if len(kept[r["iteration"]]) != r["rows"] or sum(k for _, k in kept[r["iteration"]]) != r["tokens"]:
            raise ValueError(f"iteration {r['iteration']}: the trajectories do not match its record")
    rows = max(r["rows"] for r in records)
    grid = np.full((rows, sum(r["decode_steps"] for r in records)), IDLE, dtype=int)
    start = 0
    for r in records:
        for b, (continued, k) in enumerate(sorted(kept[r["iteration"]], key=lambda x: (not x[0], -x[1]))):
            grid[b, start:start + k] = CONTINUED if continued else NEW
        grid[r["rows"]:, start:start + r["decode_steps"]] = -1  # rows the call did not use
        start += r["decode_steps"]
    return grid


def occupancy_picture(summaries):
    """The busy and idle row-steps of each rollout phase, on one time axis: {name: summary}."""
    if not summaries:
        raise ValueError("summaries must hold at least one rollout phase")
    grids = {name: occupancy(s) for name, s in summaries.items()}
    width = max(g.shape[1] for g in grids.values())
    fig, axes = plt.subplots(len(grids), 1, figsize=(11, 2.2 * len(grids)), squeeze=False)
    cmap = ListedColormap(["white", "0.85", "C0", "C1"])
    for ax, (name, g) in zip(axes[:, 0], grids.items()):
        ax.imshow(g, aspect="auto", interpolation="nearest", cmap=cmap, vmin=-1.5, vmax=2.5,
                  extent=(0, g.shape[1], g.shape[0], 0))
        s = summaries[name]
        cuts = np.cumsum([r["decode_steps"] for r in s["iterations"]])[:-1]
        for c in cuts:
            ax.axvline(c, color="0.2", linewidth=0.6)
        ax.set(xlim=(0, width), ylabel="row",
               title=f"{name}: {s['tokens']} tokens in {g.shape[1]} decode steps x {g.shape[0]} rows, "
                     f"idle {s['idle']:.0%} (blue: new, orange: continued, grey: idle)")
        ax.title.set_fontsize(9)
    axes[-1, 0].set_xlabel("decode step (calls one after the other; black lines: a new call)")
    fig.tight_layout()
    return fig


def throughput_bars(summaries):
    """Tokens per second and idle share of each rollout phase: {name: summary}."""
    if not summaries:
        raise ValueError("summaries must hold at least one rollout phase")
    names = list(summaries)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, key, label in [(axes[0], "tokens_per_second", "tokens per second"), (axes[1], "idle", "idle row-steps")]:
        values = [summaries[n][key] for n in names]
        ax.bar(names, values, color=[f"C{i}" for i in range(len(names))])
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:.0%}" if key == "idle" else f"{v:.0f}", ha="center", va="bottom", fontsize=8)
        ax.set(title=label)
        ax.grid(alpha=0.3, axis="y")
    axes[1].set_ylim(0, 1)
    fig.tight_layout()
    return fig


METHODS = {"rs_sft": "shortest RS + SFT", "dpo": "DPO", "rl": "long2short RL", "length_rl": "length reward only"}


def long2short_frontier(long, short, merging, seeds):
    """Kimi's Fig. 7 in small: held-out greedy pass@1 against mean tokens.

    long, short: {"pass@1", "length"} of the two reference models; merging: list of
    {"alpha", "pass@1", "length"}; seeds: list of one dict per seed, {method: {"pass@1",
    "length"}} for the keys of ``METHODS`` (one small marker per seed, a large one for the mean).
    An inset zooms on the methods and the short model, which may lie within a token of each other.
    """
    if not seeds:
        raise ValueError("seeds must hold at least one seed's figures")
    fig, ax = plt.subplots(figsize=(10, 5))
    zoom = ax.inset_axes([0.3, 0.3, 0.3, 0.45])
    order = sorted(merging, key=lambda m: m["alpha"])
    ax.plot([m["length"] for m in order], [m["pass@1"] for m in order], ".-", color="0.6", zorder=1,
            label="merging (α from 0 to 1)")
    for m in order:
        ax.annotate(f"{m['alpha']:g}", (m["length"], m["pass@1"]), textcoords="offset points", xytext=(3, 3),
                    fontsize=7, color="0.4")
    xs, ys = [short["length"]], [short["pass@1"]]
    for i, (key, name) in enumerate(METHODS.items()):
        x = [s[key]["length"] for s in seeds]
        y = [s[key]["pass@1"] for s in seeds]
        xs, ys = xs + x, ys + y
        for a in (ax, zoom):
            a.scatter(x, y, s=18, color=f"C{i}", alpha=0.5, zorder=2)
            a.scatter([np.mean(x)], [np.mean(y)], s=90, color=f"C{i}", edgecolor="k", zorder=3,
                      label=f"{name} (mean of {len(seeds)} seeds)" if a is ax else None)
    ax.scatter([long["length"]], [long["pass@1"]], marker="*", s=260, color="k", zorder=4, label="long-CoT model")
    for a in (ax, zoom):
        a.scatter([short["length"]], [short["pass@1"]], marker="s", s=90, color="w", edgecolor="k", zorder=4,
                  label="short-CoT model" if a is ax else None)
    pad_x, pad_y = 0.1 * (max(xs) - min(xs)) + 0.3, 0.1 * (max(ys) - min(ys)) + 0.005
    zoom.set_xlim(min(xs) - pad_x, max(xs) + pad_x)
    zoom.set_ylim(min(ys) - pad_y, max(ys) + pad_y)
    zoom.set_title("zoom on the methods", fontsize=8)
    zoom.tick_params(labelsize=7)
    zoom.grid(alpha=0.3)
    ax.indicate_inset_zoom(zoom, edgecolor="0.5")
    ax.set(xlabel="mean greedy tokens per answer (held-out)", ylabel="greedy pass@1 (held-out)",
           title="long2short: accuracy against length")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    return fig


def tradeoff_over_training(curves, long=None):
    """(mean tokens, pass@1) of the held-out evaluations along RL runs, step by step.

    curves: {run name: [curve of each seed]}, a curve a list of {"step", "pass@1", "length"};
    long: the starting model's {"pass@1", "length"} (step 0), or None.
    """
    if not curves:
        raise ValueError("curves must hold at least one run")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for i, (name, runs) in enumerate(curves.items()):
        for j, curve in enumerate(runs):
            points = ([{"step": 0, **long}] if long else []) + list(curve)
            x, y = [p["length"] for p in points], [p["pass@1"] for p in points]
            axes[0].plot(x, y, "o-", color=f"C{i}", alpha=0.6, ms=3, label=name if j == 0 else None)
            axes[1].plot([p["step"] for p in points], x, "o-", color=f"C{i}", alpha=0.6, ms=3,
                         label=name if j == 0 else None)
    axes[0].set(xlabel="mean greedy tokens (held-out)", ylabel="greedy pass@1 (held-out)",
                title="Along training: accuracy against length")
    axes[1].set(xlabel="RL step", ylabel="mean greedy tokens (held-out)", title="Length over training")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
