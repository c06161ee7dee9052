"""Importance sampling: expectations under one distribution from samples of another (§2.4).

We want E_{x~p}[f(x)] but hold samples x_1..x_N drawn from a behavior
distribution q (an older policy, in PPO). Reweighting each sample by
w_i = p(x_i) / q(x_i) corrects for the mismatch. The weights' spread is the
price: as p drifts away from q a few samples carry all the weight, the
estimate's variance blows up, and the effective sample size collapses.
Clipping the weights tames the variance at the cost of a bias.

Every function reduces over the last axis, so (..., N) arrays hold many
independent experiments of N samples each (handy for measuring variance).
Arrays are numpy float64 (torch tensors on the CPU are accepted as input).
"""

import numpy as np

from .checks import check_positive, check_same_shape


def _as_weights(weights):
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 0 or w.shape[-1] == 0:
        raise ValueError(f"weights must have shape (..., N) with N >= 1, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and >= 0 (they are ratios of probabilities)")
    return w


def importance_weights(logp_target, logp_behavior):
    """Importance weights from log-probabilities: w_i = exp(log p(x_i) - log q(x_i)).

    logp_target: (..., N) log p(x_i), the distribution we want the expectation under.
    logp_behavior: (..., N) log q(x_i), the distribution the samples came from.
    Both are natural-log probabilities (discrete x) or log-densities
    (continuous x); not probabilities. Taking the difference in log space
    avoids 0/0 and overflow when both probabilities are tiny.
    Returns w: (..., N) float64, w >= 0, with E_q[w] = 1.
    """
    check_same_shape("logp_behavior", logp_behavior, "logp_target", logp_target)
    logp_target = np.asarray(logp_target, dtype=np.float64)
    logp_behavior = np.asarray(logp_behavior, dtype=np.float64)
    if np.any(np.isnan(logp_target)) or np.any(np.isnan(logp_behavior)) or np.any(logp_behavior == -np.inf):
        raise ValueError("logp_behavior must be finite (q(x) > 0 for every sample drawn from q) "
                         "and neither log-probability may be NaN")
    return np.exp(logp_target - logp_behavior)


def clip_weights(weights, max_weight):
    """Truncated weights min(w_i, c), as in truncated importance sampling and V-trace.

    weights: (..., N) importance weights, >= 0.
    max_weight: c > 0. Lower variance, but E_q[min(w, c) f] != E_p[f] in
        general: a sample with w > c counts c instead of w, so the samples p
        favours most over q are under-counted; the bias is -E_q[(w - c)_+ f].
    Returns (..., N) float64.
    """
    w = _as_weights(weights)
    check_positive("max_weight", max_weight)
    return np.minimum(w, max_weight)


def is_estimate(weights, f_values):
    """Ordinary importance sampling: (1/N) * sum_i w_i f(x_i).

    weights: (..., N) importance weights w_i = p(x_i) / q(x_i), x_i ~ q.
    f_values: (..., N) f(x_i).
    Returns (...) float64: unbiased for E_p[f] (when q > 0 wherever p > 0),
    with a variance that grows with the spread of the weights.
    """
    w = _as_weights(weights)
    check_same_shape("f_values", f_values, "weights", weights)
    return np.mean(w * np.asarray(f_values, dtype=np.float64), axis=-1)


def weighted_is_estimate(weights, f_values):
    """Self-normalized (weighted) importance sampling: sum_i w_i f(x_i) / sum_i w_i.

    weights, f_values: (..., N) as in ``is_estimate``. The weights only need to
    be known up to a constant factor (unnormalized densities are fine).
    Returns (...) float64: biased for finite N (the bias shrinks as 1/N) but
    consistent, and always inside [min f, max f], so usually far lower variance.
    """
    w = _as_weights(weights)
    check_same_shape("f_values", f_values, "weights", weights)
    total = w.sum(axis=-1)
    if np.any(total == 0):
        raise ValueError("weights must have a positive sum over the last axis (N) for self-normalization")
    return np.sum(w * np.asarray(f_values, dtype=np.float64), axis=-1) / total


def effective_sample_size(weights):
    """Kish's effective sample size: ESS = (sum_i w_i)^2 / sum_i w_i^2.

    weights: (..., N), >= 0, not all zero along the last axis.
    Returns (...) float64 in [1, N]: N for equal weights, 1 when a single
    sample carries all the weight. Invariant to rescaling the weights.
    """
    w = _as_weights(weights)
    squares = np.sum(w**2, axis=-1)
    if np.any(squares == 0):
        raise ValueError("weights must not all be zero along the last axis (N)")
    return w.sum(axis=-1) ** 2 / squares
