"""The R1 pipeline's data steps: cold-start set, rejection filter, distillation pairs."""

import json

import pytest
import torch

from rlllm_course.llm.model import SHIPPED_MODELS, load_policy
from rlllm_course.llm.rewards import accuracy_reward, consistency_reward, format_reward
from rlllm_course.llm.tasks import make_prompt
from rlllm_course.reasoning import r1_pipeline
from rlllm_course.reasoning.r1_zero import r1_zero_config
from rlllm_course.reasoning.reflection_study import check_is_clean
from rlllm_course.reasoning.rewards import has_reflection, notation
from rlllm_course.reasoning.tasks import quick_sum, reasoning_problems

P = {"task": "addition", "question": "4785+3561", "answer": "8346", "level": 4, "digits": 4}
RIGHT = "<think>7246 wait 5+1=6,8+6=14,7+5+1=13,4+3+1=8</think><answer>8346</answer>"
MIXED = "<think>7246 wait 5+1=6,八+六=一四,7+5+1=13,4+3+1=8</think><answer>8346</answer>"


def test_cold_start_data_is_readable_right_and_reproducible():
    problems, prompts, responses = r1_pipeline.cold_start_data(300)
    assert len(problems) == len(prompts) == len(responses) == 300
    assert prompts == [make_prompt(p) for p in problems]
    assert format_reward(responses).eq(1).all() and accuracy_reward(responses, problems).eq(1).all()
    assert consistency_reward(responses).eq(1).all()
    assert all(notation(r) == "arabic" and has_reflection(r) for r in responses)
    # the first guess is the quick sum about half the time where it differs from the answer
    long_ones = [(p, r) for p, r in zip(problems, responses) if p["level"] >= 4]
    wrong = [r.split("<think>")[1].split(" ")[0] != p["answer"] for p, r in long_ones]
    assert 0.35 < sum(wrong) / len(wrong) < 0.65
    for p, r in long_ones:
        a, b = map(int, p["question"].split("+"))
        assert r.split("<think>")[1].split(" ")[0] in (p["answer"], quick_sum(a, b))
    assert all(check_is_clean(r, p) for p, r in zip(problems, responses))  # every column right
    assert r1_pipeline.cold_start_data(300)[2] == responses
    assert r1_pipeline.cold_start_data(300, seed=7)[2] != responses


def test_rejection_filter_keeps_only_right_well_formed_readable_answers():
    completions = [RIGHT, MIXED, RIGHT.replace("<answer>8346", "<answer>7246"),
                   "<answer>8346</answer>", RIGHT + " extra", "<think></think><answer>8346</answer>"]
    keep = r1_pipeline.rejection_filter(completions, [P] * len(completions))
    assert keep.dtype == torch.bool
    # an empty CoT has no words: consistency 0, not readable reasoning
    assert keep.tolist() == [True, False, False, False, False, False]
    lax = r1_pipeline.rejection_filter(completions, [P] * len(completions), min_consistency=0.5)
    assert lax.tolist() == [True, True, False, False, False, False]
    zero = r1_pipeline.rejection_filter(completions, [P] * len(completions), min_consistency=0.0)
    assert zero.tolist() == [True, True, False, False, False, True]


@pytest.mark.parametrize("bad, match", [
    (dict(completions=RIGHT, problems=[P]), "list of strings"),
    (dict(completions=[RIGHT, RIGHT], problems=[P]), "one entry per completion"),
    (dict(completions=[RIGHT], problems=[P], min_consistency=1.5), "min_consistency"),
])
def test_rejection_filter_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        r1_pipeline.rejection_filter(**bad)


def test_distillation_data_dedupes_caps_and_drops_empty_groups():
    q = dict(P, question="1+2", answer="3", level=1, digits=1)
    completions = [RIGHT, " " + RIGHT + "\n", "x", MIXED,      # problem P: one unique kept
                   "a", "b", "c", "d",                         # q: none kept
                   RIGHT, MIXED, "e", RIGHT]                    # P again: two unique kept
    keep = [1, 1, 0, 1, 0, 0, 0, 0, 1, 1, 0, 1]
    prompts, responses, problems = r1_pipeline.distillation_data([P, q, P], completions, keep, group_size=4,
                                                                 max_per_prompt=3)
    assert problems == [P, P, P, P]
    assert prompts == [make_prompt(P)] * 4
    assert sorted(responses[:2]) == sorted([RIGHT, MIXED]) and sorted(responses[2:]) == sorted([RIGHT, MIXED])
    _, one, _ = r1_pipeline.distillation_data([P, q, P], completions, keep, group_size=4, max_per_prompt=1)
    assert len(one) == 2 and set(one) <= {RIGHT, MIXED}
    draws = {tuple(r1_pipeline.distillation_data([P, q, P], completions, keep, 4, 1, seed=s)[1]) for s in range(20)}
    assert len(draws) > 1  # the one kept per prompt is drawn, not always the first
    assert r1_pipeline.distillation_data([P, q, P], completions, keep, 4, 1, seed=3)[1] == \
        r1_pipeline.distillation_data([P, q, P], completions, keep, 4, 1, seed=3)[1]


@pytest.mark.parametrize("bad, match", [
    (dict(completions=["a"] * 7, keep=[1] * 7, group_size=4), "group_size"),
    (dict(completions=["a"] * 8, keep=[1] * 7, group_size=4), "group_size"),
    (dict(completions=["a"] * 8, keep=[1] * 8, group_size=4, max_per_prompt=0), "max_per_prompt"),
])
def test_distillation_data_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        r1_pipeline.distillation_data([P, P], **bad)


def test_rejection_sample_returns_every_sample_and_the_filter_on_each():
    model, tokenizer = load_policy("reasoning")
    problems = reasoning_problems(5, seed=3)
    torch.manual_seed(0)
    completions, keep = r1_pipeline.rejection_sample(model, tokenizer, problems, n_samples=4, batch_prompts=2)
    assert len(completions) == 20 and keep.shape == (20,)
    repeated = [p for p in problems for _ in range(4)]
    assert keep.tolist() == r1_pipeline.rejection_filter(completions, repeated).tolist()
    torch.manual_seed(0)
    again, _ = r1_pipeline.rejection_sample(model, tokenizer, problems, n_samples=4, batch_prompts=2)
    assert again == completions


def test_cold_start_fine_tunes_the_base_on_the_curated_set():
    before, tokenizer = load_policy("reasoning")
    model, _, history = r1_pipeline.cold_start(seed=0, n=32, progress=False, epochs=1.0)
    assert len(history) == 1  # 32 examples, batch 32, one epoch
    moved = [not torch.equal(a, b) for a, b in zip(before.state_dict().values(), model.state_dict().values())]
    assert all(moved)
    assert r1_pipeline.cold_start_config(3).seed == 3 and r1_pipeline.cold_start_config(lr=1e-4).lr == 1e-4


def test_reasoning_rl_starts_from_the_cold_start_with_the_consistency_reward():
    config = r1_pipeline.reasoning_rl_config()
    assert config.model == "r1-cold-start" and config.consistency_weight == 1.0
    assert config.steps * 2 == r1_zero_config().steps  # half of R1-Zero's steps
    assert r1_pipeline.reasoning_rl_config(steps=3).steps == 3


def test_load_figures_names_the_build_script_when_missing():
    with pytest.raises(FileNotFoundError, match="build_r1_pipeline"):
        r1_pipeline.load_figures("no-such-figures")


def shipped_run(name):
    return json.loads((SHIPPED_MODELS[name] / "run.json").read_text())


def test_shipped_pipeline_stages_keep_their_promises():
    base = json.loads((SHIPPED_MODELS["reasoning"] / "base_metrics.json").read_text())
    cold, rl = shipped_run("r1-cold-start"), shipped_run("r1-cold-start-rl")
    zero, zero_lang = shipped_run("r1-zero"), shipped_run("r1-zero-consistency")
    # the cold start turns the base's rare re-check into its habit
    assert base["level_5"]["pass@1"] <= 0.10 and cold["eval"]["levels"]["5"]["pass@1"] >= 0.8
    assert cold["eval"]["overall"]["reflection"] >= 10 * base["overall"]["reflection"]
    # reasoning RL with the consistency reward: more accurate samples, fewer mixed CoTs, in half the steps
    assert rl["eval"]["overall"]["sample_accuracy"] > cold["eval"]["overall"]["sample_accuracy"]
    assert rl["eval"]["overall"]["mixed"] < cold["eval"]["overall"]["mixed"]
    assert rl["eval"]["overall"]["mixed"] < zero["eval"]["overall"]["mixed"] / 5
    assert rl["config"]["steps"] * 2 == zero_lang["config"]["steps"]
    # rejection sampling + SFT of a fresh base keeps the teacher's accuracy and readability
    rs = shipped_run("r1-rs-sft")
    assert rs["eval"]["overall"]["pass@1"] >= rl["eval"]["overall"]["pass@1"] - 0.05
    assert rs["eval"]["overall"]["mixed"] <= 0.05


def test_shipped_teacher_samples_and_their_filter():
    shipped = r1_pipeline.load_figures("teacher_samples")
    problems = reasoning_problems(shipped["n_prompts"], seed=shipped["seed"], split="train")
    assert len(shipped["completions"]) == shipped["n_prompts"] * shipped["n_samples"]
    repeated = [p for p in problems for _ in range(shipped["n_samples"])]
    keep = r1_pipeline.rejection_filter(shipped["completions"], repeated)
    assert 0.3 < keep.float().mean().item() < 1.0  # the filter has work to do, and leaves plenty
    kept = [c for c, k in zip(shipped["completions"], keep.tolist()) if k]
    assert all(notation(c) == "arabic" for c in kept)


def test_shipped_seed_curves_and_distillation_cover_three_seeds():
    seeds = r1_pipeline.load_figures("seeds")
    for key in ("r1-zero-consistency", "r1-cold-start-rl"):
        assert sorted(seeds[key]) == ["0", "1", "2"]
        for points in seeds[key].values():
            assert points[0]["step"] == 0 and all(0.0 <= p["pass@1"] <= 1.0 for p in points)
    assert seeds["r1-zero-consistency"]["0"][-1]["step"] == 60 and seeds["r1-cold-start-rl"]["0"][-1]["step"] == 30
    distill = r1_pipeline.load_figures("distillation")
    assert sorted(distill) == ["0", "1", "2"]
    for f in distill.values():
        # the same wall time, within the noise of one timing probe
        assert abs(f["sft_seconds"] - f["budget_seconds"]) <= 0.35 * f["budget_seconds"]
        assert set(f["rl"]["levels"]) == set(f["distilled"]["levels"]) == {"2", "3", "4", "5"}
    small, big = load_policy("r1-distill-small")[0], load_policy("r1-cold-start-rl")[0]
    assert sum(p.numel() for p in small.parameters()) <= sum(p.numel() for p in big.parameters()) / 4


def test_curve_starts_at_the_initial_model_and_keeps_every_evaluation():
    from rlllm_course.reasoning.pipeline_study import curve

    history = [{"step": 0, "seconds": 1.0}, {"step": 1, "seconds": 2.5, "eval/pass@1": 0.5, "eval/pass@1/level_5": 0.25},
               {"step": 2, "seconds": 3.0}]
    points = curve(history, {"pass@1": 0.1, "pass@1/level_5": 0.0})
    assert points == [{"pass@1": 0.1, "pass@1/level_5": 0.0, "step": 0, "seconds": 0.0},
                      {"step": 2, "seconds": 2.5, "pass@1": 0.5, "pass@1/level_5": 0.25}]


def test_distillation_run_gives_the_student_the_rl_wall_time():
    from rlllm_course.reasoning import pipeline_study

    student, _, f = pipeline_study.distillation_run(0, progress=False, n_eval=2, steps=2, prompts_per_step=4,
                                                    group_size=2, max_new_tokens=48)
    assert f["sft_steps"] >= 1 and f["examples"] > 100
    assert f["sft_seconds"] <= 3 * f["budget_seconds"] + 1.0  # about the budget (a rough probe at this size)
    assert f["rl"]["per_level"] == f["distilled"]["per_level"] == 2
    assert sum(p.numel() for p in student.parameters()) < 300_000
