"""Importance sampling: weights, ordinary and self-normalized estimates, ESS, clipping."""

import numpy as np
import pytest
import torch

from rlllm_course.importance import (clip_weights, effective_sample_size, importance_weights, is_estimate,
                                     weighted_is_estimate)

# A small categorical pair: target p, behavior q, and a function f on {0, 1, 2, 3}
P = np.array([0.1, 0.2, 0.3, 0.4])
Q = np.array([0.4, 0.3, 0.2, 0.1])
F = np.array([1.0, -2.0, 3.0, 5.0])


def test_weights_are_ratios_of_probabilities_from_log_probs():
    # log-probabilities in, p/q out: log(0.5) - log(0.25) -> 2
    w = importance_weights(np.log([0.5, 0.25, 0.1]), np.log([0.25, 0.5, 0.1]))
    np.testing.assert_allclose(w, [2.0, 0.5, 1.0], rtol=1e-12)


def test_weights_accept_torch_tensors():
    w = importance_weights(torch.log(torch.tensor([0.5])), torch.log(torch.tensor([0.25])))
    np.testing.assert_allclose(w, [2.0], rtol=1e-6)


def test_weights_survive_tiny_probabilities():
    # both log-probs near -1000: exp of each underflows, their difference does not
    np.testing.assert_allclose(importance_weights([-1000.0], [-1001.0]), [np.e], rtol=1e-12)


def test_estimates_by_hand():
    # ordinary: (2*1 + 0.5*2 + 1*3) / 3 = 2; self-normalized: 6 / 3.5
    w, f = [2.0, 0.5, 1.0], [1.0, 2.0, 3.0]
    assert is_estimate(w, f) == pytest.approx(2.0, rel=1e-12)
    assert weighted_is_estimate(w, f) == pytest.approx(6.0 / 3.5, rel=1e-12)


def test_ordinary_is_is_unbiased_and_self_normalized_is_biased_for_small_n():
    # exact expectations over every possible pair of samples (N = 2) from q:
    # E[ordinary] = E_p[f] exactly; E[self-normalized] differs at N = 2
    x1, x2 = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    samples = np.stack([x1.ravel(), x2.ravel()], axis=-1)  # (16, 2)
    prob = Q[samples].prod(axis=-1)  # (16,)
    w = P[samples] / Q[samples]  # (16, 2)
    exact = P @ F  # 2.9
    assert prob @ is_estimate(w, F[samples]) == pytest.approx(exact, rel=1e-12)
    assert abs(prob @ weighted_is_estimate(w, F[samples]) - exact) > 0.1


def test_is_estimate_converges_with_many_samples():
    # Monte Carlo check: 200k samples from q, standard error ~0.01
    rng = np.random.default_rng(0)
    x = rng.choice(4, size=200_000, p=Q)
    w = importance_weights(np.log(P[x]), np.log(Q[x]))
    assert is_estimate(w, F[x]) == pytest.approx(P @ F, abs=0.05)
    assert weighted_is_estimate(w, F[x]) == pytest.approx(P @ F, abs=0.05)
    assert np.mean(F[x]) == pytest.approx(Q @ F, abs=0.05)  # without weights: E_q[f] = 1.3, not 2.9


def test_self_normalized_needs_weights_only_up_to_a_constant():
    # scaling every weight by 7 leaves the self-normalized estimate unchanged, not the ordinary one
    rng = np.random.default_rng(1)
    w, f = rng.random(10), rng.normal(size=10)
    assert weighted_is_estimate(7 * w, f) == pytest.approx(weighted_is_estimate(w, f), rel=1e-12)
    assert is_estimate(7 * w, f) == pytest.approx(7 * is_estimate(w, f), rel=1e-12)


def test_ess_by_hand_and_extremes():
    # (1+1+2)^2 / (1+1+4) = 16/6; equal weights -> N; one sample carries everything -> 1
    assert effective_sample_size([1.0, 1.0, 2.0]) == pytest.approx(16 / 6, rel=1e-12)
    assert effective_sample_size(np.full(50, 0.3)) == pytest.approx(50, rel=1e-12)
    assert effective_sample_size([0.0, 0.0, 5.0, 0.0]) == pytest.approx(1.0, rel=1e-12)


def test_ess_is_between_1_and_n_and_scale_invariant():
    rng = np.random.default_rng(2)
    w = rng.lognormal(sigma=2.0, size=(100, 20))
    ess = effective_sample_size(w)
    assert ess.shape == (100,)
    assert np.all((ess >= 1) & (ess <= 20))
    np.testing.assert_allclose(effective_sample_size(3 * w), ess, rtol=1e-12)


def test_ess_falls_as_the_distributions_drift_apart():
    # q = N(0, 1), p = N(mu, 1): w = exp(mu x - mu^2 / 2), E[ESS]/N ~ exp(-mu^2)
    rng = np.random.default_rng(3)
    x = rng.normal(size=100_000)
    fractions = [effective_sample_size(np.exp(mu * x - mu**2 / 2)) / len(x) for mu in (0.0, 0.5, 1.0)]
    np.testing.assert_allclose(fractions, np.exp(-np.array([0.0, 0.25, 1.0])), rtol=0.05)


def test_last_axis_holds_the_samples():
    # (R, N): R independent experiments, each reduced over its N samples
    rng = np.random.default_rng(4)
    w, f = rng.random((3, 5)), rng.normal(size=(3, 5))
    np.testing.assert_allclose(is_estimate(w, f), [is_estimate(w[i], f[i]) for i in range(3)], rtol=1e-12)
    np.testing.assert_allclose(weighted_is_estimate(w, f), [weighted_is_estimate(w[i], f[i]) for i in range(3)],
                               rtol=1e-12)


def test_clipping_lowers_variance_and_biases_toward_the_behavior():
    # with f = 1, E_q[w] = 1 exactly; truncating the weights at c = 1.5 loses mass (bias)
    w_all = P / Q  # [0.25, 0.667, 1.5, 4]
    clipped = clip_weights(w_all, 1.5)
    np.testing.assert_allclose(clipped, [0.25, 2 / 3, 1.5, 1.5], rtol=1e-12)
    assert Q @ w_all == pytest.approx(1.0, rel=1e-12)
    assert Q @ clipped == pytest.approx(0.1 + 0.2 + 0.3 + 0.15, rel=1e-12)  # 0.75, not 1
    assert Q @ clipped**2 - (Q @ clipped) ** 2 < Q @ w_all**2 - 1.0  # lower variance


@pytest.mark.parametrize("call, name", [
    (lambda: importance_weights([0.0, 0.0], [0.0]), "logp_behavior"),
    (lambda: importance_weights([0.0], [-np.inf]), "logp_behavior"),
    (lambda: is_estimate([1.0, -0.5], [1.0, 1.0]), "weights"),
    (lambda: is_estimate([1.0, np.nan], [1.0, 1.0]), "weights"),
    (lambda: is_estimate([1.0, 1.0], [1.0]), "f_values"),
    (lambda: weighted_is_estimate([0.0, 0.0], [1.0, 2.0]), "weights"),
    (lambda: effective_sample_size([]), "weights"),
    (lambda: effective_sample_size([0.0, 0.0]), "weights"),
    (lambda: clip_weights([1.0], 0.0), "max_weight"),
])
def test_bad_inputs_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
