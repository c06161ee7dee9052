"""Tests of rlllm_course.llm.kl_study: which KL each penalty's gradient follows (exactly)."""

import pytest
import torch

from rlllm_course.llm import kl_study, losses


def _pair(seed, V=7, shift=2.0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(V, generator=g, dtype=torch.float64)
    ref_logp = torch.log_softmax(logits + shift * torch.randn(V, generator=g, dtype=torch.float64), 0)
    return logits, ref_logp


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expected_gradients_follow_the_stated_kl(seed):
    # the identities of the module docstring hold exactly (sums over V outcomes, float64)
    logits, ref_logp = _pair(seed)
    t = kl_study.gradient_table(logits, ref_logp)
    forward, reverse = t["targets"]["KL(pi||ref)"], t["targets"]["KL(ref||pi)"]
    assert (forward - reverse).abs().max() > 0.02  # the two directions are far apart here
    assert torch.allclose(t["k3"]["gradient"], reverse, atol=1e-12)  # plain k3: the reverse KL
    for name in ("ratio_k3", "ratio_k1", "k2"):  # re-weighted by rho (or k2): the forward KL
        assert torch.allclose(t[name]["gradient"], forward, atol=1e-12), name
    assert t["k1"]["gradient"].abs().max() < 1e-12  # plain k1: E[grad log pi] = 0


@pytest.mark.parametrize("seed", [0, 3])
def test_expected_values_estimate_kl_pi_ref(seed):
    # k1, k3 and their ratio forms are unbiased for KL(pi || ref); k2 is not
    logits, ref_logp = _pair(seed)
    t = kl_study.gradient_table(logits, ref_logp)
    exact = t["exact"]["KL(pi||ref)"]
    for name in ("k1", "k3", "ratio_k1", "ratio_k3"):
        assert t[name]["value"] == pytest.approx(exact, rel=1e-12), name
    assert abs(t["k2"]["value"] - exact) > 1e-3


def test_exact_kl_gradients_match_closed_forms():
    # d KL(pi||ref) / d logits = pi * (log pi/ref - KL); d KL(ref||pi) / d logits = pi - ref
    logits, ref_logp = _pair(4)
    pi = torch.softmax(logits, 0)
    g = kl_study.exact_kl_gradients(logits, ref_logp)
    kl = kl_study.exact_kl(pi.log(), ref_logp)
    assert torch.allclose(g["KL(pi||ref)"], pi * (pi.log() - ref_logp - kl), atol=1e-14)
    assert torch.allclose(g["KL(ref||pi)"], pi - ref_logp.exp(), atol=1e-14)


def test_sampled_gradient_converges_to_the_expected_one():
    # the Monte Carlo mean over many samples approaches the exact expectation (and not the other KL)
    logits, ref_logp = _pair(5, V=5)
    t = kl_study.gradient_table(logits, ref_logp)
    gen = torch.Generator().manual_seed(0)
    for name, other in [("k3", "KL(pi||ref)"), ("ratio_k3", "KL(ref||pi)")]:
        mc = kl_study.sampled_penalty_gradient(logits, ref_logp, name, 200_000, gen)
        err = (mc - t[name]["gradient"]).abs().max().item()
        assert err < 0.01, (name, err)
        assert (mc - t["targets"][other]).abs().max().item() > 5 * err, name


def test_policy_loss_penalty_gradient_is_the_ratio_k3_one():
    # per token, policy_loss's KL term has the gradient of beta * penalty: k3, or rho * k3 when corrected
    g = torch.Generator().manual_seed(6)
    logp = (-2 * torch.rand(3, 4, generator=g, dtype=torch.float64)).requires_grad_(True)
    ref = logp.detach() + 0.5 * torch.randn(3, 4, generator=g, dtype=torch.float64)
    mask, zero_adv = torch.ones(3, 4), torch.zeros(3, dtype=torch.float64)
    for corrected, name in [(False, "k3"), (True, "ratio_k3")]:
        loss, _ = losses.policy_loss(logp, logp.detach(), zero_adv, mask, aggregation="dapo", num_items=1,
                                     ref_logp=ref, beta=1.0, kl_ratio_correction=corrected)
        grad, = torch.autograd.grad(loss, logp)
        want, = torch.autograd.grad(kl_study.penalty(logp, ref, name).sum(), logp)
        assert torch.allclose(grad, want, atol=1e-14), name
    k1_grad, = torch.autograd.grad(kl_study.penalty(logp, ref, "ratio_k1").sum(), logp)
    assert not torch.allclose(k1_grad, want)  # per sample the two ratio forms differ; only their means agree


def test_penalty_checks_its_name_and_shapes():
    with pytest.raises(ValueError, match="name"):
        kl_study.penalty(torch.zeros(2), torch.zeros(2), "k4")
    with pytest.raises(ValueError, match="ref_logp"):
        kl_study.exact_kl_gradients(torch.zeros(3), torch.zeros(4))


def test_sampled_distances_shrink_toward_the_matching_target():
    # more samples: closer to the KL the penalty follows; the other one stays at the gap
    logits, ref_logp = _pair(7, V=5)
    out = kl_study.sampled_distances(logits, ref_logp, ["ratio_k3"], [100, 100_000], 3,
                                     torch.Generator().manual_seed(1))
    near, far = out["ratio_k3"]["KL(pi||ref)"], out["ratio_k3"]["KL(ref||pi)"]
    assert near[1] < near[0] / 5
    assert far[1] > 5 * near[1]
