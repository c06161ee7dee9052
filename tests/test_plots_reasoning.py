"""The pictures of module 09: level discovery, NaN handling, shapes of the figures."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rlllm_course.plots import reasoning  # noqa: E402

FORMS = ("none", "guess", "recheck", "other")


def fake_curves(steps=6, levels=(2, 3, 5)):
    rng = np.random.default_rng(0)
    curves = {"step": list(range(steps)), "length": list(rng.uniform(5, 40, steps)),
              "accuracy": list(rng.uniform(0, 1, steps)), "reflection": list(rng.uniform(0, 1, steps)),
              "mixed": list(rng.uniform(0, 0.3, steps))}
    for f in FORMS:
        curves[f"form/{f}"] = [0.25] * steps
    for d in levels:
        for m in ("accuracy", "length", "reflection"):
            curves[f"{m}/level_{d}"] = list(rng.uniform(0, 1, steps))
    return curves


def test_curve_levels_read_the_level_keys_in_numeric_order():
    # "level_10" must sort after "level_9" (numbers, not strings)
    curves = {"accuracy/level_10": [], "accuracy/level_9": [], "length/level_4": []}
    assert reasoning.curve_levels(curves) == [9, 10]


def test_eval_points_count_updates_and_skip_steps_without_the_key():
    history = [{"step": 0}, {"step": 1, "eval/pass@1/level_2": 0.5}, {"step": 3, "eval/pass@1/level_2": 0.75}]
    x, y = reasoning.eval_points(history, "eval/pass@1/level_2")
    assert x.tolist() == [2, 4] and y.tolist() == [0.5, 0.75]  # step s is drawn after s + 1 updates
    assert reasoning.eval_points(history, "eval/missing") == (None, None)


def test_smooth_fills_steps_where_a_level_was_absent():
    # a level missing from one step's batch gives NaN; the curve must not break there
    out = reasoning._smooth([0.0, float("nan"), 1.0], window=1)
    assert out.tolist() == [0.0, 0.5, 1.0]


def test_figures_have_their_panels():
    curves = fake_curves()
    history = [{"step": s, "eval/pass@1/level_2": 0.1 * s} for s in range(6)]
    assert len(reasoning.run_overview([("a", history, curves), ("b", [], curves)]).axes) == 3
    assert len(reasoning.level_panels(curves).axes) == 3
    assert len(reasoning.form_shares(curves, FORMS).axes) == 1
    figures = {"levels": {d: {"pass@1": 0.5, "pass@4": 0.7, "sample_accuracy": 0.4, "reflection": 0.1,
                              "length": 7.0, "sample_length": 9.0} for d in (2, 3)}}
    assert len(reasoning.level_figures(figures, k=4).axes) == 2
    profile = {"forms": dict.fromkeys(FORMS, 0.25), "accuracy_recheck": float("nan"), "accuracy_other": 0.3}
    assert len(reasoning.recheck_profiles({"base": profile}, FORMS).axes) == 2  # a NaN rate draws no label
    assert len(reasoning.consistency_comparison([("a", curves)], {"a": {2: 1.0}, "b": {2: 0.9, 3: 0.5}}).axes) == 2
    plt.close("all")


def test_checker_disagreement_shares_per_level_and_checks_shapes():
    fig = reasoning.checker_disagreement([2, 2, 3, 3], [1, 0, 0, 0], [1, 1, 1, 0])
    heights = sorted(round(p.get_height(), 3) for p in fig.axes[0].patches)
    assert heights == [0.0, 0.5, 0.5, 1.0]  # strict: 0.5, 0.0; substring: 1.0, 0.5
    with pytest.raises(ValueError, match="same shape"):
        reasoning.checker_disagreement([2, 3], [1, 0, 1], [1, 0, 1])
    plt.close("all")
