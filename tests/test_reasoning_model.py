import json

import pytest
import torch

from rlllm_course.llm.model import SHIPPED_MODELS, load_policy
from rlllm_course.llm.rollout import generate
from rlllm_course.llm.tasks import make_prompt
from rlllm_course.reasoning.evaluate import evaluate_levels
from rlllm_course.reasoning.pretrain import (ReasoningPretrainConfig, build_reasoning_tokenizer,
                                             pretrain_reasoning)
from rlllm_course.reasoning.tasks import CHINESE_DIGITS, levelled_eval_set


def metrics(name):
    return json.loads((SHIPPED_MODELS[name] / "base_metrics.json").read_text())


@pytest.mark.parametrize("name", ["reasoning", "reasoning-small"])
def test_shipped_reasoning_models_load_with_their_tokenizer(name):
    model, tok = load_policy(name)
    assert len(tok) == model.config.vocab_size == 48  # the course's own characters, not a hub tokenizer
    text = "<think>5+1=6,八+六=一四 wait 七+五+一=一三</think><answer>8346</answer>"
    assert tok.decode(tok(text)["input_ids"]) == text
    assert all(tok.convert_tokens_to_ids(ch) != tok.unk_token_id for ch in CHINESE_DIGITS)


def test_base_metrics_describe_a_base_worth_training():
    m = metrics("reasoning")
    hard = m["level_5"]
    assert hard["pass@1"] <= 0.10 and hard["pass@8"] >= hard["pass@1"] + 0.15  # RL has samples to learn from
    assert m["level_2"]["pass@1"] > hard["pass@1"] + 0.3  # short guesses work on the easy level
    assert 0.0 < m["overall"]["reflection"] <= 0.05  # it re-checks, rarely
    assert m["overall"]["mixed"] > 0.0
    small = metrics("reasoning-small")
    assert small["parameters"] * 4 <= m["parameters"]


def test_base_metrics_are_reproduced_on_a_subset():
    model, tok = load_policy("reasoning")
    problems = levelled_eval_set(100)
    torch.manual_seed(0)
    got = evaluate_levels(model, tok, problems[-100:], n_samples=0)  # greedy, level 5
    assert got["levels"][5]["pass@1"] == pytest.approx(metrics("reasoning")["level_5"]["pass@1"], abs=0.02)


def test_samples_show_the_mixture():
    model, tok = load_policy("reasoning")
    torch.manual_seed(0)
    out = generate(model, tok, [make_prompt(p) for p in levelled_eval_set(16)[-16:]], group_size=8,
                   max_new_tokens=96)
    assert any(c.startswith("<think>") for c in out.completions)
    assert any(c.startswith("<answer>") for c in out.completions)
    assert any(any(ch in c for ch in CHINESE_DIGITS) for c in out.completions)


def test_pretraining_is_reproducible():
    tok = build_reasoning_tokenizer()
    config = ReasoningPretrainConfig(steps=3, batch_size=8, hidden_size=32, intermediate_size=64)
    a, history = pretrain_reasoning(tok, config, progress=False)
    b, _ = pretrain_reasoning(tok, config, progress=False)
    assert len(history) == 3
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
