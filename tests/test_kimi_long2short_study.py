"""long2short four ways (reasoning.kimi_long2short): the merge, and the shipped figures against the code."""

import pytest
import torch

from rlllm_course.llm.model import load_policy
from rlllm_course.llm.tasks import make_prompt
from rlllm_course.reasoning import kimi_long2short as l2s
from rlllm_course.reasoning.long2short import dpo_pairs, shortest_correct
from rlllm_course.reasoning.tasks import reasoning_problems


def test_merging_interpolates_between_the_long_and_the_short_model():
    long, _ = load_policy(l2s.LONG)
    short, _ = load_policy(l2s.SHORT)
    for alpha in (0.0, 0.3, 1.0):
        model, _ = l2s.merged(alpha)
        for name, p in model.state_dict().items():
            expected = alpha * long.state_dict()[name] + (1 - alpha) * short.state_dict()[name]
            assert torch.allclose(p, expected, atol=1e-6), (alpha, name)


@pytest.mark.parametrize("seed", l2s.SEEDS)
def test_the_shipped_figures_follow_from_the_shipped_samples(seed):
    shipped = l2s.load_figures(seed)
    samples = shipped["samples"]
    G = l2s.N_SAMPLES
    assert len(samples["completions"]) == l2s.N_PROMPTS * G
    # the SFT set and the DPO pairs are what the code builds from these samples
    picks = shortest_correct(samples["completions"], samples["correct"], samples["lengths"], G)
    assert shipped["rs_sft"]["examples"] == sum(c is not None for c in picks)
    problems = reasoning_problems(l2s.N_PROMPTS, seed=l2s.SAMPLE_SEED + seed, split="train")
    pairs = dpo_pairs([make_prompt(p) for p in problems], samples["completions"], samples["correct"],
                      samples["lengths"], G)
    assert shipped["dpo"]["pairs"] == len(pairs) > 0
    for method in ("rs_sft", "dpo", "rl", "length_rl"):
        figures = shipped[method]
        assert 0.0 <= figures["pass@1"] <= 1.0 and figures["length"] > 0
        assert set(figures["levels"]) == {"2", "3", "4", "5"}
    for name in ("rl", "length_rl"):
        assert [p["step"] for p in shipped[name]["curve"]] == [5, 10, 15, 20, 25, 30]
    assert shipped["rl"]["max_new_tokens"] < shipped["length_rl"]["max_new_tokens"]


def test_the_merging_curve_ends_at_the_two_models():
    shipped = l2s.load_figures(0)
    curve = {point["alpha"]: point for point in shipped["merging"]}
    assert sorted(curve) == list(l2s.ALPHAS)
    # alpha = 1 is the long model's weights exactly, alpha = 0 the short one's: greedy figures agree
    for alpha, model in ((1.0, "long"), (0.0, "short")):
        assert curve[alpha]["pass@1"] == shipped[model]["pass@1"]
        assert curve[alpha]["length"] == shipped[model]["length"]
    assert shipped["long"]["length"] > shipped["short"]["length"]


def test_an_interrupted_build_resumes_from_its_finished_parts(tmp_path, monkeypatch):
    calls = []

    def fake_figures(model, tokenizer):
        calls.append(("figures", model))
        return {"pass@1": 0.5, "length": 10.0, "levels": {}}

    def trained(name):
        def train(samples_or_seed, *args):
            calls.append((name, args[-1]))  # the checkpoint dir it was given
            if name == "dpo" and fail["dpo"]:
                raise KeyboardInterrupt
            return (name, None, 7) if name != "rl" else (name, None, [{"step": 4, "eval/pass@1": 0.5,
                                                                        "eval/length": 9.0}])
        return train

    fail = {"dpo": True}
    monkeypatch.setattr(l2s, "figures", fake_figures)
    monkeypatch.setattr(l2s, "load_policy", lambda name: (name, None))
    monkeypatch.setattr(l2s, "merged", lambda alpha: (f"merged {alpha}", None))
    monkeypatch.setattr(l2s, "long_samples", lambda seed: calls.append(("samples", seed)) or
                        {"completions": ["a"], "correct": [1], "lengths": [2], "prompts": ["p"], "problems": []})
    monkeypatch.setattr(l2s, "shortest_rs_sft", trained("rs_sft"))
    monkeypatch.setattr(l2s, "long2short_dpo", trained("dpo"))
    monkeypatch.setattr(l2s, "long2short_rl", trained("rl"))
    with pytest.raises(KeyboardInterrupt):
        l2s.seed_figures(1, merging=True, progress=False, work_dir=tmp_path)
    assert ("dpo", str(tmp_path / "dpo-checkpoint")) in calls  # the training was given a checkpoint
    first = len(calls)
    fail["dpo"] = False
    out = l2s.seed_figures(1, merging=True, progress=False, work_dir=tmp_path)
    rerun = [name for name, _ in calls[first:]]
    # the models measured, the merging sweep, the samples and the SFT are read back, not redone
    assert "samples" not in rerun and "rs_sft" not in rerun and rerun.count("figures") == 3, rerun  # DPO and the two RL runs
    assert rerun.count("rl") == 2 and out["rs_sft"]["examples"] == 7 and len(out["merging"]) == len(l2s.ALPHAS)
    assert out["rl"]["curve"] == [{"step": 5, "pass@1": 0.5, "length": 9.0}]
    assert l2s.seed_figures(1, merging=True, progress=False, work_dir=tmp_path) == out


def test_the_shipped_figures_say_what_the_notebook_reads_from_them():
    runs = [l2s.load_figures(seed) for seed in l2s.SEEDS]
    long, short = runs[0]["long"], runs[0]["short"]
    # the long model's extra checks buy nothing: the short model is about as accurate at half the tokens
    assert long["length"] > 1.8 * short["length"] and short["pass@1"] >= long["pass@1"] - 0.03
    samples = runs[0]["samples"]
    lengths = torch.tensor(samples["lengths"]).view(-1, l2s.N_SAMPLES).float()
    assert 1.5 < (lengths.max(1).values / lengths.min(1).values).mean() < 2.5  # "a factor of about two"
    for run in runs:
        for method in ("rs_sft", "dpo", "rl", "length_rl"):  # each lands near the short model's length
            assert run[method]["length"] < 1.1 * short["length"], (run["seed"], method)
            assert run[method]["pass@1"] >= long["pass@1"] - 0.03, (run["seed"], method)
        # the smaller cap adds nothing the length reward alone does not do
        assert abs(run["rl"]["curve"][-1]["length"] - run["length_rl"]["curve"][-1]["length"]) < 2
