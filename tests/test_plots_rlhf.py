"""The pictures of modules 13 and 14: what each one draws from a runs dict."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rlllm_course.plots import rlhf as plots  # noqa: E402


def fake_run(seed, golds, kls):
    """A result with evaluations every 2 steps: gold = golds[i], score = i, batch KL = kls[step]."""
    history = []
    for step, kl in enumerate(kls):
        log = {"step": step, "kl": kl}
        if step % 2 == 1:
            i = step // 2
            log.update({"eval/gold": golds[i] + seed, "eval/score": float(i)})
        history.append(log)
    return {"seed": seed, "history": history}


START = {"gold": -1.0, "score": -2.0}


def test_training_curves_start_at_the_base_and_band_the_seeds():
    runs = {"grpo": [fake_run(0, [0.0, 1.0], [0, 0, 0, 0]), fake_run(2, [0.0, 1.0], [0, 0, 0, 0])]}
    fig, axes = plt.subplots(1, 2)
    plots.training_curves(axes, runs, START)
    score_line, gold_line = axes[0].get_lines()[0], axes[1].get_lines()[0]
    assert list(score_line.get_xdata()) == [0, 2, 4]
    assert list(score_line.get_ydata()) == [-2.0, 0.0, 1.0]
    assert list(gold_line.get_ydata()) == [-1.0, 1.0, 2.0]  # the mean of seeds +0 and +2
    assert len(axes[1].collections) == 1  # the band between the seeds
    assert score_line.get_color() == "C2"
    plt.close("all")


def test_reward_against_kl_puts_the_base_at_zero_and_takes_square_roots():
    runs = {"ppo-beta-0.05": [fake_run(0, [0.5, 0.25], [1.0, 3.0, 4.0, 4.0])]}
    fig, ax = plt.subplots()
    plots.reward_against_kl(ax, runs, START, key="gold", extra={"best-of-n": ([0.0, 1.0], [-1.0, 0.0])})
    line = ax.get_lines()[0]
    assert np.allclose(line.get_xdata(), [0.0, np.sqrt(2.0), 2.0])  # windows: mean(1, 3) = 2, mean(4, 4) = 4
    assert list(line.get_ydata()) == [-1.0, 0.5, 0.25]
    assert np.allclose(ax.get_lines()[1].get_xdata(), [0.0, 1.0])
    plt.close("all")


def test_parts_bars_draw_one_group_per_part_and_a_bar_per_column():
    figures = {"kinds": {"right": 0.5, "wrong": 0.3, "refusal": 0.2}, "hedged": 0.1, "rude": 0.0, "openers": 1.2}
    fig, ax = plt.subplots()
    plots.parts_bars(ax, {"base": figures, "grpo": figures})
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 2 * len(plots.PARTS)
    assert heights[:len(plots.PARTS)] == [0.5, 0.3, 0.2, 0.1, 0.0, 1.2]
    plt.close("all")


def test_the_diagram_shows_every_model_and_its_size():
    fig = plots.four_models_diagram({"policy": 1_000_000, "reference": 1_000_000, "reward model": 2_000_000,
                                     "critic": 2_000_000})
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for part in ("policy", "reference", "reward model", "critic", "1.00M", "2.00M"):
        assert part in texts
    plt.close("all")
