"""Tests of the GRPO loop on the tiny model: logging, estimators, checkpoint and resume."""

import pytest
import torch

from rlllm_course.llm.grpo import GRPOConfig, train_grpo

SMALL = dict(prompts_per_step=4, group_size=4, max_new_tokens=40)


def test_grpo_logs_every_quantity():
    _, _, history = train_grpo(GRPOConfig(steps=2, **SMALL), progress=False)
    assert [h["step"] for h in history] == [0, 1]
    for key in ("reward", "accuracy", "format", "length", "policy/kl", "policy/clip_active_frac", "seconds"):
        assert key in history[-1], key
    # reward = accuracy + format_weight * format, averaged over the batch
    assert history[0]["reward"] == pytest.approx(history[0]["accuracy"] + history[0]["format"])
    assert history[0]["policy/kl"] == 0.0  # the first step samples from the reference itself


@pytest.mark.parametrize("advantage", ["rloo", "dr_grpo"])
def test_grpo_other_estimators_run(advantage):
    _, _, history = train_grpo(GRPOConfig(steps=1, advantage=advantage, aggregation="dr_grpo",
                                          beta=0.04, updates_per_batch=2, **SMALL), progress=False)
    assert torch.isfinite(torch.tensor(history[0]["policy/loss"]))


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    # 3 steps in one go == 2 steps, stop, then resume to 3 (same problems, same samples)
    straight, _, h_straight = train_grpo(GRPOConfig(steps=3, **SMALL), progress=False)
    ckpt = str(tmp_path / "run")
    train_grpo(GRPOConfig(steps=2, checkpoint_dir=ckpt, checkpoint_every=1, **SMALL), progress=False)
    resumed, _, h_resumed = train_grpo(GRPOConfig(steps=3, checkpoint_dir=ckpt, **SMALL), progress=False)
    assert [h["step"] for h in h_resumed] == [0, 1, 2]
    assert h_resumed[2]["reward"] == h_straight[2]["reward"]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_grpo_runs_on_countdown():
    # the loop is task-agnostic: rewards come from the task's rule
    _, _, history = train_grpo(GRPOConfig(steps=1, task="countdown", **SMALL), progress=False)
    assert 0.0 <= history[0]["accuracy"] <= 1.0


def test_grpo_config_checks_its_choices():
    with pytest.raises(ValueError, match="advantage"):
        train_grpo(GRPOConfig(steps=1, advantage="ppo"), progress=False)
    with pytest.raises(ValueError, match="task"):
        train_grpo(GRPOConfig(steps=1, task="chess"), progress=False)


def _fresh(config):
    from rlllm_course.llm.model import load_policy
    model, tokenizer = load_policy(config.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.99), weight_decay=0.0)
    return model, tokenizer, optimizer


def test_train_grpo_is_a_loop_of_grpo_step():
    # one train_grpo step == seeding the step's stream, then grpo_step on the step's problems
    from rlllm_course.llm.grpo import grpo_step
    from rlllm_course.llm.tasks import addition_problems
    config = GRPOConfig(steps=1, log_kl=False, **SMALL)
    trained, _, history = train_grpo(config, progress=False)
    model, tokenizer, optimizer = _fresh(config)
    problems = addition_problems(config.prompts_per_step, seed=config.seed, split="train")
    torch.manual_seed(config.seed * 1_000_003)
    log = grpo_step(model, None, optimizer, problems, tokenizer, config)
    assert log["rewards"] == history[0]["rewards"]
    for a, b in zip(trained.parameters(), model.parameters()):
        assert torch.equal(a, b)


def test_grpo_step_reuses_one_pi_old_and_leaves_the_reference_alone():
    # mu = 3 updates against the sampler's log-probs: the last update sees ratios != 1;
    # the reference (requires_grad left on) gets no gradient and does not move
    import copy
    from rlllm_course.llm.grpo import grpo_step
    from rlllm_course.llm.tasks import addition_problems
    config = GRPOConfig(updates_per_batch=3, beta=0.1, lr=1e-3, **SMALL)
    model, tokenizer, optimizer = _fresh(config)
    ref = copy.deepcopy(model)
    before = [p.detach().clone() for p in ref.parameters()]
    torch.manual_seed(0)
    log = grpo_step(model, ref, optimizer, addition_problems(4, seed=3), tokenizer, config)
    assert log["policy/approx_kl"] > 0 and log["policy/ratio"] != 1.0
    assert all(p.grad is None for p in ref.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, ref.parameters()))
    assert len(log["rewards"]) == 4 * config.group_size
