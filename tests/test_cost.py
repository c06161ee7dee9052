"""Cost on paper (scale.cost): 2N and 6N against torch's FLOP counter, a GRPO step's FLOPs, memory."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from rlllm_course.llm.model import load_policy
from rlllm_course.scale import cost


def test_2n_and_6n_match_torchs_flop_counter_on_the_tiny_model():
    model, _ = load_policy("tiny")
    n = sum(p.numel() for p in model.parameters())
    ids = torch.randint(5, 20, (4, 32), generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as forward:
        with torch.no_grad():
            model(input_ids=ids)
    with FlopCounterMode(display=False) as both:
        model(input_ids=ids, labels=ids).loss.backward()
    # the counter sees every matmul, attention's included: within 1% of the rule of thumb at 32 tokens
    assert forward.get_total_flops() == pytest.approx(cost.forward_flops(n, ids.numel()), rel=0.01)
    assert both.get_total_flops() == pytest.approx(cost.training_flops(n, ids.numel()), rel=0.01)


def test_a_grpo_step_counts_every_row_pass_and_update():
    step = cost.grpo_step_flops(n_params=10, prompts=2, group_size=4, prompt_tokens=3, response_tokens=5)
    tokens = 2 * 4 * (3 + 5)
    assert step.generation == 2 * 10 * tokens and step.logprobs == 2 * 10 * tokens and step.update == 6 * 10 * tokens
    assert step.total == 10 * 10 * tokens
    two = cost.grpo_step_flops(10, 2, 4, 3, 5, updates=2, reference=False)
    assert two.logprobs == 2 * 10 * tokens and two.update == 2 * 6 * 10 * tokens  # old log-probs, two updates
    with pytest.raises(ValueError, match="group_size must be >= 1"):
        cost.grpo_step_flops(10, 2, 0, 3, 5)


def test_memory_is_zeros_16_bytes_a_parameter_plus_the_reference_and_the_cache():
    assert cost.training_memory_bytes(1e9, reference=False) == 16e9
    assert cost.training_memory_bytes(1e9) == 18e9
    # a 0.5B model (Qwen2.5-0.5B: 24 layers, 2 KV heads of 64) rolling out 256 rows of 1024 tokens
    kv = cost.training_memory_bytes(0, reference=False, kv_tokens=256 * 1024, n_layers=24, n_kv_heads=2, head_dim=64)
    assert kv == 2 * 24 * 2 * 64 * 2 * 256 * 1024
    for bad in ("n_params", "kv_tokens", "n_layers", "n_kv_heads", "head_dim"):
        with pytest.raises(ValueError, match=bad):
            cost.training_memory_bytes(**{"n_params": 1e9, bad: -1})
    assert cost.seconds(1e12, 1e12, utilization=0.5) == 2.0
    with pytest.raises(ValueError, match="utilization"):
        cost.seconds(1.0, 1.0, utilization=0.0)
