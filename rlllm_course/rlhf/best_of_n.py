"""Best-of-n: sample n responses, keep the one the reward model likes best (module 12).

The simplest way to optimise a reward model needs no training: draw n samples
from the policy and return the highest-scoring one. It moves the output
distribution away from the policy by a known amount,

    KL(best-of-n || policy) = log n - (n - 1) / n

(Stiennon et al. 2020, appendix; exact for distinct samples), so n is a KL
budget. Against the proxy reward that picks the samples, the score keeps rising
with n; against the gold reward it rises and then can fall, once the picks are
what the proxy overrates (Gao, Schulman & Hilton 2022 plot both against sqrt(KL)).

From N samples per prompt, the expected best-of-n for every n <= N comes
without resampling: sort the N samples by proxy score; the best of a random
n-subset is the i-th smallest (1-based) with probability C(i-1, n-1) / C(N, n).
"""

import math

import torch


def best_of_n(scores, n):
    """(P,) index of the highest score among the first `n` of each row of the (P, N) `scores`."""
    if scores.ndim != 2:
        raise ValueError(f"scores must have shape (P, N), got {tuple(scores.shape)}")
    if not (isinstance(n, int) and 1 <= n <= scores.shape[1]):
        raise ValueError(f"n must be an integer in 1..{scores.shape[1]} (samples per prompt), got {n!r}")
    return scores[:, :n].argmax(-1)


def kl_best_of_n(n):
    """KL(best-of-n || policy) = log n - (n - 1) / n, in nats."""
    if not n >= 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    return math.log(n) - (n - 1) / n


def best_of_n_weights(N, n):
    """(N,) probability that the i-th smallest of N samples is the best of a random n-subset."""
    if not 1 <= n <= N:
        raise ValueError(f"need 1 <= n <= N, got n={n}, N={N}")
    total = math.comb(N, n)
    return torch.tensor([math.comb(i - 1, n - 1) / total for i in range(1, N + 1)], dtype=torch.float64)


def best_of_n_curve(proxy, gold, ns):
    """Expected proxy and gold reward of best-of-n (picked by `proxy`) for each n in `ns`.

    proxy, gold: (P, N) scores of N samples for each of P prompts. Ties in the
    proxy go to the earlier sample, as in ``best_of_n``. Returns {"n", "kl", "proxy", "gold"}: lists,
    the rewards averaged over prompts.
    """
    if proxy.shape != gold.shape or proxy.ndim != 2:
        raise ValueError(f"proxy and gold must both have shape (P, N), got {tuple(proxy.shape)} and {tuple(gold.shape)}")
    N = proxy.shape[1]
    # ascending, tied samples latest first: the best of a subset is then its first maximum (as best_of_n)
    order = torch.sort(proxy.double(), dim=1, descending=True, stable=True).indices.flip(1)  # (P, N)
    proxy_sorted, gold_sorted = proxy.double().gather(1, order), gold.double().gather(1, order)
    out = {"n": [], "kl": [], "proxy": [], "gold": []}
    for n in ns:
        w = best_of_n_weights(N, n)  # (N,)
        out["n"].append(n)
        out["kl"].append(kl_best_of_n(n))
        out["proxy"].append((proxy_sorted @ w).mean().item())
        out["gold"].append((gold_sorted @ w).mean().item())
    return out
