import json
import math

import pytest

from rlllm_course.llm.grpo import GRPOConfig, train_grpo
from rlllm_course.llm.model import SHIPPED_MODELS
from rlllm_course.llm.rewards import accuracy_reward, consistency_reward, format_reward
from rlllm_course.reasoning.r1_zero import level_evaluator, load_run, r1_zero_config, training_curves
from rlllm_course.reasoning.reflection_study import FORMS
from rlllm_course.reasoning.tasks import levelled_eval_set, reasoning_problems


@pytest.fixture(scope="module")
def run():
    config = r1_zero_config(model="reasoning-small", steps=2, prompts_per_step=4, group_size=2,
                            max_new_tokens=40, consistency_weight=0.5, eval_every=2)
    _, _, history = train_grpo(config, progress=False, evaluator=level_evaluator(levelled_eval_set(2)))
    return config, history


def test_history_rows_and_the_consistency_term(run):
    config, history = run
    problems = reasoning_problems(config.steps * config.prompts_per_step, seed=config.seed)
    for log in history:
        texts = log["completions"]
        assert len(texts) == len(log["correct"]) == len(log["lengths"]) == 8
        batch = [p for p in problems[log["step"] * 4:(log["step"] + 1) * 4] for _ in range(2)]
        want = (accuracy_reward(texts, batch) + format_reward(texts) + 0.5 * consistency_reward(texts))
        assert log["rewards"] == pytest.approx(want.tolist(), abs=1e-6)
        assert log["correct"] == accuracy_reward(texts, batch).tolist()
    assert "eval/pass@1/level_5" in history[-1] and "eval/pass@1" in history[-1]


def test_training_curves(run):
    config, history = run
    curves = training_curves(history, config)
    assert curves["step"] == [0, 1]
    for i, log in enumerate(history):
        assert sum(curves[f"form/{f}"][i] for f in FORMS) == pytest.approx(1.0)
        assert curves["length"][i] == pytest.approx(sum(log["lengths"]) / 8)
        per_level = [curves[f"accuracy/level_{d}"][i] for d in (2, 3, 4, 5)]
        assert all(math.isnan(v) or 0.0 <= v <= 1.0 for v in per_level)


def test_load_run_is_an_error_for_a_model_without_a_run(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_run(str(tmp_path))


def test_shipped_runs_reproduce_the_r1_zero_curves():
    base = json.loads((SHIPPED_MODELS["reasoning"] / "base_metrics.json").read_text())
    history, run = load_run("r1-zero")
    hard = run["eval"]["levels"]["5"]
    assert base["level_5"]["pass@1"] <= 0.10 and hard["pass@1"] >= 0.60  # pass@1 climbs
    assert hard["sample_length"] >= 1.5 * base["level_5"]["sample_length"]  # answers grow longer
    assert run["eval"]["overall"]["reflection"] >= 5 * base["overall"]["reflection"]  # re-checks
    config = GRPOConfig(**run["config"])
    curves = training_curves(history, config)
    assert len(curves["step"]) == config.steps and curves["reflection"][-1] > curves["reflection"][0]
    # R1's consistency reward: the same run, nearly no mixed chain of thought left
    _, consistent = load_run("r1-zero-consistency")
    assert consistent["eval"]["overall"]["mixed"] < run["eval"]["overall"]["mixed"] / 5


def test_train_run_saves_a_loadable_run_and_times_its_evaluations(tmp_path):
    from rlllm_course.llm.model import load_policy
    from rlllm_course.reasoning.r1_zero import train_run

    config = r1_zero_config(model="reasoning-small", steps=2, prompts_per_step=2, group_size=2, max_new_tokens=24,
                            eval_every=1)
    model, _, history, run = train_run(config, tmp_path / "run", n_eval=1, progress=False)
    assert 0 < history[-1]["eval_seconds"] < history[-1]["seconds"]
    assert history[0]["eval_seconds"] <= history[1]["eval_seconds"]  # cumulative
    saved_history, saved = load_run(str(tmp_path / "run"))
    assert [h["step"] for h in saved_history] == [0, 1] and "eval/pass@1/level_5" in saved_history[-1]
    assert saved["eval"]["per_level"] == 1 and set(saved["eval"]["levels"]) == {"2", "3", "4", "5"}
    assert GRPOConfig(**saved["config"]).checkpoint_dir == ""  # no local path in the shipped config
    assert not (tmp_path / "run" / "checkpoint").exists()
    reloaded, _ = load_policy(str(tmp_path / "run"))
    for a, b in zip(model.state_dict().values(), reloaded.state_dict().values()):
        assert (a == b).all()
    _, _, _, no_eval = train_run(config, n_eval=0, progress=False)
    assert no_eval["eval"] is None


def test_run_figures_keys_levels_as_the_json_file_does():
    from rlllm_course.llm.model import load_policy
    from rlllm_course.reasoning.r1_zero import run_figures

    figures = run_figures(*load_policy("reasoning-small"), n_eval=1)
    assert figures == json.loads(json.dumps(figures))  # the same in memory as read back from run.json
