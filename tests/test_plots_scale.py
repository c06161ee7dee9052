"""The pictures of module 15: verl's controller and worker groups, Ray against one process, a step's cost."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rlllm_course.plots import scale as plots  # noqa: E402
from rlllm_course.scale.cost import StepCost  # noqa: E402


def texts(ax):
    return [t.get_text() for t in ax.texts]


def test_verl_diagram_lists_the_step_in_verls_order_and_its_worker_groups():
    fig = plots.verl_diagram()
    shown = texts(fig.axes[0])
    calls = [t for t in shown if t[:2].rstrip(".").isdigit()]
    assert [c.split(". ", 1)[1] for c in calls] == [call for _, call, _, _ in plots.VERL_STEP]
    # verl's own timer names, in the order RayPPOTrainer.fit runs them
    assert [t for t in shown if t in {timer for timer, *_ in plots.VERL_STEP}] == [
        "gen", "reward", "old_log_prob", "ref", "values", "adv", "update_critic", "update_actor", "update_weights"]
    for group in ("ActorRolloutRef", "Critic", "Reward"):
        assert any(t.startswith(f"{group} worker group") for t in shown), group
    # one arrow per call on a worker group: every line but the driver's own advantage computation
    assert len(fig.axes[0].patches) - sum(isinstance(p, plt.Rectangle) for p in fig.axes[0].patches) >= 8
    plt.close(fig)


def test_rollout_speedup_labels_each_pair_with_its_ratio():
    fig, ax = plt.subplots()
    plots.rollout_speedup(ax, ["16 x 8", "64 x 8"], [100.0, 200.0], [150.0, 500.0])
    assert texts(ax) == ["1.50x", "2.50x"]
    assert sorted(b.get_height() for b in ax.patches) == [100.0, 150.0, 200.0, 500.0]
    with pytest.raises(ValueError, match="one entry each"):
        plots.rollout_speedup(ax, ["a"], [1.0, 2.0], [1.0])
    plt.close(fig)


def test_step_cost_bars_stack_the_phases_to_the_step_seconds():
    fig, ax = plt.subplots()
    costs = {"small": StepCost(1e12, 1e12, 3e12), "large": StepCost(20e12, 20e12, 60e12)}
    plots.step_cost_bars(ax, costs, flops_per_second=1e12, utilization=0.5)
    tops = {}
    for bar in ax.patches:
        x = round(bar.get_x() + bar.get_width() / 2)
        tops[x] = max(tops.get(x, 0.0), bar.get_y() + bar.get_height())
    np.testing.assert_allclose([tops[0], tops[1]], [10.0, 200.0])  # 5e12 and 100e12 FLOPs at 0.5e12 FLOP/s
    assert texts(ax) == ["10 s", "200 s"]
    plt.close(fig)
