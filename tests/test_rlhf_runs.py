"""The RLHF runs of modules 13 and 14 (rlhf.rlhf_runs): configs, trimming, KL at evaluations, the shipped runs."""

import json
import math

import pytest

from rlllm_course.rlhf import rlhf_runs
from rlllm_course.rlhf.rlhf_ppo import RLHFConfig, check_config


def test_every_run_is_the_default_config_with_its_own_changes():
    default = RLHFConfig()
    for name, changes in rlhf_runs.RUNS.items():
        config = rlhf_runs.run_config(name, seed=2)
        check_config(config)
        assert config.seed == 2 and config.steps == rlhf_runs.STEPS and config.n_eval == rlhf_runs.N_EVAL
        for field in ("lr", "reward_model", "policy", "ppo_epochs", "minibatches", "max_new_tokens", "eval_seed"):
            assert getattr(config, field) == getattr(default, field), (name, field)
        # every run reads the same number of responses per step
        assert config.prompts_per_step * config.group_size == default.prompts_per_step
    assert rlhf_runs.run_config("grpo").advantage == "grpo"
    assert [rlhf_runs.run_config(n).beta for n in ("ppo-beta-0.01", "ppo-beta-0.05", "ppo-beta-0.2")] == [0.01, 0.05, 0.2]
    with pytest.raises(ValueError, match="name must be one of"):
        rlhf_runs.run_config("ppo")


def test_trim_keeps_the_figures_and_a_few_samples():
    history = [{"step": 0, "score": 0.1, "kl": 0.0, "completions": ["a"] * 32, "scores": [0.0] * 32, "golds": [0.0],
                "policy/loss": 0.3, "seconds": 1.0, "eval_seconds": 0.0},
               {"step": 1, "score": 0.2, "kl": 0.5, "completions": ["b"], "eval/gold": 0.3, "eval/kinds": {"right": 1.0},
                "eval/completions": [str(i) for i in range(300)], "seconds": 2.0, "eval_seconds": 0.5}]
    trimmed = rlhf_runs.trim(history)
    assert trimmed[0] == {"step": 0, "score": 0.1, "kl": 0.0, "seconds": 1.0, "eval_seconds": 0.0}
    assert trimmed[1]["eval/gold"] == 0.3 and trimmed[1]["eval/kinds"] == {"right": 1.0}
    assert trimmed[1]["eval/completions"] == [str(i) for i in range(rlhf_runs.KEPT_COMPLETIONS)]
    assert "completions" not in trimmed[1]
    json.dumps(trimmed)  # a shipped run is JSON


def test_kl_at_evals_averages_the_batches_since_the_previous_evaluation():
    history = [{"step": 0, "kl": 1.0}, {"step": 1, "kl": 3.0, "eval/gold": 0.0}, {"step": 2, "kl": 5.0},
               {"step": 3, "kl": 6.0}, {"step": 4, "kl": 10.0, "eval/gold": 0.1}, {"step": 5, "kl": 99.0}]
    assert rlhf_runs.kl_at_evals(history) == ([2, 5], [2.0, 7.0])


def test_a_missing_run_names_the_script_that_builds_it(tmp_path, monkeypatch):
    monkeypatch.setattr(rlhf_runs, "RUNS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="scripts/build_rlhf_runs.py"):
        rlhf_runs.load_runs(["grpo"], [0])


def test_the_shipped_runs_are_complete_and_show_over_optimization():
    runs, start = rlhf_runs.load_runs(), rlhf_runs.load_start()
    assert set(runs) == set(rlhf_runs.NAMES)
    for name, results in runs.items():
        assert [r["seed"] for r in results] == list(rlhf_runs.SEEDS)
        for r in results:
            evals = [log for log in r["history"] if "eval/gold" in log]
            if name == "dpo":
                assert r["config"] == {**r["config"], **rlhf_runs.DPO_CONFIG} and r["pairs"] == rlhf_runs.DPO_PAIRS
                assert len(r["history"]) == rlhf_runs.DPO_PAIRS // rlhf_runs.DPO_CONFIG["batch_size"]
                assert len(evals) == len(r["history"]) // rlhf_runs.DPO_EVAL_EVERY
                assert all(log["eval/kl"] > 0 for log in evals[1:])
            else:
                assert r["config"] == {**r["config"], **rlhf_runs.RUNS[name]}
                assert [log["step"] for log in r["history"]] == list(range(rlhf_runs.STEPS))
                assert len(evals) == rlhf_runs.STEPS // rlhf_runs.EVAL_EVERY
                assert evals[-1]["eval/score"] > start["score"] + 0.2  # PPO and GRPO optimize the proxy
            assert len(evals[-1]["eval/completions"]) == rlhf_runs.KEPT_COMPLETIONS
            assert ("critic" in r["models"]) == name.startswith("ppo")
    final = lambda name, key: sum([log for log in r["history"] if "eval/gold" in log][-1][key]
                                  for r in runs[name]) / len(runs[name])
    # the smallest KL coefficient ends with the lowest gold reward, below the base's; the largest above it
    assert final("ppo-beta-0.01", "eval/gold") < start["gold"] < final("ppo-beta-0.2", "eval/gold")
    assert len(start["completions"]) == rlhf_runs.KEPT_COMPLETIONS
    bon = rlhf_runs.load_best_of_n()
    assert bon["n"] == [1, 2, 4, 8, 16, 32] and bon["questions"] == rlhf_runs.N_EVAL
    assert bon["proxy"] == sorted(bon["proxy"])  # best-of-n raises the proxy with n


def test_train_run_writes_a_trimmed_run_and_cleans_its_checkpoint(base_dir, tmp_path):
    from rlllm_course.rlhf import reward_model as rmod
    rm, tokenizer = rmod.load_reward_model(str(base_dir), seed=1)
    rm.save_pretrained(tmp_path / "rm")
    tokenizer.save_pretrained(tmp_path / "rm")
    out = tmp_path / "grpo-0.json"
    result = rlhf_runs.train_run("grpo", 0, out=out, progress=False, policy=str(base_dir),
                                 reward_model=str(tmp_path / "rm"), steps=2, prompts_per_step=2, minibatches=2,
                                 ppo_epochs=1, max_new_tokens=8, eval_every=1, n_eval=4, num_threads=1)
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["config"]["checkpoint_dir"] == "" and saved["config"]["advantage"] == "grpo"
    assert not (tmp_path / "grpo-0.json.checkpoint").exists()
    assert set(saved["models"]) == {"policy", "reference", "reward model"} and saved["peak_rss_mb"] > 0
    assert [log["step"] for log in saved["history"]] == [0, 1] and "eval/gold" in saved["history"][1]
    assert "completions" not in saved["history"][0]


def test_a_dpo_run_logs_held_out_figures_kl_and_the_pairs_log_probs(tmp_path):
    out = tmp_path / "dpo-0.json"
    result = rlhf_runs.train_dpo_run(0, out=out, progress=False, n_pairs=32, n_eval=8, n_heldout_pairs=6)
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result)) and not (tmp_path / "dpo-0.json.checkpoint").exists()
    history = saved["history"]
    assert len(history) == 2 and "eval/gold" in history[-1]  # 32 pairs, 16 a step; evaluated after the last
    last = history[-1]
    for key in ("eval/kl", "eval/score", "eval/logp_chosen", "eval/ref_logp_chosen", "dpo/margin", "dpo/logp_chosen"):
        assert key in last, key
    assert last["eval/kl"] > -0.5 and last["eval/ref_logp_chosen"] < 0 and last["eval/logp_rejected"] < 0
    assert saved["train_seconds"] > 0 and set(saved["models"]) == {"policy", "reference"}
    assert saved["config"]["beta"] == rlhf_runs.DPO_CONFIG["beta"] and saved["pairs"] == 32


def test_best_of_n_figures_start_at_one_sample_and_cost_log_n_in_kl():
    figures = rlhf_runs.best_of_n_figures(n_eval=4, samples=4)
    assert figures["n"] == [1, 2, 4] and figures["kl"][0] == 0.0
    assert figures["kl"][2] == pytest.approx(math.log(4) - 3 / 4)
    assert figures["proxy"][0] <= figures["proxy"][1] <= figures["proxy"][2]  # the pick maximises the proxy
    assert figures["questions"] == 4 and figures["samples"] == 4
