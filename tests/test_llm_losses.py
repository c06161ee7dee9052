"""Tests of rlllm_course.llm.losses: values, edge cases, and equality with TRL's GRPOTrainer."""

import math

import pytest
import torch
from conftest import save_random_llama

from rlllm_course.llm.losses import (
    bradley_terry_loss, dpo_loss, group_advantages, kl_k1, kl_k3, masked_mean, masked_sum,
    policy_loss, rloo_advantages,
)

torch.set_num_threads(1)


def _batch(B=6, T=5, seed=0):
    """Seeded log-probs (with grad), old / ref log-probs near them, advantages, a ragged mask."""
    g = torch.Generator().manual_seed(seed)
    logp = (-2 * torch.rand(B, T, generator=g)).requires_grad_()
    old = logp.detach() + 0.3 * torch.randn(B, T, generator=g)
    ref = logp.detach() + 0.3 * torch.randn(B, T, generator=g)
    adv = torch.randn(B, generator=g)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()  # (B, T), right-padded
    return logp, old, ref, adv, mask


# ---------------------------------------------------------------- masked reductions
def test_masked_mean_and_sum_values():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    m = torch.tensor([[1, 1, 0], [0, 0, 1]])
    assert masked_sum(x, m).item() == 9.0
    assert masked_mean(x, m).item() == pytest.approx(3.0)  # over all 3 masked tokens
    assert torch.allclose(masked_mean(x, m, dim=-1), torch.tensor([1.5, 6.0]))  # per row


def test_masked_mean_empty_mask_is_zero_not_nan():
    # an empty completion (e.g. cut at length 0) must not poison the batch with NaN
    x = torch.randn(2, 3)
    m = torch.zeros(2, 3)
    assert masked_mean(x, m).item() == 0.0
    assert torch.equal(masked_mean(x, m, dim=-1), torch.zeros(2))


def test_masked_mean_ignores_left_padding():
    # the values under padding (left or right) must not matter
    x = torch.tensor([[99.0, 1.0, 3.0]])
    m = torch.tensor([[0, 1, 1]])
    assert masked_mean(x, m).item() == pytest.approx(2.0)


# ---------------------------------------------------------------- advantages
def test_rloo_matches_leave_one_out_definition():
    g = torch.Generator().manual_seed(1)
    r = torch.rand(12, generator=g)
    A = rloo_advantages(r, 4)
    for i in range(12):
        group = r[(i // 4) * 4:(i // 4) * 4 + 4]
        others = torch.cat([group[: i % 4], group[i % 4 + 1:]])
        assert A[i].item() == pytest.approx((r[i] - others.mean()).item(), abs=1e-6)
    # G/(G-1) times the mean-centred reward
    centred = (r.view(3, 4) - r.view(3, 4).mean(1, keepdim=True)).reshape(-1)
    assert torch.allclose(A, 4 / 3 * centred, atol=1e-6)


def test_group_advantages_bessel_and_eps():
    r = torch.tensor([1.0, 0.0, 0.0, 0.0])
    # mean 0.25, Bessel std sqrt(0.25) = 0.5 (population std would be 0.433)
    expected = (r - 0.25) / (0.5 + 1e-4)
    assert torch.allclose(group_advantages(r, 4), expected, rtol=1e-6)
    assert torch.allclose(group_advantages(r, 4, scale="none"), r - 0.25)
    assert torch.allclose(group_advantages(r, 4, eps=0.1), (r - 0.25) / 0.6, rtol=1e-6)


def test_group_advantages_all_equal_rewards_give_zero():
    # a group where every sample got the same reward carries no signal (and no NaN)
    r = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    for scale in ("group", "none", "batch"):
        A = group_advantages(r, 3, scale=scale)
        assert torch.equal(A, torch.zeros(6))
    assert torch.equal(rloo_advantages(r, 3), torch.zeros(6))


def test_advantages_reject_bad_group_size():
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(torch.zeros(6), 4)
    with pytest.raises(ValueError, match="rewards"):
        rloo_advantages(torch.zeros(2, 3), 3)


# ---------------------------------------------------------------- KL estimators
def test_k3_nonnegative_and_unbiased_on_a_categorical():
    # E_{x~p}[k3] = KL(p || q) exactly, and k3 >= 0 pointwise
    p = torch.tensor([0.5, 0.3, 0.15, 0.05])
    q = torch.tensor([0.25, 0.25, 0.25, 0.25])
    k3 = kl_k3(p.log(), q.log())
    assert (k3 >= 0).all()
    exact = (p * (p / q).log()).sum()
    assert (p * k3).sum().item() == pytest.approx(exact.item(), rel=1e-6)
    assert (p * kl_k1(p.log(), q.log())).sum().item() == pytest.approx(exact.item(), rel=1e-6)


def test_k3_direction():
    # d = ref - logp: k3 = exp(d) - d - 1 is not symmetric in its two arguments
    logp, ref = torch.tensor([-1.0]), torch.tensor([-2.0])
    d = -1.0
    assert kl_k3(logp, ref).item() == pytest.approx(math.exp(d) - d - 1)
    assert kl_k3(ref, logp).item() != pytest.approx(kl_k3(logp, ref).item())


# ---------------------------------------------------------------- policy loss
def _per_token(logp, old, adv, eps=0.2):
    ratio = torch.exp(logp - old)
    return -torch.min(ratio * adv[:, None], ratio.clamp(1 - eps, 1 + eps) * adv[:, None])


def test_policy_loss_aggregations_values():
    logp, old, ref, adv, mask = _batch()
    l_tok = _per_token(logp, old, adv).detach()
    m = mask.float()
    expected = {
        "grpo": ((l_tok * m).sum(1) / m.sum(1)).mean(),
        "bnpo": (l_tok * m).sum() / m.sum(),
        "dr_grpo": (l_tok * m).sum() / (6 * 5),
        "dapo": (l_tok * m).sum() / m.sum(),
    }
    values = {}
    for agg, want in expected.items():
        loss, metrics = policy_loss(logp, old, adv, mask, 0.2, aggregation=agg)
        assert loss.item() == pytest.approx(want.item(), rel=1e-6), agg
        assert metrics["policy/loss"] == pytest.approx(loss.item())
        values[agg] = loss.item()
    # with ragged lengths, per-sequence and per-token averaging are different conventions
    assert abs(values["grpo"] - values["bnpo"]) > 1e-3


def test_policy_loss_dr_grpo_and_dapo_normalizers():
    logp, old, ref, adv, mask = _batch()
    l_tok = (_per_token(logp, old, adv).detach() * mask).sum()
    loss, _ = policy_loss(logp, old, adv, mask, aggregation="dr_grpo", max_completion_length=16)
    assert loss.item() == pytest.approx((l_tok / (6 * 16)).item(), rel=1e-6)
    loss, _ = policy_loss(logp, old, adv, mask, aggregation="dapo", num_items=100)
    assert loss.item() == pytest.approx((l_tok / 100).item(), rel=1e-6)


def test_policy_loss_on_policy_gradient_is_reinforce():
    # ratio = 1 at old = logp: grad of the bnpo loss = -A * mask / n_tokens (no clipping active)
    logp, _, _, adv, mask = _batch()
    loss, metrics = policy_loss(logp, logp.detach(), adv, mask, aggregation="bnpo")
    loss.backward()
    expected = -adv[:, None] * mask / mask.sum()
    assert torch.allclose(logp.grad, expected, atol=1e-7)
    assert metrics["policy/clip_active_frac"] == 0.0 and metrics["policy/ratio"] == pytest.approx(1.0)


def test_policy_loss_kl_term_and_padding_invariance():
    logp, old, ref, adv, mask = _batch()
    base, _ = policy_loss(logp, old, adv, mask)
    with_kl, metrics = policy_loss(logp, old, adv, mask, ref_logp=ref, beta=0.1)
    kl = kl_k3(logp, ref).detach()
    expected_kl = ((kl * mask).sum(1) / mask.sum(1)).mean()
    assert (with_kl - base).item() == pytest.approx(0.1 * expected_kl.item(), rel=1e-5)
    assert metrics["policy/kl"] == pytest.approx(masked_mean(kl, mask).item(), rel=1e-6)
    # garbage under the mask (padding) changes nothing
    noisy = logp.detach() + 50 * (1 - mask)
    again, _ = policy_loss(noisy, old, adv, mask, ref_logp=ref, beta=0.1)
    assert again.item() == pytest.approx(with_kl.item(), rel=1e-6)


def test_policy_loss_empty_mask_row():
    # an all-padding row contributes 0 and produces no NaN
    logp, old, ref, adv, mask = _batch()
    mask[0] = 0
    for agg in ("grpo", "bnpo", "dr_grpo", "dapo"):
        loss, _ = policy_loss(logp, old, adv, mask, aggregation=agg, ref_logp=ref, beta=0.1)
        assert torch.isfinite(loss)


def test_policy_loss_checks_shapes():
    logp, old, ref, adv, mask = _batch()
    with pytest.raises(ValueError, match="advantages"):
        policy_loss(logp, old, adv[:3], mask)
    with pytest.raises(ValueError, match="ref_logp"):
        policy_loss(logp, old, adv, mask, beta=0.1)
    with pytest.raises(ValueError, match="aggregation"):
        policy_loss(logp, old, adv, mask, aggregation="mean")


# ---------------------------------------------------------------- preference losses
def test_bradley_terry_values():
    chosen, rejected = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    loss, metrics = bradley_terry_loss(chosen, rejected)
    expected = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(1.0))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert metrics["rm/accuracy"] == 0.5
    loss_m, _ = bradley_terry_loss(chosen, rejected, margin=1.0)
    assert loss_m.item() == pytest.approx((math.log1p(1.0) + math.log1p(math.exp(2.0))) / 2, rel=1e-6)


def test_dpo_loss_values_and_zero_at_reference():
    g = torch.Generator().manual_seed(3)
    pc, pr, rc, rr = (torch.randn(8, generator=g) for _ in range(4))
    loss, metrics = dpo_loss(pc, pr, rc, rr, beta=0.5)
    logits = 0.5 * ((pc - rc) - (pr - rr))
    assert loss.item() == pytest.approx(torch.nn.functional.softplus(-logits).mean().item(), rel=1e-6)
    # policy == reference: every implicit reward is 0, loss is log 2
    loss0, m0 = dpo_loss(rc, rr, rc, rr, beta=0.5)
    assert loss0.item() == pytest.approx(math.log(2), rel=1e-6) and m0["dpo/margin"] == 0.0


# ---------------------------------------------------------------- equality with TRL
B, G, T, EPS, BETA = 8, 4, 7, 0.2, 0.04


@pytest.fixture(scope="module")
def trl_factory(tmp_path_factory):
    """Build TRL GRPOTrainers on a tiny random Llama saved to a temp folder (CPU, no download)."""
    trl = pytest.importorskip("trl")
    from datasets import Dataset

    folder = tmp_path_factory.mktemp("trl")
    tokenizer = save_random_llama(folder / "model", hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32)
    dataset = Dataset.from_dict({"prompt": ["Q:1+2\nA:", "Q:3+4\nA:"] * 4})
    state = {"rewards": torch.zeros(B)}

    def reward_fn(prompts, completions, **kwargs):  # hands TRL the rewards under test
        return state["rewards"].tolist()

    def make(**overrides):
        options = dict(output_dir=str(folder / "out"), use_cpu=True, per_device_train_batch_size=B,
                       num_generations=G, max_completion_length=T, epsilon=EPS, beta=BETA,
                       report_to=[], save_strategy="no", gradient_accumulation_steps=1)
        options.update(overrides)
        trainer = trl.GRPOTrainer(model=str(folder / "model"), reward_funcs=reward_fn,
                                  args=trl.GRPOConfig(**options), train_dataset=dataset,
                                  processing_class=tokenizer)
        trainer.model.train()
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(); one micro-batch here
        return trainer

    return make, state


def _trl_loss(trainer, logp, old, ref, adv, mask):
    """TRL's own _compute_loss, with the policy's log-probs replaced by `logp`."""
    trainer._get_per_token_logps_and_entropies = lambda *a, **k: (logp, torch.zeros_like(logp), None)
    inputs = {
        "prompt_ids": torch.zeros(B, 3, dtype=torch.long), "prompt_mask": torch.ones(B, 3, dtype=torch.long),
        "completion_ids": torch.zeros(B, T, dtype=torch.long), "completion_mask": mask,
        "old_per_token_logps": old, "ref_per_token_logps": ref, "advantages": adv,
        "num_items_in_batch": mask.sum(),
    }
    return trainer._compute_loss(trainer.model, inputs)


@pytest.mark.parametrize("aggregation", ["grpo", "bnpo", "dr_grpo", "dapo"])
def test_policy_loss_equals_trl(trl_factory, aggregation):
    # same inputs, TRL's loss_type vs our aggregation; TRL's default re-weights k3 by the ratio
    make, _ = trl_factory
    trainer = make(loss_type=aggregation)
    assert trainer.args.use_bias_correction_kl  # TRL 1.16's default
    logp, old, ref, adv, mask = _batch(B, T, seed=5)
    mask[1, :2] = 0  # a left-padded-looking row: masks need not be contiguous from 0
    mask[2] = 0  # an empty completion
    theirs = _trl_loss(trainer, logp, old, ref, adv, mask)
    ours, _ = policy_loss(logp, old, adv, mask, clip_eps=EPS, aggregation=aggregation, ref_logp=ref,
                          beta=BETA, max_completion_length=T, kl_ratio_correction=True)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)
    (g_ours,) = torch.autograd.grad(ours, logp)
    (g_theirs,) = torch.autograd.grad(_trl_loss(trainer, logp, old, ref, adv, mask), logp)
    assert torch.allclose(g_ours, g_theirs, rtol=1e-5, atol=1e-8)


def test_policy_loss_equals_trl_without_kl_correction(trl_factory):
    # the textbook GRPO KL term: beta * k3, not re-weighted
    make, _ = trl_factory
    trainer = make(loss_type="grpo", use_bias_correction_kl=False)
    logp, old, ref, adv, mask = _batch(B, T, seed=6)
    theirs = _trl_loss(trainer, logp, old, ref, adv, mask)
    ours, _ = policy_loss(logp, old, adv, mask, clip_eps=EPS, ref_logp=ref, beta=BETA)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)
    corrected, _ = policy_loss(logp, old, adv, mask, clip_eps=EPS, ref_logp=ref, beta=BETA,
                               kl_ratio_correction=True)
    assert abs(corrected.item() - theirs.item()) > 1e-5  # the two KL conventions are told apart


@pytest.mark.parametrize("scale", ["group", "none", "batch"])
def test_group_advantages_equal_trl(trl_factory, scale):
    # TRL's full scoring path (generation, rewards, advantages) on preset rewards
    make, state = trl_factory
    trainer = make(loss_type="grpo", beta=0.0, scale_rewards=scale)
    g = torch.Generator().manual_seed(7)
    state["rewards"] = torch.cat([torch.rand(G, generator=g), torch.full((G,), 0.5)])  # 2nd group all equal
    inputs = [{"prompt": p} for p in ["Q:1+2\nA:", "Q:3+4\nA:"] for _ in range(G)]
    theirs = trainer._generate_and_score_completions(inputs)["advantages"]
    ours = group_advantages(state["rewards"], G, scale=scale, eps=1e-4)
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-7)


def test_implicit_reward_is_beta_times_the_log_ratio_with_the_reference_detached():
    from rlllm_course.llm.losses import implicit_reward
    policy = torch.tensor([-3.0, -10.0, -1.0], requires_grad=True)
    ref = torch.tensor([-4.0, -10.0, -0.5], requires_grad=True)
    r = implicit_reward(policy, ref, beta=0.5)
    assert r.tolist() == [0.5, 0.0, -0.25]
    r.sum().backward()
    assert policy.grad.tolist() == [0.5, 0.5, 0.5] and ref.grad is None
    # equal log-probs (the policy is the reference) give 0 whatever beta; DPO's loss is then log 2
    assert torch.equal(implicit_reward(ref.detach(), ref.detach(), 3.0), torch.zeros(3))
    loss, _ = dpo_loss(ref.detach(), ref.detach(), ref.detach(), ref.detach(), beta=0.1)
    assert loss.item() == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="beta must be > 0"):
        implicit_reward(policy, ref, beta=0.0)
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        implicit_reward(policy, ref[:2])
