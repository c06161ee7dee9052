"""The pictures of module 12: what each one draws, and its input checks."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rlllm_course.plots import reward_model as plots  # noqa: E402
from rlllm_course.rlhf.best_of_n import best_of_n_curve  # noqa: E402

import torch  # noqa: E402


def test_labeller_curve_bins_the_labels_and_draws_the_sigmoid():
    # labels that follow the labeller exactly: every bin's share sits near sigmoid(delta / T)
    rng = np.random.default_rng(0)
    ga, gb = rng.normal(size=4000), rng.normal(size=4000)
    p = 1 / (1 + np.exp(-(ga - gb) / 0.5))
    labels = rng.random(4000) < p
    fig, ax = plt.subplots()
    plots.labeller_curve(ax, ga, gb, labels, bins=8)
    points = [c for c in ax.containers]  # one errorbar per bin
    assert len(points) == 8
    for container in points:
        x, y = container.lines[0].get_xydata()[0]
        assert abs(y - 1 / (1 + np.exp(-x / 0.5))) < 0.08
    with pytest.raises(ValueError, match="shape"):
        plots.labeller_curve(ax, ga, gb[:10], labels)
    plt.close("all")


def test_accuracy_curve_draws_the_points_and_the_reference_lines():
    fig, ax = plt.subplots()
    plots.accuracy_curve(ax, [{"pairs": 100, "accuracy": 0.6}, {"pairs": 200, "accuracy": 0.7}], 0.8, 0.75, 0.65)
    labels = [line.get_label() for line in ax.get_lines()]
    assert any("80.0%" in s for s in labels) and any("75.0%" in s for s in labels) and any("65.0%" in s for s in labels)
    assert list(ax.get_lines()[0].get_ydata()) == [0.6, 0.7]
    fig.canvas.draw()
    plt.close("all")


def test_probe_bars_put_both_scorers_on_one_scale_centred_on_the_right_answer():
    table = {"right": {"score": 2.0, "gold": 1.0}, "wrong": {"score": 0.0, "gold": -1.0},
             "refusal": {"score": 1.0, "gold": 0.0}, "right beats wrong": {2: 1.0}}
    fig, ax = plt.subplots()
    plots.probe_bars(ax, table)
    widths = [round(p.get_width(), 6) for p in ax.patches]
    # gold: 0, -2, -1; the model's -2, -1, ... rescaled by max|gold| / max|score| = 1
    assert widths == [0.0, -2.0, -1.0, 0.0, -2.0, -1.0]
    plt.close("all")


def test_best_of_n_plot_puts_gold_on_its_own_axis_at_sqrt_kl():
    proxy = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    gold = torch.tensor([[0.0, 2.0, 1.0, -1.0]])
    curve = best_of_n_curve(proxy, gold, [1, 2, 4])
    fig, ax = plt.subplots()
    gold_ax = plots.best_of_n_plot(ax, curve)
    assert gold_ax is not ax
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), np.sqrt(curve["kl"]))
    np.testing.assert_allclose(gold_ax.get_lines()[0].get_ydata(), curve["gold"])
    fig.canvas.draw()  # the labels' mathtext parses
    plt.close("all")


def test_right_beats_wrong_draws_one_line_per_kind_of_error():
    table = {"right beats wrong": {1: 1.0, 2: 0.9}, "right beats a slip": {1: 0.8, 2: 0.5}}
    fig, ax = plt.subplots()
    plots.right_beats_wrong(ax, table)
    lines = [line for line in ax.get_lines() if line.get_label() in table]
    assert [list(line.get_ydata()) for line in lines] == [[1.0, 0.9], [0.8, 0.5]]
    plt.close("all")


def test_accuracy_by_kind_puts_each_kind_beside_its_ceiling():
    fig, ax = plt.subplots()
    plots.accuracy_by_kind(ax, {"rude": {"pairs": 10, "accuracy": 0.9, "ceiling": 0.95},
                                "openers": {"pairs": 20, "accuracy": 0.55, "ceiling": 0.6}})
    assert [round(p.get_height(), 6) for p in ax.patches] == [0.95, 0.6, 0.9, 0.55]
    fig.canvas.draw()
    plt.close("all")
