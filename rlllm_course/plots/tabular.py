"""Pictures of tabular Q-learning: value heat maps with policy arrows, training
curves, and a greedy episode as a filmstrip."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from .common import filmstrip, learning_curve

# Each grid env's action -> (d_col, d_row) on the picture (rows grow downwards).
MOVES = {
    "FrozenLake-v1": {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)},  # left down right up
    "CliffWalking-v1": {0: (0, -1), 1: (1, 0), 2: (0, 1), 3: (-1, 0)},  # up right down left
}
ACTION_NAMES = {
    "FrozenLake-v1": ["left", "down", "right", "up"],
    "CliffWalking-v1": ["up", "right", "down", "left"],
    "Taxi-v4": ["south", "north", "east", "west", "pickup", "drop off"],
}


def grid_cells(env):
    """(shape, labels) of a grid env; labels: (rows, cols) str, '' for plain cells.

    FrozenLake uses its map: S start, H hole, G goal. CliffWalking: S, G and
    'cliff' along the bottom row.
    """
    env_id = env.spec.id
    if env_id == "FrozenLake-v1":
        desc = env.unwrapped.desc.astype(str)  # (rows, cols) of 'S', 'F', 'H', 'G'
        return desc.shape, np.where(desc == "F", "", desc)
    if env_id == "CliffWalking-v1":
        labels = np.full((4, 12), "", dtype=object)
        labels[3, 0], labels[3, 11] = "S", "G"
        labels[3, 1:11] = "cliff"
        return (4, 12), labels
    raise ValueError(f"env must be FrozenLake-v1 or CliffWalking-v1, got {env_id}")


def q_heatmap(ax, Q, env, values=True, title=None, vmin=None, vmax=None):
    """max_a Q(s, a) on the grid, the greedy action as an arrow in each cell.

    Q: (n_states, n_actions) for a FrozenLake or CliffWalking env (states are
    row-major cells). Holes, the cliff and the goal are terminal: Q never
    changes there, so they are drawn as labelled grey cells without arrows.
    values: write max_a Q in each cell (readable up to ~12 columns).
    vmin, vmax: colour range (default: the range of max_a Q); give two tables the same
    range to compare them side by side.
    """
    shape, labels = grid_cells(env)
    moves = MOVES[env.spec.id]
    V = Q.max(axis=1).reshape(shape)  # (rows, cols)
    policy = Q.argmax(axis=1).reshape(shape)  # (rows, cols)
    terminal = np.isin(labels, ["H", "G", "cliff"])
    decimals = 2 if np.abs(V).max() < 2 else 1
    im = ax.imshow(np.ma.masked_array(V, terminal), cmap="viridis", vmin=vmin, vmax=vmax)
    plt.colorbar(im, ax=ax, fraction=0.046 * shape[0] / shape[1], pad=0.02)
    for (r, c), label in np.ndenumerate(labels):
        if terminal[r, c]:
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, color="0.25" if label != "G" else "gold"))
            ax.text(c, r, label, ha="center", va="center", fontsize=9,
                    color="white" if label != "G" else "black")
            continue
        ink = "black" if im.norm(V[r, c]) > 0.75 else "white"  # readable on viridis' yellow end
        dx, dy = moves[policy[r, c]]
        ax.annotate("", xy=(c + 0.32 * dx, r + 0.32 * dy), xytext=(c - 0.32 * dx, r - 0.32 * dy),
                    arrowprops=dict(arrowstyle="-|>", color=ink, lw=1.6))
        if values:
            ax.text(c + 0.45, r + 0.45, f"{V[r, c]:.{decimals}f}",
                    ha="right", va="bottom", fontsize=7, color=ink)
        if label:
            ax.text(c - 0.42, r - 0.42, label, ha="left", va="top", fontsize=8, color=ink)
    ax.set_xticks(range(shape[1]))
    ax.set_yticks(range(shape[0]))
    ax.tick_params(length=0, labelsize=7)
    ax.set_title(title or f"{env.spec.id}\n" + r"greedy action (arrow), $\mathrm{max}_a\,Q(s, a)$ (colour)",
                 fontsize=10)
    return im


def training_curve(ax, result, evaluator=None, target=None, window=10, ylim=None):
    """Training returns, greedy evaluations and epsilon of one run, on one axis.

    result: a QLearningResult. Returns are averaged over blocks of episodes (one
    faint point per block, ~250 points per run) and smoothed over `window` blocks
    (bold): a FrozenLake return is 0 or 1, too noisy to read episode by episode.
    evaluator: a GreedyEvaluator used as the training callback: its scores are
    the greedy policy's mean return (dots). target: a return to mark (dashed).
    Epsilon goes on a twin axis (dotted grey).
    """
    returns = np.asarray(result.returns, dtype=np.float64)
    block = max(1, len(returns) // 250)
    means = returns[: len(returns) // block * block].reshape(-1, block).mean(axis=1)  # (n_blocks,)
    x = (np.arange(len(means)) + 1) * block  # episodes done at the end of each block
    learning_curve(ax, means, window=window, x=x, label="training return (with exploration)")
    if evaluator is not None and evaluator.scores:
        n = evaluator.n_episodes
        ax.plot(evaluator.episodes, evaluator.scores, "o", ms=3.5, color="C3",
                label="greedy policy" + (f" (mean of {n} episodes)" if n > 1 else ""))
    if target is not None:
        ax.axhline(target, color="k", ls="--", lw=1, label=f"target {target:g}")
    ax.set_xlabel("training episode")
    ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))  # 5-digit labels must not collide
    ax.set_ylabel("return")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.legend(loc="best", fontsize=7, framealpha=0.8)
    eps_ax = ax.twinx()
    eps_ax.plot(np.arange(1, len(returns) + 1), result.epsilons, color="0.5", lw=1, ls=":")
    eps_ax.set_ylim(0, 1.05)
    eps_ax.set_ylabel(r"$\varepsilon$ (dotted)", color="0.4")
    return ax


def greedy_frames(env, policy, seed=0, max_steps=30):
    """Render one episode of a policy table; returns (frames, titles).

    env: made with render_mode="rgb_array". policy: (n_states,) int actions.
    The first frame is the start; each later one is titled with the action
    that led to it and its reward.
    """
    names = ACTION_NAMES.get(env.spec.id)
    state, _ = env.reset(seed=seed)
    frames, titles = [env.render()], ["start"]
    for t in range(max_steps):
        action = int(policy[state])
        state, reward, terminated, truncated, _ = env.step(action)
        frames.append(env.render())
        titles.append(f"{t + 1}: {names[action] if names else action}, r={reward:g}")
        if terminated or truncated:
            break
    return frames, titles


def greedy_filmstrip(env, policy, seed=0, max_steps=30, columns=6):
    """`greedy_frames` drawn with plots.common.filmstrip; returns the figure."""
    frames, titles = greedy_frames(env, policy, seed, max_steps)
    return filmstrip(frames, titles, columns=columns)
