"""The pictures of module 11: input checks, the occupancy grid's bookkeeping, shapes of the figures."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rlllm_course.plots import kimi  # noqa: E402
from rlllm_course.reasoning.partial_rollout import Segment, Trajectory  # noqa: E402


def history(values, key="eval/pass@1", every=2):
    """A history with `key` logged every `every` steps (values in order) and seconds per step."""
    logs = []
    for step in range(every * len(values)):
        log = {"step": step, "seconds": float(step + 1)}
        if step % every == every - 1:
            log[key] = values[step // every]
        logs.append(log)
    return logs


def test_rl_loop_diagram_names_the_phases_and_the_buffer():
    texts = " ".join(t.get_text() for t in kimi.rl_loop_diagram().axes[0].texts)
    for word in ("rollout phase", "training phase", "replay buffer", "hybrid deployment"):
        assert word in texts
    plt.close("all")


def test_length_reward_groups_one_panel_per_group_and_checks_input():
    groups = [{"lengths": [1, 2, 3], "correct": [1, 0, 1], "reward": [0.5, 0.0, -0.5], "title": "a"},
              {"lengths": [4, 4], "correct": [0, 0], "reward": [0.0, 0.0], "title": "equal lengths"}]
    fig = kimi.length_reward_groups(groups, columns=4)
    assert len([ax for ax in fig.axes if ax.axison]) == 2
    with pytest.raises(ValueError, match="at least one"):
        kimi.length_reward_groups([])
    plt.close("all")


def test_normalization_comparison_bars_are_the_mean_reward_of_correct_answers():
    # level 2: correct rewards 0.5 and 0.1 (mean 0.3), the wrong one must not count; level 5: -0.4
    lengths, correct, levels = [1, 2, 3, 9], [1, 1, 0, 1], [2, 2, 2, 5]
    fig = kimi.normalization_comparison(lengths, correct, levels, {"a": [0.5, 0.1, -0.5, -0.4]})
    heights = [round(p.get_height(), 6) for p in fig.axes[-1].patches]
    assert heights == [0.3, -0.4]
    with pytest.raises(ValueError, match="shape"):
        kimi.normalization_comparison(lengths, correct, levels, {"a": [0.5, 0.1]})
    plt.close("all")


def test_strategy_curves_draws_a_mean_and_each_seed_and_needs_equal_eval_steps():
    runs = {"u": [history([0.1, 0.5]), history([0.3, 0.7])], "p": [history([0.2, 0.9])]}
    fig = kimi.strategy_curves(runs, "eval/pass@1", samples_per_step=128, threshold=0.6)
    lines = fig.axes[0].get_lines()
    # 2 seeds + mean for "u", 1 seed + mean for "p", 1 threshold line
    assert len(lines) == 6
    mean_u = [line for line in lines if line.get_label().startswith("u (")][0]
    assert np.allclose(mean_u.get_ydata(), [0.2, 0.6]) and np.allclose(mean_u.get_xdata(), [2, 4])
    # x_of: the points sit at the seconds of the evaluation steps, not at the step counts
    fig = kimi.strategy_curves({"u": [history([0.1, 0.5])]}, "eval/pass@1",
                               x_of=lambda h: np.array([log["seconds"] * 10 for log in h]))
    assert np.allclose(fig.axes[0].get_lines()[-1].get_xdata(), [20, 40])
    with pytest.raises(ValueError, match="same steps"):
        kimi.strategy_curves({"u": [history([0.1, 0.5]), history([0.1, 0.5], every=3)]}, "eval/pass@1")
    plt.close("all")


def test_final_levels_and_merge_tradeoff_check_input():
    fig = kimi.final_levels({"u": {2: [0.9, 1.0], 5: [0.5, 0.7]}, "c": {2: [0.8, 0.8], 5: [0.9, 0.9]}})
    assert [round(p.get_height(), 6) for p in fig.axes[0].patches] == [0.95, 0.6, 0.8, 0.9]
    fig = kimi.merge_tradeoff([(0.0, 0.5, 7.0), (1.0, 1.0, 43.0)])
    assert len(fig.axes) >= 2
    for bad in (kimi.final_levels, kimi.merge_tradeoff):
        with pytest.raises(ValueError):
            bad({} if bad is kimi.final_levels else [])
    plt.close("all")


def test_sampling_drift_and_length_spread_draw():
    fig = kimi.sampling_drift([2, 2, 5], {1: [1 / 3] * 3, 4: [0.0, 0.5, 0.5]}, {"c": {2: [0.5, 0.0], 5: [0.5, 1.0]}})
    assert len(fig.axes) == 2 and len(fig.axes[0].get_lines()) >= 2
    fig = kimi.length_spread({2: np.array([0, 1]), 5: np.array([3])}, {2: [5, 6], 5: [9, 12]})
    assert len(fig.axes) == 2
    with pytest.raises(ValueError):
        kimi.sampling_drift([2], {})
    plt.close("all")


def rollout_summary():
    """A hand-made partial-rollout phase: 2 rows, budget 3; 'a' spans iterations 0 and 1."""
    a = Trajectory("a", (Segment((5, 6, 7), 0), Segment((2,), 1)), finished=True)
    b = Trajectory("b", (Segment((5, 2), 0),), finished=True)
    c = Trajectory("c", (Segment((2,), 1),), finished=True)
    records = [{"iteration": 0, "rows": 2, "tokens": 5, "decode_steps": 3},
               {"iteration": 1, "rows": 2, "tokens": 2, "decode_steps": 1}]
    return {"iterations": records, "trajectories": [b, a, c], "tokens": 7, "idle": 1 - 7 / 8,
            "tokens_per_second": 70.0}


def test_occupancy_marks_busy_new_continued_and_idle_cells():
    grid = kimi.occupancy(rollout_summary())
    assert grid.shape == (2, 4)  # the most rows of any call x the summed decode steps
    # iteration 0: a (3 tokens, new) and b (2 tokens, then idle); iteration 1: a continued, c new
    assert grid[:, :3].tolist() == [[kimi.NEW] * 3, [kimi.NEW, kimi.NEW, kimi.IDLE]]
    assert sorted(grid[:, 3].tolist()) == [kimi.NEW, kimi.CONTINUED]
    # the busy cells are the phase's tokens: idle = 1 - busy / cells, as the engine counts it
    assert (grid > 0).sum() == 7


def test_occupancy_refuses_trajectories_that_do_not_match_the_records():
    summary = rollout_summary()
    summary["iterations"][0]["tokens"] = 6  # one token more than the segments of iteration 0 hold
    with pytest.raises(ValueError, match="iteration 0"):
        kimi.occupancy(summary)


def test_occupancy_picture_and_throughput_bars_draw_one_panel_per_phase():
    fig = kimi.occupancy_picture({"full": rollout_summary(), "partial": rollout_summary()})
    assert len(fig.axes) == 2
    fig = kimi.throughput_bars({"full": rollout_summary(), "partial": rollout_summary()})
    assert [round(p.get_height(), 6) for p in fig.axes[1].patches] == [0.125, 0.125]
    with pytest.raises(ValueError):
        kimi.throughput_bars({})
    plt.close("all")


def test_the_long2short_pictures_draw_every_method_and_seed():
    import matplotlib.pyplot as plt
    from rlllm_course.plots import kimi
    point = lambda a, t: {"pass@1": a, "length": t}  # noqa: E731
    seeds = [{k: point(0.9 + 0.01 * s, 50 - s) for k in kimi.METHODS} for s in range(3)]
    merging = [{"alpha": a, **point(a, 40 + 60 * a)} for a in (0.0, 0.5, 1.0)]
    fig = kimi.long2short_frontier(point(1.0, 100), point(0.95, 43), merging, seeds)
    # merging line + per method (3 seeds, 1 mean) + the two reference models; the zoom has all but the long one
    assert len(fig.axes[0].collections) == 2 * len(kimi.METHODS) + 2
    zoom = fig.axes[0].child_axes[0]
    assert len(zoom.collections) == 2 * len(kimi.METHODS) + 1
    lo, hi = zoom.get_xlim()
    assert lo < 43 < hi < 100  # around the short model and the methods, not the long model
    plt.close(fig)
    curves = {"rl": [[{"step": 5, **point(0.9, 60)}, {"step": 10, **point(0.95, 45)}]] * 2}
    fig = kimi.tradeoff_over_training(curves, long=point(1.0, 100))
    assert len(fig.axes[0].lines) == 2 and fig.axes[0].lines[0].get_xdata()[0] == 100  # starts at the long model
    plt.close(fig)
    with pytest.raises(ValueError):
        kimi.long2short_frontier(point(1, 1), point(1, 1), merging, [])
