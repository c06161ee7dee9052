"""Pictures of module 15: verl's hybrid controller and one step's phases, Ray against one process,
and a GRPO step's cost extrapolated from the 2N / 6N rule."""

import matplotlib.pyplot as plt
import numpy as np

from .pipeline import _arrow, _box

# One step of verl's RayPPOTrainer.fit, in its order: (timer name in verl's logs, the call, the worker group
# that runs it, phase). The driver computes the advantages itself; every other line is a call on a worker group.
VERL_STEP = [("gen", "generate_sequences", "actor", "rollout"),
             ("reward", "reward function on each response", "reward", "rollout"),
             ("old_log_prob", "compute_log_prob", "actor", "training"),
             ("ref", "compute_ref_log_prob", "actor", "training"),
             ("values", "compute_values (PPO only)", "critic", "training"),
             ("adv", "compute_advantage (core_algos), in the driver", "driver", "training"),
             ("update_critic", "update_critic (PPO only)", "critic", "training"),
             ("update_actor", "update_actor", "actor", "training"),
             ("update_weights", "new weights -> rollout engine", "actor", "training")]
PHASE_COLORS = {"rollout": "C1", "training": "C0"}
GROUPS = {"actor": ("ActorRolloutRef worker group\nactor (FSDP / Megatron, trains),\nrollout engine "
                    "(vLLM / SGLang, samples),\nreference (frozen)", 3.5, "#c6dbef", 1.5),
          "critic": ("Critic worker group\n(PPO only; GRPO has none)", 1.95, "#c7e9c0", 0.8),
          "reward": ("Reward worker group\nrule functions or a reward model", 0.85, "#fcbba1", 0.8)}


def verl_diagram():
    """verl's hybrid controller (HybridFlow): one driver process and its worker groups on Ray.

    Left, the single controller (``RayPPOTrainer.fit``): the control flow of a step, one line
    per call, coloured by phase, with verl's timer name. Right, the worker groups, each a set
    of Ray actors placed on a resource pool of GPUs: they hold the models and run the
    computation flow. An arrow is a call carrying a batch (a ``DataProto``).
    """
    fig, ax = plt.subplots(figsize=(12, 5.2))
    ax.add_patch(plt.Rectangle((-0.2, -0.45), 5.6, 5.65, facecolor="0.96", edgecolor="0.5"))
    ax.text(2.6, 4.95, "driver: RayPPOTrainer.fit()  (one process, a CPU)\nsingle controller: the control flow",
            ha="center", va="center", fontsize=9, weight="bold")
    for i, (timer, call, group, phase) in enumerate(VERL_STEP):
        y = 4.3 - 0.5 * i
        ax.add_patch(plt.Rectangle((0.0, y - 0.2), 5.2, 0.4, facecolor=PHASE_COLORS[phase], alpha=0.25,
                                   edgecolor="none"))
        ax.text(0.1, y, f"{i + 1}. {call}", va="center", fontsize=8)
        ax.text(5.1, y, timer, va="center", ha="right", fontsize=7, color="0.35", family="monospace")
        if group != "driver":
            _arrow(ax, (5.25, y), (7.05, GROUPS[group][1] + 0.25 * (GROUPS[group][1] - y) / 4))
    for text, y, color, height in GROUPS.values():
        _box(ax, 8.95, y, text, color, width=3.7, height=height)
    ax.add_patch(plt.Rectangle((6.9, -0.45), 4.15, 4.95, facecolor="none", edgecolor="0.5", linestyle="--"))
    ax.text(8.95, 4.8, "Ray actors on a resource pool (GPUs)\nthe computation flow", ha="center", va="center",
            fontsize=9, weight="bold")
    ax.text(8.95, -0.2, "8 GPUs per node x N nodes", ha="center", fontsize=8, color="0.35")
    for phase, color in PHASE_COLORS.items():
        x = 0.1 + 2.6 * (phase == "training")
        ax.add_patch(plt.Rectangle((x, -0.3), 0.3, 0.2, facecolor=color, alpha=0.4))
        ax.text(x + 0.4, -0.2, f"{phase} phase", va="center", fontsize=8)
    ax.set(xlim=(-0.3, 11.2), ylim=(-0.55, 5.35))
    ax.axis("off")
    fig.tight_layout()
    return fig


def rollout_speedup(ax, sizes, one_process, workers):
    """Samples per second of one process and of Ray rollout workers, bars side by side.

    sizes: labels of the batch sizes; one_process, workers: samples per second at each.
    """
    if not len(sizes) == len(one_process) == len(workers):
        raise ValueError(f"sizes, one_process and workers must have one entry each, got {len(sizes)}, "
                         f"{len(one_process)}, {len(workers)}")
    x = np.arange(len(sizes))
    ax.bar(x - 0.2, one_process, 0.4, label="one process", color="0.6")
    ax.bar(x + 0.2, workers, 0.4, label="Ray workers", color="C0")
    for i, (a, b) in enumerate(zip(one_process, workers)):
        ax.text(i + 0.2, b, f"{b / a:.2f}x", ha="center", va="bottom", fontsize=8)
    ax.set(xticks=x, xticklabels=sizes, xlabel="prompts x samples", ylabel="samples / second")
    ax.legend(fontsize=8)


def step_cost_bars(ax, costs, flops_per_second, utilization=0.4):
    """A GRPO step's seconds by phase (generation, log-probs, update) for several models, stacked.

    costs: {label: scale.cost.StepCost}; seconds at `utilization` of `flops_per_second`.
    """
    labels = list(costs)
    bottom = np.zeros(len(labels))
    for part, color in (("generation", "C1"), ("logprobs", "0.6"), ("update", "C0")):
        secs = np.array([getattr(costs[k], part) for k in labels]) / (flops_per_second * utilization)
        ax.bar(labels, secs, bottom=bottom, color=color, label=part)
        bottom += secs
    for i, total in enumerate(bottom):
        ax.text(i, total, f"{total:.0f} s" if total >= 10 else f"{total:.1f} s", ha="center", va="bottom",
                fontsize=8)
    ax.set(ylabel="seconds per step (FLOPs only)")
    ax.legend(fontsize=8)
