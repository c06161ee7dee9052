"""Tests of rlllm_course.rlhf.ppo_math: hand cases, properties, and TRL's old PPOTrainer formulas."""

import numpy as np
import pytest
import torch

from rlllm_course.returns import gae
from rlllm_course.rlhf.ppo_math import (clipped_value_loss, kl_shaped_rewards, masked_gae, masked_whiten,
                                        missing_eos_penalty)

torch.set_num_threads(1)
T = 6


def _batch(B=5, seed=0, lengths=None):
    """Seeded scores, log-probs, values and a right-padded prefix mask with ragged lengths."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (B,), generator=g) if lengths is None else torch.tensor(lengths)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()  # (B, T)
    logp = -2 * torch.rand(len(lengths), T, generator=g, dtype=torch.float64)
    ref = logp + 0.5 * torch.randn(logp.shape, generator=g, dtype=torch.float64)
    scores = torch.randn(len(lengths), generator=g, dtype=torch.float64)
    values = torch.randn(logp.shape, generator=g, dtype=torch.float64)
    return scores, logp, ref, mask, values


def _garbage(x, mask, value=1e6):
    """x with `value` written outside the mask: padding must not matter."""
    return torch.where(mask.bool(), x, torch.full_like(x, value))


# ---------------------------------------------------------------- TRL's old PPOTrainer, written out
def _trl_rewards(scores, logp, ref, padding_mask, end, beta, kl_estimator):
    """TRL's reward construction; TRL masks log-probs with INVALID_LOGPROB so kl is 0 on padding."""
    logp, ref = logp.masked_fill(padding_mask, 1.0), ref.masked_fill(padding_mask, 1.0)
    logr = ref - logp
    kl = -logr if kl_estimator == "k1" else (logr.exp() - 1) - logr
    rewards = -beta * kl
    rewards[torch.arange(len(end)), end] += scores
    return rewards


def _trl_gae(rewards, values, gamma, lam):
    """TRL's loop: it runs over every column, padding included (values there must be 0)."""
    lastgaelam, reversed_adv, gen_length = 0, [], rewards.shape[1]
    for t in reversed(range(gen_length)):
        nextvalues = values[:, t + 1] if t < gen_length - 1 else 0.0
        delta = rewards[:, t] + gamma * nextvalues - values[:, t]
        lastgaelam = delta + gamma * lam * lastgaelam
        reversed_adv.append(lastgaelam)
    advantages = torch.stack(reversed_adv[::-1], axis=1)
    return advantages, advantages + values


def _trl_masked_whiten(values, mask, shift_mean=True):
    """TRL's masked_whiten with masked_var(unbiased=True)."""
    mean = (values * mask).sum() / mask.sum()
    var = (((values - mean) ** 2) * mask).sum() / mask.sum() * mask.sum() / (mask.sum() - 1)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    return whitened + mean if not shift_mean else whitened


# ---------------------------------------------------------------- kl_shaped_rewards
def test_score_lands_on_last_real_token():
    # rows end at columns 0, 2, 4 and a truncated row (no eos, full mask) at T-1
    scores, logp, ref, mask, _ = _batch(lengths=[1, 3, 5, T])
    rewards, _ = kl_shaped_rewards(scores, logp, ref, mask, beta=0.0)
    expected = torch.zeros(4, T, dtype=torch.float64)
    expected[[0, 1, 2, 3], [0, 2, 4, T - 1]] = scores
    assert torch.equal(rewards, expected)


def test_rewards_zero_outside_mask_and_sum_identity():
    scores, logp, ref, mask, _ = _batch(B=8, seed=1)
    rewards, kl = kl_shaped_rewards(scores, _garbage(logp, mask), _garbage(ref, mask, -5.0), mask, beta=0.1)
    # huge log-probs on the padding must not reach the rewards
    assert torch.all(rewards[mask == 0] == 0) and torch.all(kl[mask == 0] == 0)
    # sum_t r_t = score - beta * sum_t kl_t, and kl is k1 = logp - ref on the tokens
    assert torch.allclose(rewards.sum(1), scores - 0.1 * kl.sum(1), atol=1e-12)
    assert torch.allclose(kl[mask == 1], (logp - ref)[mask == 1], atol=1e-12)


def test_k1_and_k3_differ_and_k3_is_the_formula():
    scores, logp, ref, mask, _ = _batch(seed=2)
    r1, kl1 = kl_shaped_rewards(scores, logp, ref, mask, beta=0.2, kl_estimator="k1")
    r3, kl3 = kl_shaped_rewards(scores, logp, ref, mask, beta=0.2, kl_estimator="k3")
    d = ref - logp  # d = ref_logp - logp: E_policy[k3] = KL(policy || ref)
    assert torch.allclose(kl3, torch.where(mask.bool(), torch.exp(d) - d - 1, 0.0), atol=1e-12)
    assert torch.all(kl3 >= 0) and (kl1 < 0).any()  # k1 can be negative per token, k3 cannot
    assert (r1 - r3).abs().max() > 1e-3


def test_rewards_carry_no_gradient():
    # rewards are constants of the PPO update
    scores, logp, ref, mask, _ = _batch(seed=3)
    rewards, kl = kl_shaped_rewards(scores.requires_grad_(), logp.requires_grad_(), ref.requires_grad_(),
                                    mask, beta=0.1)
    assert not rewards.requires_grad and not kl.requires_grad


@pytest.mark.parametrize("kl_estimator", ["k1", "k3"])
def test_rewards_equal_trl_with_score_on_last_real_token(kl_estimator):
    # TRL's formula with the score at sequence_lengths (the last real token) is ours;
    # TRL's own actual_end (sequence_lengths + 1 when < T) moves it one token later.
    scores, logp, ref, mask, _ = _batch(B=6, seed=4, lengths=[1, 2, 4, T, 3, T - 1])
    padding = mask == 0
    seq_len = mask.sum(1) - 1
    ours, _ = kl_shaped_rewards(scores, logp, ref, mask, 0.05, kl_estimator)
    assert torch.allclose(ours, _trl_rewards(scores, logp, ref, padding, seq_len, 0.05, kl_estimator), atol=1e-12)
    quirk = torch.where(seq_len + 1 < T, seq_len + 1, seq_len)
    assert not torch.allclose(ours, _trl_rewards(scores, logp, ref, padding, quirk, 0.05, kl_estimator))


# ---------------------------------------------------------------- missing_eos_penalty
def test_missing_eos_penalty_hand_case():
    # row 1 never emits eos (id 2): it is cut at max_new_tokens and pays the penalty
    ids = torch.tensor([[5, 2, 0], [5, 6, 7], [2, 0, 0]])
    scores = torch.tensor([1.0, 1.0, -0.5])
    out = missing_eos_penalty(scores, ids, eos_token_id=2, penalty=1.5)
    assert torch.equal(out, torch.tensor([1.0, -0.5, -0.5]))
    assert torch.equal(scores, torch.tensor([1.0, 1.0, -0.5]))  # pure: the input is unchanged


# ---------------------------------------------------------------- masked_whiten
def test_masked_whiten_mean_zero_bessel_variance_one():
    _, x, _, mask, _ = _batch(B=2, seed=5, lengths=[3, 4])  # n = 7 entries
    y = masked_whiten(_garbage(x, mask, float("inf")), mask)
    on = y[mask == 1]
    assert abs(on.mean().item()) < 1e-12
    assert on.var(correction=1).item() == pytest.approx(1.0, abs=1e-6)  # Bessel, eps=1e-8 aside
    assert torch.all(y[mask == 0] == 0)
    # a population-std whitening gives Bessel variance n/(n-1) = 7/6: tolerance 1e-6 tells them apart
    population = (x[mask == 1] - x[mask == 1].mean()) / x[mask == 1].std(correction=0)
    assert population.var(correction=1).item() == pytest.approx(7 / 6, abs=1e-6)


def test_masked_whiten_shift_mean_false_keeps_mean_and_equals_trl():
    _, x, _, mask, _ = _batch(B=6, seed=6)
    for shift_mean in (True, False):
        ours = masked_whiten(x, mask, shift_mean=shift_mean)
        trl = _trl_masked_whiten(x, mask, shift_mean=shift_mean) * mask  # TRL's callers zero the padding
        assert torch.allclose(ours, trl, atol=1e-12)
    kept = masked_whiten(x, mask, shift_mean=False)[mask == 1]
    assert kept.mean().item() == pytest.approx(x[mask == 1].mean().item(), abs=1e-12)


# ---------------------------------------------------------------- masked_gae
def _loop_gae(r, v, gamma, lam):
    """A plain python loop over one episode's real tokens; V after the last one is 0."""
    adv, running, next_v = [0.0] * len(r), 0.0, 0.0
    for t in reversed(range(len(r))):
        running = r[t] + gamma * next_v - v[t] + gamma * lam * running
        adv[t], next_v = running, v[t]
    return adv


@pytest.mark.parametrize("seed", range(4))
def test_masked_gae_equals_per_row_loop_and_ignores_garbage_padding(seed):
    # random lengths; huge rewards / values in padding must not leak into the last real token
    _, _, _, mask, values = _batch(B=7, seed=seed)
    rewards = torch.randn(values.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    adv, ret = masked_gae(_garbage(rewards, mask), _garbage(values, mask, -1e6), mask, gamma=0.9, lam=0.8)
    clean_adv, _ = masked_gae(rewards * mask, values * mask, mask, gamma=0.9, lam=0.8)
    assert torch.equal(adv, clean_adv)
    for b in range(7):
        n = int(mask[b].sum())
        expected = _loop_gae(rewards[b, :n].tolist(), values[b, :n].tolist(), 0.9, 0.8)
        assert np.allclose(adv[b, :n].numpy(), expected, atol=1e-12)
        assert torch.all(adv[b, n:] == 0) and torch.all(ret[b, n:] == 0)
    assert torch.allclose(ret[mask == 1], (adv + values)[mask == 1], atol=1e-12)


def test_masked_gae_lam_one_is_monte_carlo_and_lam_zero_is_td():
    _, _, _, mask, values = _batch(B=5, seed=7)
    rewards = torch.randn(values.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(7)) * mask
    values = values * mask
    # lam=1, gamma=1: reward-to-go over the real tokens minus V
    adv, _ = masked_gae(rewards, values, mask, gamma=1.0, lam=1.0)
    to_go = rewards.flip(1).cumsum(1).flip(1)
    assert torch.allclose(adv, (to_go - values) * mask, atol=1e-12)
    # lam=0: the TD residual r_t + gamma * V_{t+1} - V_t, V_{t+1} = 0 after the last real token
    adv, _ = masked_gae(rewards, values, mask, gamma=0.9, lam=0.0)
    next_v = torch.cat([values[:, 1:], torch.zeros(5, 1, dtype=torch.float64)], 1)
    assert torch.allclose(adv, (rewards + 0.9 * next_v - values) * mask, atol=1e-12)


def test_masked_gae_equals_classic_gae_on_one_episode():
    # one row = one episode ending (done) at the last real token: returns.gae, nothing bootstrapped
    _, _, _, mask, values = _batch(B=1, lengths=[4])
    rewards = torch.tensor([[0.1, -0.2, 0.0, 1.5, 9.0, 9.0]], dtype=torch.float64)
    adv, ret = masked_gae(rewards, values, mask, gamma=0.95, lam=0.9)
    ref_adv, ref_ret = gae(rewards[0, :4].numpy(), values[0, :4].numpy(), np.array([0, 0, 0, 1]),
                           last_value=0.0, gamma=0.95, lam=0.9)
    assert np.allclose(adv[0, :4].numpy(), ref_adv, atol=1e-12)
    assert np.allclose(ret[0, :4].numpy(), ref_ret, atol=1e-12)


def test_pipeline_equals_trl_loop_and_whitening():
    # with rewards and values zero outside the mask, TRL's loop through the padding is our GAE,
    # and TRL's advantage whitening (masked_whiten over ~padding_mask, then fill 0) is ours
    scores, logp, ref, mask, values = _batch(B=6, seed=8)
    rewards, _ = kl_shaped_rewards(scores, logp, ref, mask, beta=0.05)
    adv, ret = masked_gae(rewards, _garbage(values, mask), mask, gamma=1.0, lam=0.95)
    trl_adv, trl_ret = _trl_gae(rewards, values * mask, gamma=1.0, lam=0.95)
    assert torch.allclose(adv, trl_adv, atol=1e-12) and torch.allclose(ret, trl_ret, atol=1e-12)
    assert torch.allclose(masked_whiten(adv, mask), _trl_masked_whiten(trl_adv, mask) * mask, atol=1e-12)


# ---------------------------------------------------------------- clipped_value_loss
def test_clipped_value_loss_hand_case_and_gradient():
    # token 0: |V - V_old| > 0.2 and the clipped term is larger (clipped);
    # token 1: inside the range (both terms equal); token 2: |V - V_old| > 0.2 but the
    # unclipped term is larger (not counted: TRL's vf_clipfrac); token 3: padding
    values = torch.tensor([[1.0, 3.0, 1.0, 9.0]], requires_grad=True)
    old = torch.tensor([[0.5, 2.9, 2.0, 0.0]], requires_grad=True)
    returns = torch.tensor([[2.0, 2.0, 3.0, -7.0]], requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 0]])
    loss, metrics = clipped_value_loss(values, old, returns, mask, clip_range=0.2)
    assert loss.item() == pytest.approx(0.5 * (1.69 + 1.0 + 4.0) / 3, abs=1e-6)
    assert metrics["value/clip_frac"] == pytest.approx(1 / 3)
    loss.backward()
    assert old.grad is None and returns.grad is None  # constants of the update
    # d/dV: 0 where the clipped (saturated) term wins, (V - R)/N elsewhere, 0 on padding
    assert torch.allclose(values.grad, torch.tensor([[0.0, 1 / 3, -2 / 3, 0.0]]), atol=1e-6)


def test_clipped_value_loss_perfect_critic_explains_everything():
    # V = R: no loss, explained variance 1
    returns = torch.randn(3, 4, dtype=torch.float64)
    loss, metrics = clipped_value_loss(returns.clone(), returns, returns, torch.ones(3, 4), clip_range=0.2)
    assert loss.item() == 0.0 and metrics["value/explained_variance"] == pytest.approx(1.0)


# ---------------------------------------------------------------- bad inputs
_S, _LP, _REF, _M, _V = _batch(B=3, seed=9, lengths=[2, 3, T])
_EMPTY = _M * torch.tensor([1, 0, 1])[:, None]  # row 1 has no token
_HOLE = _M * (torch.arange(T) != 1)  # rows 1 and 2 lose column 1: not a prefix
_ONE = (torch.arange(3)[:, None] + torch.arange(T) == 0).long()  # a single entry


@pytest.mark.parametrize("name, call", [
    ("mask", lambda: kl_shaped_rewards(_S, _LP, _REF, _EMPTY, 0.1)),
    ("mask", lambda: kl_shaped_rewards(_S, _LP, _REF, _HOLE, 0.1)),
    ("ref_logp", lambda: kl_shaped_rewards(_S, _LP, _REF[:, :-1], _M, 0.1)),
    ("scores", lambda: kl_shaped_rewards(_S[:, None], _LP, _REF, _M, 0.1)),
    ("beta", lambda: kl_shaped_rewards(_S, _LP, _REF, _M, -0.1)),
    ("kl_estimator", lambda: kl_shaped_rewards(_S, _LP, _REF, _M, 0.1, "k2")),
    ("scores", lambda: missing_eos_penalty(_S[:2], _M, 2, 1.0)),
    ("mask", lambda: masked_whiten(_LP, _ONE)),  # one entry: no Bessel-corrected variance
    ("mask", lambda: masked_gae(_LP, _V, _EMPTY)),
    ("values", lambda: masked_gae(_LP, _V[:2], _M)),
    ("lam", lambda: masked_gae(_LP, _V, _M, lam=1.5)),
    ("returns", lambda: clipped_value_loss(_V, _V, _V[:, :2], _M, 0.2)),
    ("clip_range", lambda: clipped_value_loss(_V, _V, _V, _M, 0.0)),
])
def test_bad_inputs_name_the_argument(name, call):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        call()

