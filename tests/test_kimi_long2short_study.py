"""long2short four ways (reasoning.kimi_long2short): the merge of the long and the short model."""

import torch

from rlllm_course.llm.model import load_policy
from rlllm_course.reasoning import kimi_long2short as l2s


def test_merging_interpolates_between_the_long_and_the_short_model():
    long, _ = load_policy(l2s.LONG)
    short, _ = load_policy(l2s.SHORT)
    for alpha in (0.0, 0.3, 1.0):
        model, _ = l2s.merged(alpha)
        for name, p in model.state_dict().items():
            expected = alpha * long.state_dict()[name] + (1 - alpha) * short.state_dict()[name]
            assert torch.allclose(p, expected, atol=1e-6), (alpha, name)
