"""Pictures for 00_rl_basics: the loop, discounting, returns, values on a grid, agent families."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import PatchCollection
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Polygon

ARROWS = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}  # FrozenLake actions as (dx, dy), y down
TILE_COLORS = {"H": "#222222", "G": "#e0b000"}  # holes and the goal


def _box(ax, xy, w, h, text, color):
    ax.add_patch(FancyBboxPatch(xy, w, h, boxstyle="round,pad=0.02,rounding_size=0.05",
                                facecolor=color, edgecolor="black", linewidth=1.2))
    ax.text(xy[0] + w / 2, xy[1] + h / 2, text, ha="center", va="center", fontsize=12)


def _arrow(ax, start, end, text, text_xy):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=18, linewidth=1.6,
                                 color="black"))
    ax.text(*text_xy, text, ha="center", va="center", fontsize=12)


def agent_env_loop():
    """The agent-environment loop as boxes and arrows; returns the figure."""
    fig, ax = plt.subplots(figsize=(7, 2.6))
    _box(ax, (0.02, 0.25), 0.3, 0.5, "Agent\npolicy $\\pi(a \\mid s)$", "#cfe2f3")
    _box(ax, (0.68, 0.25), 0.3, 0.5, "Environment\n$p(s', r \\mid s, a)$", "#d9ead3")
    _arrow(ax, (0.33, 0.62), (0.67, 0.62), "action $a_t$", (0.5, 0.76))
    _arrow(ax, (0.67, 0.38), (0.33, 0.38), "reward $r_t$\nnext state $s_{t+1}$", (0.5, 0.17))
    ax.set(xlim=(-0.03, 1.03), ylim=(0, 1))
    ax.axis("off")
    fig.tight_layout()
    return fig


def discount_weights(ax, gammas, horizon=60):
    """gamma^k against the delay k, one line per gamma, the horizon 1/(1-gamma) dashed."""
    k = np.arange(horizon)
    for gamma in gammas:
        label = f"$\\gamma$ = {gamma}" + (f"  (1/(1-$\\gamma$) = {1 / (1 - gamma):.0f})" if gamma < 1 else "")
        line, = ax.plot(k, gamma ** k, linewidth=2, label=label)
        if 0 < gamma < 1 and 1 / (1 - gamma) < horizon:
            ax.axvline(1 / (1 - gamma), color=line.get_color(), linestyle="--", linewidth=1)
    # gamma^(1/(1-gamma)) -> 1/e as gamma -> 1: the dashed lines cross the curves near this level
    ax.axhline(np.exp(-1), color="gray", linestyle=":", linewidth=1, label="1/e $\\approx$ 0.37")
    ax.set(xlabel="delay $k$ (steps after $t$)", ylabel="weight $\\gamma^k$ of $r_{t+k}$ in $G_t$",
           title="How much a reward $k$ steps ahead counts")
    ax.legend()
    return ax


def returns_along_episodes(ax, rewards, dones, returns_by_gamma):
    """Rewards as bars and the returns G_t as lines; dashed lines where an episode ends.

    returns_by_gamma: {gamma: (T,) returns} computed from the same rewards and dones.
    """
    t = np.arange(len(rewards))
    ends = np.flatnonzero(dones)
    ax.bar(t, rewards, color="lightgray", label="reward $r_t$")
    for gamma, returns in returns_by_gamma.items():
        # a NaN after each episode's last step breaks the line: returns do not flow across episodes
        gap = np.insert(np.asarray(returns, dtype=np.float64), ends + 1, np.nan)
        ax.plot(np.insert(t.astype(float), ends + 1, np.nan), gap, linewidth=2,
                label=f"return $G_t$, $\\gamma$ = {gamma}")
    for end in ends:
        ax.axvline(end + 0.5, color="black", linestyle="--", linewidth=1)
    ax.set(xlabel="step $t$ (episodes back to back)", ylabel="reward / return")
    ax.legend()
    return ax


def value_grid(ax, V, desc, title=None, pi=None, vmax=None):
    """State values as a heat map on a grid map (FrozenLake ``desc``), values written in.

    V: (n_states,) in row-major order of the grid; desc: (rows, cols) of b"S", b"F", b"H", b"G".
    pi: optional (n_states, n_actions) policy table; its most likely action is drawn
        as an arrow on every frozen tile.
    """
    desc = np.asarray(desc).astype(str)
    rows, cols = desc.shape
    grid = np.asarray(V, dtype=np.float64).reshape(rows, cols)
    image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=vmax if vmax is not None else grid.max())
    for (i, j), tile in np.ndenumerate(desc):
        if tile in "HG":  # terminal tiles: V = 0 by definition, draw the tile instead
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color=TILE_COLORS[tile]))
            ax.text(j, i, "hole" if tile == "H" else "goal", ha="center", va="center",
                    color="white" if tile == "H" else "black", fontsize=9)
            continue
        ax.text(j, i + 0.3, f"{grid[i, j]:.3f}", ha="center", va="center", fontsize=8,
                color="white" if grid[i, j] < 0.6 * image.get_clim()[1] else "black")
        if tile == "S":
            ax.text(j - 0.38, i - 0.32, "S", color="white", fontsize=9, fontweight="bold")
        if pi is not None:
            dx, dy = ARROWS[int(np.argmax(pi[i * cols + j]))]
            ax.arrow(j - 0.22 * dx, i - 0.22 * dy - 0.05, 0.3 * dx, 0.3 * dy, head_width=0.15,
                     color="white", length_includes_head=True)
    ax.set(xticks=[], yticks=[], title=title)
    return image


def q_grid(ax, Q, desc, vmax=None):
    """Action values on a grid map: each tile split in four triangles, one per action.

    Q: (n_states, 4) with FrozenLake's action order (left, down, right, up);
    desc: (rows, cols) map. The best action of each frozen tile is outlined in white.
    Returns the collection of triangles (for a colorbar).
    """
    desc = np.asarray(desc).astype(str)
    rows, cols = desc.shape
    Q = np.asarray(Q, dtype=np.float64)
    vmax = vmax if vmax is not None else Q.max()
    triangles, values, best = [], [], []
    for (i, j), tile in np.ndenumerate(desc):
        if tile in "HG":
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color=TILE_COLORS[tile]))
            ax.text(j, i, "hole" if tile == "H" else "goal", ha="center", va="center",
                    color="white" if tile == "H" else "black", fontsize=9)
            continue
        s = i * cols + j
        for a, (dx, dy) in ARROWS.items():
            # the triangle between the tile's centre and its edge in direction (dx, dy)
            corners = [(j + 0.5 * (dx - dy), i + 0.5 * (dy + dx)), (j + 0.5 * (dx + dy), i + 0.5 * (dy - dx))]
            triangles.append(Polygon([(j, i), *corners], closed=True))
            values.append(Q[s, a])
            best.append(a == int(np.argmax(Q[s])))
            ax.text(j + 0.3 * dx, i + 0.3 * dy, f"{Q[s, a]:.2f}", ha="center", va="center", fontsize=6.5,
                    color="white" if Q[s, a] < 0.6 * vmax else "black")
    patches = PatchCollection(triangles, cmap="viridis", edgecolors="black", linewidths=0.3)
    patches.set_array(np.array(values))
    patches.set_clim(0, vmax)
    ax.add_collection(patches)
    # outlines on top, else the neighbours' edges would hide them
    ax.add_collection(PatchCollection([t for t, b in zip(triangles, best) if b], facecolors="none",
                                      edgecolors="white", linewidths=2.0, zorder=3))
    ax.set(xlim=(-0.5, cols - 0.5), ylim=(rows - 0.5, -0.5), xticks=[], yticks=[], aspect="equal")
    return patches


def mc_convergence(ax, n_episodes, errors, label="RMS error of the estimate over states"):
    """Monte Carlo error against the number of episodes, log-log, with a 1/sqrt(n) guide."""
    n_episodes, errors = np.asarray(n_episodes), np.asarray(errors)
    ax.loglog(n_episodes, errors, marker="o", label=label)
    ax.loglog(n_episodes, errors[0] * np.sqrt(n_episodes[0] / n_episodes), "k--",
              label="$\\propto 1/\\sqrt{n}$")
    ax.set(xlabel="episodes $n$", ylabel="error", title="Monte Carlo error shrinks like $1/\\sqrt{n}$")
    ax.legend()
    return ax


def agent_families():
    """The map of agents: what they learn (a value, a policy, both), with examples."""
    fig, ax = plt.subplots(figsize=(9, 5.2))
    ax.add_patch(Circle((0.36, 0.5), 0.3, facecolor="#f4cccc", alpha=0.6, edgecolor="black"))
    ax.add_patch(Circle((0.64, 0.5), 0.3, facecolor="#cfe2f3", alpha=0.6, edgecolor="black"))
    ax.text(0.22, 0.88, "learns a value function", ha="center", fontsize=12, fontweight="bold")
    ax.text(0.78, 0.88, "learns a policy", ha="center", fontsize=12, fontweight="bold")
    text = dict(ha="center", va="center", fontsize=10.5)
    ax.text(0.2, 0.5, "Value-based\n\nact greedily on $Q$\n\nQ-learning (01)\nDQN", **text)
    ax.text(0.5, 0.5, "Actor-critic\n\npolicy + critic $V$\n\nA2C\nPPO (05)\nRLHF-PPO (coming)", **text)
    ax.text(0.8, 0.5, "Policy-based\n\nsampled returns,\nno critic\n\nREINFORCE (02)\n"
            "RLOO (07)\nGRPO (08)", **text)
    ax.text(0.5, 0.04, "(NN) = the course module that builds it", ha="center", fontsize=9, color="gray")
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal")
    ax.axis("off")
    fig.tight_layout()
    return fig
