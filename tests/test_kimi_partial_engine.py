"""Kimi k1.5's partial rollouts run with the model: segments, throughput, GRPO on whole groups."""

import math
from dataclasses import replace

import pytest
import torch

from rlllm_course.llm.grpo import GRPOConfig
from rlllm_course.llm.model import load_policy
from rlllm_course.llm.rollout import generate, sequence_logprobs
from rlllm_course.llm.tasks import make_prompt
from rlllm_course.reasoning.partial_grpo import complete_groups, partial_grpo_step, train_partial_grpo
from rlllm_course.reasoning.partial_rollout import Trajectory, add_segment
from rlllm_course.reasoning.partial_rollout_engine import (full_rollouts, generate_segments, pad_ids,
                                                           partial_rollouts, prefill_by_length, prompt_token_ids)
from rlllm_course.reasoning.tasks import reasoning_problems

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def policy():
    return load_policy("reasoning")


@pytest.fixture(scope="module")
def problems():
    return reasoning_problems(10, seed=3, split="train")


def greedy_responses(model, tokenizer, problems, max_length):
    """The reference: one uninterrupted greedy generation per problem, as lists of ids (eos kept)."""
    out = generate(model, tokenizer, [make_prompt(p) for p in problems], max_new_tokens=max_length, greedy=True)
    return [[i for i, m in zip(ids, mask) if m]
            for ids, mask in zip(out.completion_ids.tolist(), out.completion_mask.tolist())]


@pytest.mark.parametrize("budget, max_length", [(1, 40), (3, 40), (40, 40), (100, 40), (3, 7)])
def test_greedy_continuation_equals_one_uninterrupted_generation(policy, problems, budget, max_length):
    model, tokenizer = policy
    want = greedy_responses(model, tokenizer, problems, max_length)
    # 4 slots for 10 problems: continued and new rows share batches, so rows differ in left padding
    out = partial_rollouts(model, tokenizer, problems, slots=4, budget=budget, max_length=max_length, greedy=True)
    got = {t.prompt["question"]: t.response for t in out["trajectories"]}
    assert [got[p["question"]] for p in problems] == want
    if budget < max(map(len, want)):
        assert any(r["continued"] and r["new"] for r in out["iterations"])  # a mixed batch did happen


def test_prefill_by_length_caches_what_one_padded_forward_caches(policy):
    model, tokenizer = policy
    g = torch.Generator().manual_seed(0)
    rows = [torch.randint(3, 40, (n,), generator=g).tolist() for n in (12, 40, 13, 1, 70, 30, 12)]
    width = max(map(len, rows)) - 1
    ids, mask = pad_ids([r[:-1] for r in rows], tokenizer.pad_token_id)  # (R, width)
    with torch.no_grad():
        one = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                    use_cache=True)
    cache = prefill_by_length(model, rows, tokenizer.pad_token_id, bucket=16)  # four groups, one of a single id
    layers = list(cache)
    assert len(layers) == model.config.num_hidden_layers
    real = mask.bool()[:, None, :, None]  # (R, 1, width, 1): the positions the attention mask lets through
    for (k, v, *_), (k1, v1, *_) in zip(layers, one[1]):
        assert k.shape == k1.shape == (len(rows), model.config.num_key_value_heads, width, model.config.head_dim)
        assert torch.allclose(k * real, k1 * real, atol=1e-5) and torch.allclose(v * real, v1 * real, atol=1e-5)
    assert prefill_by_length(model, [[5], [7]], tokenizer.pad_token_id) is None  # nothing before the last id


def test_stored_logprobs_are_the_samplers_at_its_temperature(policy, problems):
    model, tokenizer = policy
    torch.manual_seed(0)
    trajectories = partial_rollouts(model, tokenizer, problems, slots=4, budget=3, max_length=40,
                                    temperature=0.7)["trajectories"]
    assert any(len(t.segments) > 2 for t in trajectories)  # continued across several iterations
    prompt_ids, prompt_mask = pad_ids(prompt_token_ids(tokenizer, trajectories), tokenizer.pad_token_id)
    ids, mask = pad_ids([t.response for t in trajectories], tokenizer.pad_token_id, side="right")
    stored, _ = pad_ids([[x for s in t.segments for x in s.logprobs] for t in trajectories], 0.0, side="right",
                        dtype=torch.float)
    with torch.no_grad():
        at_07 = sequence_logprobs(model, prompt_ids, prompt_mask, ids, mask, temperature=0.7)
        at_1 = sequence_logprobs(model, prompt_ids, prompt_mask, ids, mask, temperature=1.0)
    assert torch.allclose(stored, at_07, atol=1e-4)
    assert (stored - at_1).abs().max() > 1e-2  # the tolerance tells the temperatures apart


def test_segments_respect_the_budget_and_max_length(policy, problems):
    model, tokenizer = policy
    eos, budget, max_length = tokenizer.eos_token_id, 4, 10
    torch.manual_seed(1)
    trajectories = partial_rollouts(model, tokenizer, problems * 3, slots=8, budget=budget,
                                    max_length=max_length)["trajectories"]
    for t in trajectories:
        assert all(len(s.tokens) == budget and eos not in s.tokens for s in t.segments[:-1])  # cut by the budget
        assert len(t.segments[-1].tokens) <= budget and t.response_length <= max_length
        assert t.response[-1] == eos or t.response_length == max_length
    assert any(t.response[-1] != eos for t in trajectories)  # some were stopped by the cap, not the eos


def test_an_eos_exactly_at_the_budget_finishes_the_trajectory(policy, problems):
    model, tokenizer = policy
    [want] = greedy_responses(model, tokenizer, problems[:1], 40)
    L = len(want)
    [t], _ = generate_segments(model, tokenizer, [Trajectory(problems[0])], 0, budget=L, max_length=40, greedy=True)
    assert t.finished and t.response == want and len(t.segments) == 1  # the L-th token is the eos
    [t], _ = generate_segments(model, tokenizer, [Trajectory(problems[0])], 0, budget=L - 1, max_length=40,
                               greedy=True)
    assert not t.finished  # one token short of the eos: buffered
    [t], steps = generate_segments(model, tokenizer, [t], 1, budget=1, max_length=40, greedy=True)
    assert t.finished and t.response == want and steps == 1


def test_both_phases_generate_every_response_once_and_count_its_tokens(policy, problems):
    model, tokenizer = policy
    many = reasoning_problems(24, seed=5, split="train")
    for run in (lambda: full_rollouts(model, tokenizer, many, batch_size=8, max_length=40),
                lambda: partial_rollouts(model, tokenizer, many, slots=8, budget=4, max_length=40)):
        torch.manual_seed(2)
        out = run()
        trajectories = out["trajectories"]
        assert len(trajectories) == len(many) and all(t.finished for t in trajectories)
        assert sorted(t.prompt["question"] for t in trajectories) == sorted(p["question"] for p in many)
        assert out["tokens"] == sum(t.response_length for t in trajectories)
        assert sum(r["new"] for r in out["iterations"]) == len(many)  # each problem started once
        assert sum(r["finished"] for r in out["iterations"]) == len(many)
        assert 0.0 <= out["idle"] <= 1.0 and out["decode_steps"] > 0
        assert out["tokens_per_second"] == pytest.approx(out["tokens"] / out["seconds"])


def test_idle_is_zero_when_every_response_has_the_same_length(policy, problems):
    model, tokenizer = policy
    same = [problems[0]] * 8  # greedy: eight identical responses, nobody waits
    assert full_rollouts(model, tokenizer, same, 4, 40, greedy=True)["idle"] == pytest.approx(0.0, abs=1e-12)
    assert partial_rollouts(model, tokenizer, same, 8, 3, 40, greedy=True)["idle"] == pytest.approx(0.0, abs=1e-12)
    # different lengths in a batch: the short ones wait for the longest
    assert full_rollouts(model, tokenizer, problems, 10, 40, greedy=True)["idle"] > 0.05


def test_partial_rollouts_with_a_budget_of_max_length_is_the_full_phase(policy, problems):
    model, tokenizer = policy
    full = full_rollouts(model, tokenizer, problems, 4, 40, greedy=True)
    partial = partial_rollouts(model, tokenizer, problems, 4, 40, 40, greedy=True)
    # nothing is ever buffered: the same batches, the same steps, the same idle
    assert [r["continued"] for r in partial["iterations"]] == [0, 0, 0]
    assert (partial["decode_steps"], partial["tokens"], partial["idle"]) == (full["decode_steps"], full["tokens"],
                                                                            full["idle"])


def test_arguments_are_checked(policy, problems):
    model, tokenizer = policy
    with pytest.raises(ValueError, match="budget"):
        partial_rollouts(model, tokenizer, problems, 4, 0, 40)
    with pytest.raises(ValueError, match="temperature"):
        full_rollouts(model, tokenizer, problems, 4, 40, temperature=0.0)
    with pytest.raises(ValueError, match="slots"):
        partial_rollouts(model, tokenizer, problems, 0, 4, 40)
    done = add_segment(Trajectory(problems[0]), [5, tokenizer.eos_token_id], 0, 4, tokenizer.eos_token_id)
    with pytest.raises(ValueError, match="unfinished"):
        generate_segments(model, tokenizer, [done], 1, 4, 40)
    with pytest.raises(ValueError, match="budget"):
        train_partial_grpo(GRPOConfig(model="reasoning-small", task="reasoning"), budget=0, progress=False)


def test_a_group_is_complete_when_its_last_member_finishes():
    def member(group):
        return add_segment(Trajectory({"group": group}), [9, 0], 0, 4, eos_token_id=0)

    waiting = {}
    a0, b0, a1, b1 = member("a"), member("b"), member("a"), member("b")
    assert complete_groups([a0, b0], waiting, group_size=2) == []  # one member each: both wait
    assert complete_groups([b1], waiting, 2) == [[b0, b1]]  # b completes first, in finishing order
    assert list(waiting) == ["a"]
    assert complete_groups([a1], waiting, 2) == [[a0, a1]] and waiting == {}


def test_stale_tokens_are_importance_weighted_against_their_samplers_logprobs():
    model, tokenizer = load_policy("reasoning-small")
    config = small_config(clip_eps=10.0)  # no clipping: the ratio metric is the raw mean ratio
    group = [dict(p, group=0) for p in reasoning_problems(1, seed=0, split="train")] * 2
    torch.manual_seed(0)
    trajectories = partial_rollouts(model, tokenizer, group, slots=2, budget=3, max_length=16)["trajectories"]
    iteration = max(t.segments[-1].iteration for t in trajectories)
    # pretend an older policy sampled the stale tokens 0.1 nats likelier: ratio exp(-0.1) on them
    shifted = [replace(t, segments=tuple(
        replace(s, logprobs=tuple(x + 0.1 for x in s.logprobs)) if s.iteration < iteration else s
        for s in t.segments)) for t in trajectories]
    stale = sum(len(s.tokens) for t in shifted for s in t.segments if s.iteration < iteration)
    total = sum(t.response_length for t in shifted)
    assert 0 < stale < total
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    log = partial_grpo_step(model, None, optimizer, shifted, tokenizer, config, iteration, exclude_stale=False)
    # current tokens: ratio 1 (old = current policy); stale tokens: pi_theta / pi_behaviour = exp(-0.1)
    expected = (total - stale + stale * math.exp(-0.1)) / total
    assert log["policy/ratio"] == pytest.approx(expected, abs=1e-5)
    assert log["stale_share"] == pytest.approx(stale / total)
    log = partial_grpo_step(model, None, optimizer, shifted, tokenizer, config, iteration, exclude_stale=True)
    assert log["policy/ratio"] == pytest.approx(1.0, abs=1e-6) and log["stale_share"] == 0.0


def small_config(**overrides):
    # 2 prompts x group 2 and a budget of 4 tokens: every response (6 tokens or more) spans iterations;
    # at seed 0 the two groups complete at iteration 3 with different rewards within a group
    return GRPOConfig(**{**dict(model="reasoning-small", task="reasoning", steps=4, prompts_per_step=2,
                             group_size=2, max_new_tokens=16, lr=1e-3, log_kl=False), **overrides})


def test_partial_grpo_trains_whole_groups_once_and_changes_the_policy():
    base, _ = load_policy("reasoning-small")
    model, _, history = train_partial_grpo(small_config(), budget=4, exclude_stale=True, progress=False)
    finishes, trained = {}, []
    for log in history:
        before = dict(finishes)
        for g in log["finished"]:
            finishes[g] = finishes.get(g, 0) + 1
        # a group is trained in the iteration its second (last) member finishes, not before, not after
        assert sorted(log["groups"]) == sorted(g for g, n in finishes.items() if n == 2 and before.get(g, 0) < 2)
        trained += log["groups"]
    assert trained and len(trained) == len(set(trained))  # at least one group, each once
    assert all(log["stale_share"] == 0.0 for log in history if log["groups"])
    assert any(log["continued"] for log in history)  # trajectories did span iterations
    assert any(log["grad_norm"] > 0 for log in history if log["groups"])  # a group with a signal
    changed = [not torch.equal(p, q) for p, q in zip(model.state_dict().values(), base.state_dict().values())]
    assert any(changed)


def test_partial_grpo_with_stale_segments_in_the_loss_is_reproducible():
    _, _, history = train_partial_grpo(small_config(), budget=4, exclude_stale=False, progress=False)
    trained = [log for log in history if log["groups"]]
    assert trained and any(log["stale_share"] > 0 for log in trained)  # earlier segments are in the loss
    _, _, again = train_partial_grpo(small_config(), budget=4, exclude_stale=False, progress=False)
    keys = ("tokens", "finished", "groups", "loss")
    assert [[log[k] for k in keys] for log in again] == [[log[k] for k in keys] for log in history]


def test_partial_grpo_resumes_with_its_buffer_and_waiting_groups(tmp_path):
    model, _, straight = train_partial_grpo(small_config(), budget=4, exclude_stale=False, progress=False)
    ckpt = str(tmp_path / "run")
    # stop after 2 iterations: trajectories sit in the buffer, no group is complete yet
    _, _, first = train_partial_grpo(small_config(steps=2, checkpoint_dir=ckpt, checkpoint_every=1), budget=4,
                                     exclude_stale=False, progress=False)
    assert first[-1]["buffered"] > 0
    resumed, _, history = train_partial_grpo(small_config(checkpoint_dir=ckpt), budget=4, exclude_stale=False,
                                             progress=False)
    keys = ("tokens", "continued", "finished", "groups", "loss")
    assert [[log[k] for k in keys] for log in history] == [[log[k] for k in keys] for log in straight]
    for a, b in zip(model.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="budget"):
        train_partial_grpo(small_config(checkpoint_dir=ckpt), budget=8, exclude_stale=False, progress=False)
