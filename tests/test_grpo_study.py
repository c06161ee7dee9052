"""Tests of the GRPO module's measurements (rlllm_course.llm.grpo_study)."""

import pytest
import torch

from rlllm_course.llm import grpo, losses
from rlllm_course.llm import grpo_study as study


@pytest.mark.parametrize("aggregation", losses.AGGREGATIONS)
def test_token_weights_are_the_loss_gradient_at_ratio_one(aggregation):
    # at ratio 1 the gradient of the loss on token t of row i is -A_i * w_t
    gen = torch.Generator().manual_seed(0)
    lengths = torch.tensor([5, 1, 0, 9, 3])  # an empty row too
    mask = (torch.arange(9)[None, :] < lengths[:, None]).long()
    adv = torch.randn(5, generator=gen, dtype=torch.float64)
    logp = torch.zeros(5, 9, dtype=torch.float64, requires_grad=True)
    loss, _ = losses.policy_loss(logp, logp.detach(), adv, mask, aggregation=aggregation,
                                 max_completion_length=12)
    grad, = torch.autograd.grad(loss, logp)
    w = study.token_weights(mask, aggregation, max_completion_length=12)
    assert torch.allclose(grad, -adv[:, None] * w, atol=1e-15)


def test_token_weights_rejects_an_unknown_aggregation():
    with pytest.raises(ValueError, match="aggregation"):
        study.token_weights(torch.ones(2, 3), "mean")


def test_equal_reward_fraction_counts_groups_of_identical_rewards():
    rewards = torch.tensor([2.0, 2.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0])
    assert study.equal_reward_fraction(rewards, 2) == 0.75  # [2,2], [0,0], [1,1] of four pairs
    assert study.equal_reward_fraction(rewards, 4) == 0.0


def test_recorded_run_returns_each_batch_s_rewards():
    # one (B,) tensor per step, whose mean is the step's logged reward
    config = grpo.GRPOConfig(steps=2, prompts_per_step=2, group_size=4, max_new_tokens=40)
    _, _, history, rewards = study.train_grpo_recorded(config, progress=False)
    assert [r.shape for r in rewards] == [torch.Size([8])] * 2
    for h, r in zip(history, rewards):
        assert r.mean().item() == pytest.approx(h["reward"])
