"""Which problems to train on: curriculum and prioritized sampling (Kimi k1.5 §2.3.4).

Kimi k1.5 (arXiv 2501.12599, §2.3.4) uses the difficulty labels and the running
results of RL to choose the problems of each step:
- **curriculum sampling**: start on easier problems, move to harder ones. Their
  ablation warms up on all the data, then trains on the hard problems only
  (``curriculum_levels``);
- **prioritized sampling**: track the success rate s_i of every problem i and draw
  problems with probability proportional to 1 - s_i, so that the ones the policy
  fails on come back more often (``SuccessTracker``).
``uniform_sample`` is the baseline both are measured against. Problems are
indices into a fixed pool (e.g. ``tasks.reasoning_problems``); levels are the
operand digits of ``tasks.LEVELS``.
"""

import torch

from .tasks import LEVELS


def curriculum_levels(step, warmup_steps, levels=LEVELS, hard_levels=None):
    """The difficulty levels to draw problems from at `step`: a tuple.

    All of `levels` during the warm-up (step < warmup_steps), then only
    `hard_levels` (default: the top level, ``(max(levels),)``), returned in the
    order of `levels`. warmup_steps=0 trains on the hard levels from the start.
    """
    levels = tuple(levels)
    if not levels or len(set(levels)) != len(levels):
        raise ValueError(f"levels must be a non-empty tuple of distinct levels, got {levels!r}")
    hard = (max(levels),) if hard_levels is None else tuple(hard_levels)
    if not hard or not set(hard) <= set(levels):
        raise ValueError(f"hard_levels must be a non-empty subset of levels={levels}, got {hard_levels!r}")
    if not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be an integer >= 0, got {step!r}")
    if not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
    if step < warmup_steps:
        return levels
    return tuple(d for d in levels if d in hard)


def _uniform(n):
    return torch.ones(n) / n  # (n,), the same bits as a fresh tracker's (1 - 0) / n


def _draw(weights, k, generator):
    # One sampler for both strategies, so that equal weights draw exactly what uniform_sample draws.
    if not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be an integer >= 0, got {k!r}")
    if k == 0:
        return torch.zeros(0, dtype=torch.long)
    return torch.multinomial(weights, k, replacement=True, generator=generator)  # (k,)


def prioritized_weights(successes, attempts, prior=0.0):
    """Kimi's prioritized sampling weights p_i = (1 - s_i) / sum_j (1 - s_j): (n,) float32, sum 1.

    successes, attempts: (n,) counts per problem, in samples (a problem drawn once
    with 8 samples, 6 right: 6 and 8); s_i = successes_i / attempts_i, `prior` for a
    problem never sampled. When every s_i = 1 there is nothing left to learn and the
    weights would be 0/0: uniform instead. The inputs are not modified.
    """
    successes = torch.as_tensor(successes).to(torch.float32)
    attempts = torch.as_tensor(attempts).to(torch.float32)
    if successes.ndim != 1 or successes.shape != attempts.shape or not len(attempts):
        raise ValueError(f"successes and attempts must both have shape (n,) with n >= 1, got "
                         f"{tuple(successes.shape)} and {tuple(attempts.shape)}")
    rates = torch.where(attempts > 0, successes / attempts.clamp(min=1), torch.full_like(attempts, float(prior)))
    w = 1.0 - rates  # (n,)
    if w.sum() <= 0:
        return _uniform(len(w))
    return w / w.sum()


def uniform_sample(n_problems, k, generator=None):
    """`k` problem indices drawn uniformly with replacement: (k,) long.

    generator: a ``torch.Generator`` for a reproducible draw (None: torch's global
    generator). Same draws as ``SuccessTracker(n_problems).sample(k, generator)``
    before any update, since every weight is then equal.
    """
    if not isinstance(n_problems, int) or n_problems < 1:
        raise ValueError(f"n_problems must be an integer >= 1, got {n_problems!r}")
    return _draw(_uniform(n_problems), k, generator)


class SuccessTracker:
    """Per-problem success rates s_i and Kimi's prioritized sampling, p_i ∝ 1 - s_i.

    attempts, successes: (n_problems,) long, the samples of each problem graded so
    far and how many were correct. The rate counts samples, not visits: a problem
    drawn once with 8 samples, 6 right, has s_i = 6/8, and later samples add to the
    same counts (s_i = successes_i / attempts_i over everything seen). A problem
    never sampled has s_i = `prior` (0 by default: unseen problems are treated as
    unsolved and drawn with the largest weight).
    """

    def __init__(self, n_problems, prior=0.0):
        if not isinstance(n_problems, int) or n_problems < 1:
            raise ValueError(f"n_problems must be an integer >= 1, got {n_problems!r}")
        if not 0.0 <= prior <= 1.0:
            raise ValueError(f"prior must be a success rate in [0, 1], got {prior}")
        self.n_problems, self.prior = n_problems, float(prior)
        self.attempts = torch.zeros(n_problems, dtype=torch.long)
        self.successes = torch.zeros(n_problems, dtype=torch.long)

    def update(self, indices, correct):
        """Add one step's graded samples: indices, correct: (B,).

        indices: the problem of each sample (long, in [0, n_problems)); a problem
        sampled G times appears G times. correct: 0/1 (or bool) per sample.
        """
        indices = torch.as_tensor(indices)
        correct = torch.as_tensor(correct)
        if indices.ndim != 1 or indices.shape != correct.shape:
            raise ValueError(f"indices and correct must both have shape (B,), got "
                             f"{tuple(indices.shape)} and {tuple(correct.shape)}")
        integer = not (indices.is_floating_point() or indices.dtype == torch.bool)
        if not integer or (indices.numel() and (indices.min() < 0 or indices.max() >= self.n_problems)):
            raise ValueError(f"indices must be integer problem indices in [0, {self.n_problems})")
        if not ((correct == 0) | (correct == 1)).all():
            raise ValueError("correct must hold 0/1 per sample")
        # index_add_ sums repeated indices; `attempts[indices] += 1` would count a repeated problem once
        self.attempts.index_add_(0, indices.long(), torch.ones_like(indices, dtype=torch.long))
        self.successes.index_add_(0, indices.long(), correct.long())

    def success_rates(self):
        """s: (n_problems,) float32, successes / attempts, `prior` for problems not yet seen."""
        seen = self.attempts > 0
        rates = self.successes.float() / self.attempts.clamp(min=1).float()  # (n,)
        return torch.where(seen, rates, torch.full_like(rates, self.prior))

    def weights(self):
        """Sampling probabilities p_i = (1 - s_i) / sum_j (1 - s_j): (n_problems,) float32, sum 1.

        When every s_i = 1 there is nothing left to learn and the weights would be
        0/0: fall back to uniform.
        """
        return prioritized_weights(self.successes, self.attempts, self.prior)

    def sample(self, k, generator=None):
        """`k` problem indices drawn with replacement from ``weights()``: (k,) long.

        generator: a ``torch.Generator`` for a reproducible draw (None: torch's global generator).
        """
        return _draw(self.weights(), k, generator)


STRATEGIES = ("uniform", "curriculum", "prioritized")


class ProblemSampler:
    """Each step's problems, drawn from a fixed `pool` by one of ``STRATEGIES``.

    pool: list of problem dicts (with a ``level`` for the curriculum); seed: the
    draws of step t come from a generator seeded by (seed, t), so a resumed run
    draws the same problems. Every strategy keeps a ``SuccessTracker`` of the pool
    (only "prioritized" samples from it; the others keep it to be compared).
    warmup_steps, hard_levels: the curriculum's schedule (``curriculum_levels``).
    """

    def __init__(self, pool, strategy, seed=0, warmup_steps=0, hard_levels=None):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        if not pool:
            raise ValueError("pool must hold at least one problem")
        if strategy == "curriculum" and any("level" not in p for p in pool):
            raise ValueError("the curriculum needs a 'level' in every problem of pool")
        self.pool, self.strategy, self.seed = list(pool), strategy, seed
        self.warmup_steps, self.hard_levels = warmup_steps, hard_levels
        self.tracker = SuccessTracker(len(self.pool))

    def draw(self, step, k):
        """(k,) long indices into the pool for `step`."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        if self.strategy == "prioritized":
            return self.tracker.sample(k, generator)
        if self.strategy == "uniform":
            return uniform_sample(len(self.pool), k, generator)
        levels = sorted({p["level"] for p in self.pool})
        allowed = curriculum_levels(step, self.warmup_steps, levels, self.hard_levels)
        candidates = torch.tensor([i for i, p in enumerate(self.pool) if p["level"] in allowed])
        if not len(candidates):
            raise ValueError(f"pool has no problem of the levels {allowed} the curriculum asks for at step {step}")
        return candidates[uniform_sample(len(candidates), k, generator)]

    def update(self, indices, correct):
        """Grade one step's samples (``SuccessTracker.update``): indices, correct: (B,)."""
        self.tracker.update(indices, correct)

    def state_dict(self):
        return {"attempts": self.tracker.attempts.clone(), "successes": self.tracker.successes.clone()}

    def load_state_dict(self, state):
        self.tracker.attempts.copy_(state["attempts"])
        self.tracker.successes.copy_(state["successes"])
