"""Which KL a KL penalty in the loss optimizes: exact gradients on a small categorical (module 08).

A KL estimator has a *value* (what it reports) and a *gradient* (what the optimizer
follows once it is in the loss). On samples o ~ pi_theta, with d = log pi_ref(o) - log pi_theta(o)
and rho = pi_theta(o) / pi_old(o) (value 1 when the sampler is the current policy, gradient
grad log pi_theta(o)), the expected gradients are:

    penalty        value estimates        expected gradient
    k1 = -d        KL(pi || ref)          0                      (E[grad log pi] = 0)
    k2 = d^2 / 2   (biased)               grad KL(pi || ref)
    k3 = e^d-d-1   KL(pi || ref)          grad KL(ref || pi)     (the reverse direction)
    rho * k1       KL(pi || ref)          grad KL(pi || ref)
    rho * k3       KL(pi || ref)          grad KL(pi || ref)     (TRL's use_bias_correction_kl)

Everything here is exact (a sum over the V outcomes) or a plain Monte Carlo mean, on one
categorical distribution pi = softmax(logits): the one-token case of a language model.
Gradients are with respect to the logits.
"""

import torch

from .losses import kl_k1, kl_k3

PENALTIES = ("k1", "k2", "k3", "ratio_k1", "ratio_k3")


def penalty(logp, ref_logp, name):
    """Per-sample KL penalty `name` (one of PENALTIES) on samples of the current policy.

    logp: (...,) log pi_theta of the samples (with grad); ref_logp: same shape, constant.
    The sampler is the current policy (pi_old = pi_theta), so the ratio is
    rho = exp(logp - logp.detach()): value 1, gradient grad log pi_theta.
    Returns (...,), differentiable in logp.
    """
    if name not in PENALTIES:
        raise ValueError(f"name must be one of {PENALTIES}, got {name!r}")
    ref_logp = ref_logp.detach()
    ratio = torch.exp(logp - logp.detach())  # (...,) = 1, with the gradient of the ratio
    if name in ("k1", "ratio_k1"):
        value = kl_k1(logp, ref_logp)  # -d
    elif name == "k2":
        value = 0.5 * (ref_logp - logp) ** 2
    else:
        value = kl_k3(logp, ref_logp)  # exp(d) - d - 1
    return ratio * value if name.startswith("ratio_") else value


def _check(logits, ref_logp):
    if logits.ndim != 1 or ref_logp.shape != logits.shape:
        raise ValueError(f"logits and ref_logp must both have shape (V,), got "
                         f"{tuple(logits.shape)} and {tuple(ref_logp.shape)}")


def exact_kl(logp, ref_logp):
    """KL(p || q) = sum_o p(o) (log p(o) - log q(o)) for log-probs logp, ref_logp: (V,)."""
    return (logp.exp() * (logp - ref_logp)).sum()


def exact_kl_gradients(logits, ref_logp):
    """Autograd gradients of the two exact KLs with respect to the policy's logits.

    logits: (V,) of pi_theta = softmax(logits); ref_logp: (V,) log pi_ref (constant).
    Returns {"KL(pi||ref)": (V,), "KL(ref||pi)": (V,)}.
    """
    _check(logits, ref_logp)
    out = {}
    for key in ("KL(pi||ref)", "KL(ref||pi)"):
        x = logits.detach().clone().requires_grad_(True)
        logp = torch.log_softmax(x, 0)  # (V,)
        kl = exact_kl(logp, ref_logp) if key == "KL(pi||ref)" else exact_kl(ref_logp, logp)
        out[key], = torch.autograd.grad(kl, x)
    return out


def expected_penalty(logits, ref_logp, name):
    """Exact E_{o ~ pi_theta}[penalty(o)] and the exact expected gradient of the penalty.

    The expectation is a sum over the V outcomes weighted by pi_theta(o), the weights
    held constant: in a loss the samples are data, so the gradient only flows through
    the penalty, E[grad penalty(o)] = sum_o pi(o) grad penalty(o).
    Returns (value: float, gradient: (V,) with respect to the logits).
    """
    _check(logits, ref_logp)
    x = logits.detach().clone().requires_grad_(True)
    logp = torch.log_softmax(x, 0)  # (V,)
    weights = logp.detach().exp()  # (V,) pi_theta(o), constant
    value = (weights * penalty(logp, ref_logp, name)).sum()
    grad, = torch.autograd.grad(value, x)
    return value.item(), grad


def sampled_penalty_gradient(logits, ref_logp, name, n, generator):
    """Monte Carlo: the gradient of the mean penalty over n samples o ~ pi_theta, as a loss has it.

    generator: a torch.Generator (the draw is reproducible). Returns (V,).
    """
    _check(logits, ref_logp)
    x = logits.detach().clone().requires_grad_(True)
    logp = torch.log_softmax(x, 0)  # (V,)
    tokens = torch.multinomial(logp.detach().exp(), n, replacement=True, generator=generator)  # (n,)
    loss = penalty(logp[tokens], ref_logp[tokens], name).mean()
    grad, = torch.autograd.grad(loss, x)
    return grad


def gradient_table(logits, ref_logp):
    """For each penalty: its expected value, its expected gradient, and the distance
    (largest absolute component) from the gradients of KL(pi || ref) and KL(ref || pi).

    Returns {name: {"value", "gradient", "to KL(pi||ref)", "to KL(ref||pi)"}} and the
    exact KLs and their gradients under the keys "exact" (values) and "targets" (gradients).
    """
    targets = exact_kl_gradients(logits, ref_logp)
    logp = torch.log_softmax(logits.detach(), 0)
    table = {"exact": {"KL(pi||ref)": exact_kl(logp, ref_logp).item(),
                       "KL(ref||pi)": exact_kl(ref_logp, logp).item()},
             "targets": targets}
    for name in PENALTIES:
        value, grad = expected_penalty(logits, ref_logp, name)
        table[name] = {"value": value, "gradient": grad,
                       **{f"to {k}": (grad - g).abs().max().item() for k, g in targets.items()}}
    return table


def sampled_distances(logits, ref_logp, names, ns, repeats, generator):
    """How far the Monte Carlo gradient of each penalty lands from each exact KL gradient.

    For each name in `names` and each sample size n in `ns`, `repeats` independent draws
    of ``sampled_penalty_gradient``; the distance is the largest absolute component of
    (sampled gradient - target), averaged over the repeats.
    Returns {name: {"KL(pi||ref)": [one float per n], "KL(ref||pi)": [...]}}.
    """
    targets = exact_kl_gradients(logits, ref_logp)
    out = {}
    for name in names:
        out[name] = {key: [] for key in targets}
        for n in ns:
            draws = [sampled_penalty_gradient(logits, ref_logp, name, n, generator) for _ in range(repeats)]
            for key, target in targets.items():
                out[name][key].append(sum((g - target).abs().max().item() for g in draws) / repeats)
    return out
