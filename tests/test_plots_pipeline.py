"""The pictures of module 10: input checks, what the bars encode, shapes of the figures."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rlllm_course.plots import pipeline  # noqa: E402


def figures(p):
    """A run.json-style figures dict with string level keys, as the shipped files have them."""
    return {"overall": {"pass@1": p, "sample_accuracy": p / 2, "mixed": 0.1},
            "levels": {str(d): {"pass@1": p, "sample_accuracy": p / 2, "mixed": 0.1} for d in (2, 3, 5)}}


def test_pipeline_diagram_draws_a_box_per_stage_plus_the_student():
    fig = pipeline.pipeline_diagram()
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert all(stage in texts for stage in pipeline.STAGES)
    assert any("student" in t for t in texts)
    with pytest.raises(ValueError, match="at least two"):
        pipeline.pipeline_diagram(stages=("only one",))
    plt.close("all")


def test_model_summary_skips_missing_metrics():
    # a model without a metric draws a zero-length bar and no label, not a crash
    fig = pipeline.model_summary([("a", {"pass@1": 0.5, "mixed": 0.1}), ("b", {"pass@1": 1.0})],
                                 metrics=("pass@1", "mixed"))
    assert len(fig.axes) == 2
    assert [round(p.get_width(), 3) for p in fig.axes[1].patches] == [0.1, 0.0]
    with pytest.raises(ValueError, match="at least one"):
        pipeline.model_summary([])
    plt.close("all")


def test_logprob_shift_checks_pairs():
    fig = pipeline.logprob_shift({"refs": ([-5.0, -4.0], [-2.0, -3.0]), "other": ([-1.0], [-2.0])})
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="same shape"):
        pipeline.logprob_shift({"refs": ([-5.0, -4.0], [-2.0])})
    plt.close("all")


def test_level_comparison_reads_string_or_int_level_keys():
    # run.json files keep levels as strings, evaluate_levels as ints: both must draw the same bars
    as_str, as_int = figures(0.5), figures(0.5)
    as_int["levels"] = {int(d): f for d, f in as_int["levels"].items()}
    fig = pipeline.level_comparison({"str": as_str, "int": as_int}, metrics=("pass@1",))
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [0.5] * 6
    plt.close("all")


def test_seed_curves_mean_over_seeds():
    runs = {"a": {"0": [{"step": 0, "pass@1": 0.0}, {"step": 5, "pass@1": 1.0}],
                  "1": [{"step": 0, "pass@1": 0.5}, {"step": 5, "pass@1": 0.5}]}}
    fig = pipeline.seed_curves(runs, keys=("pass@1",))
    mean_line = [ln for ln in fig.axes[0].lines if "mean" in ln.get_label()][0]
    assert mean_line.get_ydata().tolist() == [0.25, 0.75]  # the thick line is the mean of the seeds
    plt.close("all")


def test_rejection_reasons_stack_to_one_per_level():
    levels = [2, 2, 2, 2, 5, 5]
    reasons = ["kept", "kept", "wrong", "mixed", "malformed", "kept"]
    fig = pipeline.rejection_reasons(levels, reasons)
    bars = fig.axes[0].patches  # 4 reasons x 2 levels, level by level within each reason
    totals = np.zeros(2)
    for i, p in enumerate(bars):
        totals[i % 2] += p.get_height()
    assert np.allclose(totals, 1.0)
    assert round(bars[0].get_height(), 3) == 0.5 and round(bars[1].get_height(), 3) == 0.5  # kept: 2/4, 1/2
    with pytest.raises(ValueError, match="same shape"):
        pipeline.rejection_reasons([2, 3], ["kept"])
    with pytest.raises(ValueError, match="must be among"):
        pipeline.rejection_reasons([2], ["lost"])
    plt.close("all")


def test_distillation_comparison_bars_are_seed_means():
    per_seed = {"0": {"rl": figures(0.2), "distilled": figures(0.6)},
                "1": {"rl": figures(0.4), "distilled": figures(1.0)}}
    fig = pipeline.distillation_comparison(per_seed)
    heights = sorted({round(p.get_height(), 3) for p in fig.axes[0].patches})
    assert heights == [0.3, 0.8]  # the means of 0.2/0.4 and 0.6/1.0, for every level and overall
    with pytest.raises(ValueError, match="at least one seed"):
        pipeline.distillation_comparison({})
    plt.close("all")
