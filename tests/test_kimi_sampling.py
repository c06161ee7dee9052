"""Kimi k1.5's curriculum and prioritized sampling (reasoning.sampling)."""

import pytest
import torch

from rlllm_course.reasoning.sampling import SuccessTracker, curriculum_levels, uniform_sample
from rlllm_course.reasoning.tasks import LEVELS


def test_curriculum_warms_up_on_every_level_then_keeps_the_hard_ones():
    assert curriculum_levels(0, warmup_steps=10) == LEVELS
    assert curriculum_levels(9, warmup_steps=10) == LEVELS
    # step == warmup_steps is the first step after the warm-up (step < warmup_steps is the warm-up)
    assert curriculum_levels(10, warmup_steps=10) == (5,)
    assert curriculum_levels(500, warmup_steps=10) == (5,)
    assert curriculum_levels(0, warmup_steps=0) == (5,)  # no warm-up: hard from the start
    # hard levels come back in the order of `levels`, whatever order they were given in
    assert curriculum_levels(10, 10, hard_levels=(5, 4)) == (4, 5)
    assert curriculum_levels(3, 2, levels=(1, 2, 3)) == (3,)
    assert curriculum_levels(1, 2, levels=[1, 2, 3]) == (1, 2, 3)


@pytest.mark.parametrize("bad, match", [
    (dict(step=-1, warmup_steps=3), "step"),
    (dict(step=1.5, warmup_steps=3), "step"),
    (dict(step=1, warmup_steps=-2), "warmup_steps"),
    (dict(step=1, warmup_steps=3, levels=()), "levels"),
    (dict(step=1, warmup_steps=3, levels=(2, 2, 3)), "levels"),
    (dict(step=1, warmup_steps=3, hard_levels=(6,)), "hard_levels"),
    (dict(step=1, warmup_steps=3, hard_levels=()), "hard_levels"),
])
def test_curriculum_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        curriculum_levels(**bad)


def test_success_rate_counts_samples_not_visits():
    tracker = SuccessTracker(4)
    # problem 0 drawn once with 4 samples, 3 right: s_0 = 3/4, not 1 attempt
    tracker.update(torch.tensor([0, 0, 0, 0, 2, 2]), torch.tensor([1, 1, 1, 0, 0, 1]))
    assert tracker.attempts.tolist() == [4, 0, 2, 0]
    assert tracker.successes.tolist() == [3, 0, 1, 0]
    # 2 more samples of problem 0, both wrong: 3/6 over all samples, not the mean of step rates (0.375)
    tracker.update([0, 0], [0, 0])
    assert tracker.success_rates().tolist() == [0.5, 0.0, 0.5, 0.0]  # unseen problems keep the prior, 0
    assert tracker.success_rates().dtype == torch.float32


def test_weights_are_proportional_to_one_minus_the_success_rate():
    tracker = SuccessTracker(3)
    tracker.update([0, 0, 0, 0, 1, 1], [1, 1, 1, 0, 0, 0])  # s = (0.75, 0, prior 0)
    w = tracker.weights()
    # 1 - s = (0.25, 1, 1): the unsolved problems get 4x the weight (weights ∝ s would invert that)
    torch.testing.assert_close(w, torch.tensor([0.25, 1.0, 1.0]) / 2.25, rtol=0, atol=1e-7)
    assert w.dtype == torch.float32 and abs(w.sum().item() - 1.0) < 1e-6


def test_prior_sets_the_rate_of_unseen_problems():
    tracker = SuccessTracker(3, prior=0.5)
    tracker.update([0, 0], [1, 1])  # s = (1, 0.5, 0.5): a solved problem is never drawn again
    torch.testing.assert_close(tracker.weights(), torch.tensor([0.0, 0.5, 0.5]), rtol=0, atol=1e-7)


def test_everything_solved_falls_back_to_uniform():
    tracker = SuccessTracker(3)
    tracker.update([0, 1, 2, 2], [1, 1, 1, True])  # every s_i = 1: (1 - s) sums to 0
    w = tracker.weights()
    assert torch.isfinite(w).all()
    torch.testing.assert_close(w, torch.full((3,), 1 / 3), rtol=0, atol=1e-7)
    assert SuccessTracker(2, prior=1.0).weights().tolist() == [0.5, 0.5]  # also before any update
    assert tracker.sample(5, torch.Generator().manual_seed(0)).shape == (5,)


def test_sample_follows_the_weights_and_is_reproducible():
    tracker = SuccessTracker(4)
    tracker.update([0, 0, 1, 1, 2, 2, 3, 3], [0, 0, 1, 0, 1, 0, 1, 1])  # 1 - s = (1, 0.5, 0.5, 0)
    draws = tracker.sample(40_000, torch.Generator().manual_seed(0))
    assert draws.dtype == torch.long and draws.shape == (40_000,)
    freq = torch.bincount(draws, minlength=4).float() / 40_000
    assert freq[3] == 0  # a solved problem is never drawn
    # with replacement; 4 standard errors at n = 40k are about 0.01
    torch.testing.assert_close(freq, torch.tensor([0.5, 0.25, 0.25, 0.0]), rtol=0, atol=0.01)
    again = tracker.sample(40_000, torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)
    assert not torch.equal(draws, tracker.sample(40_000, torch.Generator().manual_seed(1)))
    assert tracker.sample(0).shape == (0,)


def test_a_fresh_tracker_draws_what_uniform_draws():
    # the same sampler and the same weights: a comparison of the two strategies starts from the same draws
    fresh = SuccessTracker(7).sample(50, torch.Generator().manual_seed(3))
    assert torch.equal(fresh, uniform_sample(7, 50, torch.Generator().manual_seed(3)))


def test_uniform_sample_covers_every_problem_evenly():
    draws = uniform_sample(5, 50_000, torch.Generator().manual_seed(0))
    assert draws.dtype == torch.long and draws.min() >= 0 and draws.max() <= 4
    freq = torch.bincount(draws, minlength=5).float() / 50_000
    torch.testing.assert_close(freq, torch.full((5,), 0.2), rtol=0, atol=0.01)
    assert uniform_sample(5, 0).shape == (0,)


def test_update_accepts_an_empty_step():
    tracker = SuccessTracker(2)
    tracker.update(torch.zeros(0, dtype=torch.long), torch.zeros(0))
    assert tracker.attempts.tolist() == [0, 0]


@pytest.mark.parametrize("indices, correct, match", [
    ([0, 1], [1], "shape"),
    ([[0, 1]], [[1, 0]], "shape"),
    ([0, 3], [1, 0], "indices"),
    ([-1, 0], [1, 0], "indices"),
    ([0.0, 1.0], [1, 0], "indices"),
    ([True, False], [1, 0], "indices"),
    ([0, 1], [1, 0.5], "correct"),
])
def test_update_rejects_bad_input(indices, correct, match):
    tracker = SuccessTracker(3)
    with pytest.raises(ValueError, match=match):
        tracker.update(indices, correct)
    assert tracker.attempts.sum() == 0  # a rejected update leaves the counts alone


@pytest.mark.parametrize("make, match", [
    (lambda: SuccessTracker(0), "n_problems"),
    (lambda: SuccessTracker(3, prior=1.5), "prior"),
    (lambda: SuccessTracker(3).sample(-1), "k"),
    (lambda: uniform_sample(0, 3), "n_problems"),
    (lambda: uniform_sample(3, 2.0), "k"),
])
def test_constructor_and_samplers_reject_bad_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_prioritized_weights_are_one_minus_the_success_rate_normalized():
    from rlllm_course.reasoning.sampling import prioritized_weights
    successes, attempts = torch.tensor([6, 0, 8, 0]), torch.tensor([8, 8, 8, 0])
    w = prioritized_weights(successes, attempts)
    assert w.dtype == torch.float32
    assert torch.allclose(w, torch.tensor([0.25, 1.0, 0.0, 1.0]) / 2.25)  # unseen: s = prior = 0
    assert torch.allclose(prioritized_weights([6, 0, 8, 0], [8, 8, 8, 0], prior=0.5),
                          torch.tensor([0.25, 1.0, 0.0, 0.5]) / 1.75)
    assert torch.equal(prioritized_weights([3, 8], [3, 8]), torch.tensor([0.5, 0.5]))  # all solved: uniform
    assert successes.tolist() == [6, 0, 8, 0] and attempts.tolist() == [8, 8, 8, 0]
    with pytest.raises(ValueError, match="shape"):
        prioritized_weights([1, 2], [3])
