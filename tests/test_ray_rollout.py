"""verl's single-controller pattern with Ray on one machine (scale.ray_rollout): merging, weight sync, parallel rollouts."""

import pytest
import torch

from rlllm_course.llm.grpo import GRPOConfig
from rlllm_course.llm.model import load_policy
from rlllm_course.llm.rollout import Rollout, generate
from rlllm_course.llm.tasks import addition_problems, make_prompt
from rlllm_course.scale import ray_rollout


def fake_rollout(n_prompts, G, P, T, fill):
    B = n_prompts * G
    return Rollout(torch.full((B, P), fill), torch.ones(B, P, dtype=torch.long), torch.full((B, T), fill),
                   torch.ones(B, T, dtype=torch.long), [str(fill)] * B,
                   torch.arange(n_prompts).repeat_interleave(G))


def test_merge_pads_prompts_left_and_completions_right_and_renumbers_prompts():
    merged = ray_rollout.merge_rollouts([fake_rollout(2, 3, 4, 5, 7), fake_rollout(1, 3, 6, 2, 8)], pad_token_id=0)
    assert merged.prompt_ids.shape == (9, 6) and merged.completion_ids.shape == (9, 5)
    assert merged.prompt_ids[0].tolist() == [0, 0, 7, 7, 7, 7] and merged.prompt_mask[0].tolist() == [0, 0, 1, 1, 1, 1]
    assert merged.completion_ids[6].tolist() == [8, 8, 0, 0, 0] and merged.completion_mask[6].tolist() == [1, 1, 0, 0, 0]
    assert merged.prompt_index.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert merged.completions == ["7"] * 6 + ["8"] * 3


@pytest.fixture(scope="module")
def ray():
    ray = pytest.importorskip("ray", reason="pip install -e '.[scale]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def workers(ray):
    """Two rollout actors of the tiny model, started once (each start imports torch in a new process)."""
    return ray_rollout.make_workers(2, "tiny")


def test_workers_get_the_learners_weights_and_sample_what_it_would(ray, workers):
    torch.set_num_threads(1)
    model, tokenizer = load_policy("tiny")
    with torch.no_grad():  # a learner that has moved away from the shipped weights
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    ray_rollout.sync_weights(workers, model)
    expected = float(sum(p.double().sum() for p in model.parameters()))
    assert ray.get([w.weights_checksum.remote() for w in workers]) == [pytest.approx(expected, abs=1e-9)] * 2
    prompts = [make_prompt(p) for p in addition_problems(4, seed=3)]
    config = GRPOConfig(group_size=3, max_new_tokens=12)
    parts = ray_rollout.parallel_rollout(workers, prompts, config, seed=5)
    assert [len(p.completions) for p in parts] == [6, 6]  # two prompts (six rows) each
    for k, (part, share) in enumerate(zip(parts, (prompts[:2], prompts[2:]))):  # the same sample, here and there
        torch.manual_seed(5 * 100 + k)
        local = generate(model, tokenizer, share, group_size=3, max_new_tokens=12)
        assert part.completions == local.completions
        assert torch.equal(part.completion_ids, local.completion_ids)
    merged = ray_rollout.merge_rollouts(parts, tokenizer.pad_token_id)
    assert merged.completions == parts[0].completions + parts[1].completions


def test_grpo_with_ray_workers_trains_the_learner(ray, workers):
    config = GRPOConfig(steps=2, prompts_per_step=4, group_size=4, max_new_tokens=16)
    reference, _ = load_policy("tiny")
    model, history = ray_rollout.train_grpo_ray(config, workers=workers)  # the learner's weights go to them first
    assert [log["step"] for log in history] == [0, 1]
    assert all(len(log["rewards"]) == 16 and log["rollout_seconds"] > 0 and log["sync_seconds"] > 0 for log in history)
    moved = any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    mixed = any(len(set(log["rewards"][i:i + 4])) > 1 for log in history for i in range(0, 16, 4))
    assert moved == mixed  # the learner moved if and only if some group carried a signal
