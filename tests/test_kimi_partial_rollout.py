"""Kimi k1.5's partial rollouts: the buffer, what is continued, what is trained on (reasoning.partial_rollout)."""

import random

import pytest

from rlllm_course.reasoning.partial_rollout import (PartialRolloutBuffer, Segment, Trajectory, add_segment,
                                                    end_iteration, plan_iteration, segment_loss_mask)

EOS = 0
BUDGET = 4


def test_an_empty_buffer_continues_nothing():
    buffer = PartialRolloutBuffer()
    assert len(buffer) == 0 and buffer.pop_all() == []
    batch = plan_iteration(["p0", "p1"], buffer)
    assert [t.prompt for t in batch] == ["p0", "p1"]
    assert all(t.segments == () and not t.finished for t in batch)  # fresh, nothing generated yet
    assert plan_iteration([], buffer) == []


def test_a_trajectory_ending_exactly_at_the_budget_is_finished_not_buffered():
    buffer = PartialRolloutBuffer()
    [t] = plan_iteration(["p"], buffer)
    t = add_segment(t, [5, 6, 7, EOS], iteration=0, budget=BUDGET, eos_token_id=EOS)
    # 4 tokens = the budget, but the last is the eos: the response is over (a length test would buffer it)
    assert t.finished
    assert end_iteration([t], buffer) == [t] and len(buffer) == 0


def test_a_trajectory_cut_by_the_budget_is_buffered_and_continued_where_it_stopped():
    buffer = PartialRolloutBuffer()
    short, long = plan_iteration(["short", "long"], buffer)
    short = add_segment(short, [5, EOS], 0, BUDGET, EOS)
    long = add_segment(long, [1, 2, 3, 4], 0, BUDGET, EOS)  # used the whole budget, no eos
    assert short.finished and not long.finished
    assert end_iteration([short, long], buffer) == [short]
    assert len(buffer) == 1
    # iteration 1: the buffered one first, then the new prompt; the buffer is emptied
    continued, fresh = plan_iteration(["new"], buffer)
    assert continued is long and fresh.prompt == "new" and len(buffer) == 0
    continued = add_segment(continued, [5, 6, EOS], 1, BUDGET, EOS)
    assert continued.response == [1, 2, 3, 4, 5, 6, EOS]  # contiguous: nothing regenerated, nothing lost
    assert [s.iteration for s in continued.segments] == [0, 1]
    assert long.segments == (Segment((1, 2, 3, 4), 0),)  # immutable: the buffered copy did not change


def test_loss_mask_trains_on_the_current_segment_only_by_default():
    t = Trajectory("p")
    t = add_segment(t, [1, 2, 3, 4], 0, BUDGET, EOS)
    t = add_segment(t, [5, 6, 7, 8], 1, BUDGET, EOS)
    t = add_segment(t, [9, EOS], 2, BUDGET, EOS)
    # stale segments (iterations 0 and 1, from older policies) are excluded unless asked for
    assert segment_loss_mask(t, 2) == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1]
    assert segment_loss_mask(t, 2, exclude_stale=False) == [1] * 10
    assert len(segment_loss_mask(t, 2)) == t.response_length == len(t.response)
    # a one-iteration trajectory has no stale part: both settings agree
    one = add_segment(Trajectory("q"), [1, EOS], 5, BUDGET, EOS)
    assert segment_loss_mask(one, 5) == segment_loss_mask(one, 5, exclude_stale=False) == [1, 1]
    assert segment_loss_mask(one, 7) == [0, 0]  # trained on later: all of it is stale
    with pytest.raises(ValueError, match="after iteration"):
        segment_loss_mask(t, 1)  # segment 2 did not exist yet at iteration 1


def test_max_length_ends_a_trajectory_without_an_eos():
    t = add_segment(Trajectory("p"), [1, 2, 3, 4], 0, BUDGET, EOS, max_length=6)
    assert not t.finished
    t = add_segment(t, [5, 6], 1, BUDGET, EOS, max_length=6)  # shorter than the budget: the cap stopped it
    assert t.finished and t.response_length == 6
    with pytest.raises(ValueError, match="max_length"):
        add_segment(Trajectory("p"), [1, 2, 3], 0, BUDGET, EOS, max_length=2)


def test_a_long_tailed_batch_generates_every_token_once_and_finishes_everything():
    # responses of random lengths rolled under a budget: each comes back whole, in ceil(L / budget) iterations
    rng = random.Random(0)
    lengths = {f"p{i}": rng.choice([1, 3, 4, 5, 8, 9, 17]) for i in range(30)}
    targets = {p: list(range(1, n)) + [EOS] for p, n in lengths.items()}  # eos is the n-th token
    buffer, done, iteration, queue = PartialRolloutBuffer(), {}, 0, list(lengths)
    while queue or len(buffer):
        batch = plan_iteration(queue[:6], buffer)
        queue = queue[6:]
        batch = [add_segment(t, targets[t.prompt][t.response_length:t.response_length + BUDGET], iteration, BUDGET, EOS)
                 for t in batch]
        for t in end_iteration(batch, buffer):
            assert t.prompt not in done  # a finished trajectory leaves for good
            done[t.prompt] = t
        iteration += 1
    assert sorted(done) == sorted(lengths)
    for p, t in done.items():
        assert t.response == targets[p]
        assert len(t.segments) == -(-lengths[p] // BUDGET)  # ceil: an exact multiple takes no extra iteration
        assert all(len(s.tokens) == BUDGET for s in t.segments[:-1])
        its = [s.iteration for s in t.segments]
        assert its == list(range(its[0], its[0] + len(its)))  # continued in the very next iteration


def test_the_buffer_holds_only_started_unfinished_trajectories_once():
    buffer = PartialRolloutBuffer()
    finished = add_segment(Trajectory("p"), [EOS], 0, BUDGET, EOS)
    with pytest.raises(ValueError, match="finished"):
        buffer.add(finished)
    with pytest.raises(ValueError, match="no segment"):
        buffer.add(Trajectory("p"))  # planned but never rolled
    cut = add_segment(Trajectory("p"), [1, 2, 3, 4], 0, BUDGET, EOS)
    buffer.add(cut)
    with pytest.raises(ValueError, match="already"):
        buffer.add(cut)
    # two samples of the same prompt with the same tokens are two trajectories
    buffer.add(add_segment(Trajectory("p"), [1, 2, 3, 4], 0, BUDGET, EOS))
    assert len(buffer) == 2
    assert buffer.pop_all()[0] is cut and len(buffer) == 0


@pytest.mark.parametrize("tokens, iteration, budget, match", [
    ([1, 2, 3, 4, 5], 1, BUDGET, "at most budget"),
    ([1, EOS, 2], 1, BUDGET, "stop at the eos"),
    ([1, 2], 1, BUDGET, "whole budget"),            # stopped early without an eos: tokens were lost
    ([], 1, BUDGET, "whole budget"),
    ([1, EOS], 0, BUDGET, "iteration"),             # the same iteration twice
    ([1, EOS], -1, BUDGET, "iteration"),
    ([1, EOS], 1, 0, "budget"),
])
def test_add_segment_rejects_bad_input(tokens, iteration, budget, match):
    t = add_segment(Trajectory("p"), [1, 2, 3, 4], 0, BUDGET, EOS)
    with pytest.raises(ValueError, match=match):
        add_segment(t, tokens, iteration, budget, EOS)


def test_a_finished_trajectory_cannot_be_continued():
    t = add_segment(Trajectory("p"), [1, EOS], 0, BUDGET, EOS)
    with pytest.raises(ValueError, match="finished"):
        add_segment(t, [2, EOS], 1, BUDGET, EOS)


def test_continue_or_finish_buffers_only_what_the_budget_cut():
    from rlllm_course.reasoning.partial_rollout import PartialRolloutBuffer, Trajectory, continue_or_finish
    buffer = PartialRolloutBuffer()
    cut = continue_or_finish(Trajectory("a"), [5, 6, 7], 0, 3, 2, buffer)
    assert not cut.finished and buffer.pop_all() == [cut]
    ended = continue_or_finish(Trajectory("b"), [5, 6, 2], 0, 3, 2, buffer)  # the eos is the budget-th token
    assert ended.finished and len(buffer) == 0
    with pytest.raises(ValueError):
        continue_or_finish(Trajectory("c"), [5, 6], 0, 3, 2, buffer)  # cut short without an eos
    assert len(buffer) == 0
