"""Tests of the tiny LM stack: tokenizer, tasks, rewards, load_policy, rollouts, pass@k."""

import itertools
import json
import math

import pytest
import torch
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

from rlllm_course.llm import tasks
from rlllm_course.llm.model import SHIPPED_MODELS, load_policy, tiny_config
from rlllm_course.llm.rewards import (
    accuracy_reward, consistency_reward, extract_answer, format_reward, length_penalty,
)
from rlllm_course.llm.rollout import (
    completion_mask_from_ids, generate, pass_at_k, sequence_logprobs,
)
from rlllm_course.llm.tokenizer import TAG_TOKENS, build_tokenizer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module")
def tiny():
    return load_policy("tiny")


# ---------------------------------------------------------------- tokenizer
def test_tokenizer_round_trip_and_one_token_per_character(tokenizer):
    text = "Q:478+356\nA:<think>8+6=14,7+5+1=13</think><answer>834</answer>"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    # 9 + 1 + 2 characters of prompt, 1 tag, 15 characters, 1 tag, 1 tag, 3 digits, 1 tag
    assert len(ids) == len("Q:478+356\nA:") + 1 + len("8+6=14,7+5+1=13") + 2 + 3 + 1


def test_tags_are_single_tokens_and_specials_are_set(tokenizer):
    for tag in TAG_TOKENS:
        assert len(tokenizer(tag, add_special_tokens=False)["input_ids"]) == 1, tag
    assert tokenizer.pad_token_id == 0 and tokenizer.eos_token == "<eos>"
    assert tokenizer.padding_side == "left"
    # a character outside the alphabet becomes <unk>, never an error
    assert tokenizer.convert_ids_to_tokens(tokenizer("x", add_special_tokens=False)["input_ids"]) == ["<unk>"]


def test_tokenizer_save_and_reload(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    again = PreTrainedTokenizerFast.from_pretrained(tmp_path)
    text = "<think>1+2=3</think><answer>3</answer>"
    assert again(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert again.get_vocab() == tokenizer.get_vocab()


# ---------------------------------------------------------------- tasks
def test_generators_are_deterministic():
    assert tasks.addition_problems(50, seed=3) == tasks.addition_problems(50, seed=3)
    assert tasks.addition_problems(50, seed=3) != tasks.addition_problems(50, seed=4)
    assert tasks.countdown_problems(10, seed=3) == tasks.countdown_problems(10, seed=3)


def test_heldout_split_is_disjoint_from_training():
    # the split is a property of the question: no training seed can reach an eval question
    evaluation = {p["question"] for p in tasks.addition_problems(500, seed=1234, split="eval")}
    assert len(evaluation) == 500  # no duplicates in the evaluation set
    for seed in (0, 1):
        train = {p["question"] for p in tasks.addition_problems(5000, seed=seed)}
        assert not evaluation & train
    cd_eval = {p["question"] for p in tasks.countdown_problems(30, seed=0, split="eval")}
    cd_train = {p["question"] for p in tasks.countdown_problems(300, seed=0)}
    assert not cd_eval & cd_train


def test_addition_chain_of_thought_and_carry_bug():
    p = tasks.addition_problem(478, 356)
    assert p["answer"] == "834" and p["think"] == "8+6=14,7+5+1=13,4+3+1=8"
    assert p["think_buggy"] == "8+6=14,7+5=12,4+3=7" and p["buggy_answer"] == "724"
    # without any carry the bug is harmless
    q = tasks.addition_problem(123, 456)
    assert q["buggy_answer"] == q["answer"] == "579"
    # a final carry writes the leading digit
    assert tasks.addition_problem(95, 87)["answer"] == "182"


def test_check_addition():
    p = tasks.addition_problem(478, 356)
    assert tasks.check_answer("834", p) and tasks.check_answer(" 834 ", p)
    assert not tasks.check_answer("724", p) and not tasks.check_answer("8 34", p)
    assert not tasks.check_answer("", p) and not tasks.check_answer("834.0", p)


def test_countdown_answers_and_rules():
    for p in tasks.countdown_problems(20, seed=0):
        assert tasks.check_answer(p["answer"], p), p  # every problem is solvable
    p = {"task": "countdown", "numbers": [3, 5, 7], "target": 22}
    assert tasks.check_countdown("3*5+7", p) and tasks.check_countdown("(7+5*3)", p)
    assert not tasks.check_countdown("3*5+7+0", p)  # uses a number not given
    assert not tasks.check_countdown("3*7+1", p)  # wrong numbers
    assert not tasks.check_countdown("22", p)
    assert not tasks.check_countdown("__import__('os')", p)  # never evaluated
    assert tasks.check_countdown("7/2*4", {"numbers": [2, 4, 7], "target": 14})  # exact fractions
    assert not tasks.check_countdown("7/0+2", {"numbers": [0, 2, 7], "target": 2})


def test_prompt_templates():
    p = tasks.addition_problem(12, 34)
    assert tasks.make_prompt(p) == "Q:12+34\nA:"
    long = tasks.make_prompt(p, tasks.R1_ZERO_TEMPLATE)
    assert long.endswith("User: 12+34. Assistant:") and "<think> </think>" in long


# ---------------------------------------------------------------- rewards
def test_format_reward_cases():
    completions = [
        "<think>1+2=3</think><answer>3</answer>",  # the R1-Zero format
        "<think>a</think> \n<answer>3</answer>\n",  # whitespace between and after is fine
        "<answer>3</answer>",  # no think block
        "<think>1</think>3",  # no answer tags
        "<think>1</think><answer>3</answer>4",  # trailing text
        "<think><think>1</think><answer>3</answer>",  # nested tag
        "<think>1</think><answer>3</answer><answer>4</answer>",  # two answers
    ]
    assert format_reward(completions).tolist() == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_accuracy_reward_cases():
    p = tasks.addition_problem(478, 356)
    completions = ["<think>x</think><answer>834</answer>", "<answer>834</answer>", "834",
                   "<answer>724</answer>", "<answer>1</answer><answer>834</answer>"]
    rewards = accuracy_reward(completions, [p] * 5)
    assert rewards.dtype == torch.float32
    assert rewards.tolist() == [1.0, 1.0, 0.0, 0.0, 1.0]  # untagged: 0; the last answer counts
    assert extract_answer("no tags") is None
    with pytest.raises(ValueError, match="problems"):
        accuracy_reward(completions, [p])


def test_length_penalty_kimi_formula():
    # group 1: lengths 10, 20, 30 -> lambda = 0.5, 0, -0.5; group 2: all equal -> 0
    lengths = torch.tensor([10, 20, 30, 7, 7, 7])
    correct = torch.tensor([1, 0, 0, 1, 0, 1])
    reward = length_penalty(lengths, correct, group_size=3)
    # a wrong short answer is not rewarded: min(0, lambda)
    assert reward.tolist() == pytest.approx([0.5, 0.0, -0.5, 0.0, 0.0, 0.0])
    assert length_penalty(torch.tensor([10, 30]), torch.tensor([0, 1]), 2).tolist() == [0.0, -0.5]


def test_consistency_reward_share_of_target_words():
    completions = ["<think>add the units, carry</think><answer>3</answer>",
                   "<think>add 進位 then 3</think><answer>3</answer>", "<answer>3</answer>", "<think></think>"]
    assert consistency_reward(completions).tolist() == pytest.approx([1.0, 0.75, 0.0, 0.0])
    digits_only = consistency_reward(["<think>8+6=14,x</think>"], is_target_word=lambda w: w[0].isdigit())
    assert digits_only.tolist() == [0.5]


# ---------------------------------------------------------------- load_policy
def test_load_shipped_tiny_model(tiny):
    model, tok = tiny
    assert isinstance(model, LlamaForCausalLM) and not model.training
    assert model.config.vocab_size == len(tok) and tok.padding_side == "left"
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    files = {f.name for f in SHIPPED_MODELS["tiny"].iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "base_metrics.json"} <= files
    metrics = json.loads((SHIPPED_MODELS["tiny"] / "base_metrics.json").read_text())
    # a weak base with room for RL: low greedy accuracy and format, higher pass@8
    assert metrics["greedy"]["pass@1"] <= 0.15 and metrics["greedy"]["format"] <= 0.40
    assert metrics["sampled"]["pass@8"] > 2 * metrics["greedy"]["pass@1"]


def test_load_policy_from_a_local_folder(tokenizer, tmp_path):
    # the same code path as a real model on disk: config + safetensors + tokenizer files
    torch.manual_seed(0)
    model = LlamaForCausalLM(tiny_config(len(tokenizer), 0, 2, hidden_size=16, num_layers=1,
                                         num_heads=2, intermediate_size=32))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, tok = load_policy(str(tmp_path))
    ids = torch.tensor([[5, 9, 10, 11]])
    assert torch.allclose(loaded(ids).logits, model.eval()(ids).logits, atol=1e-6)
    assert tok.get_vocab() == tokenizer.get_vocab() and tok.padding_side == "left"


def test_load_policy_uses_autotokenizer_for_a_model_tokenizer_class(tokenizer, tmp_path):
    # a real model folder names its own tokenizer class; that one is loaded via AutoTokenizer
    model = LlamaForCausalLM(tiny_config(len(tokenizer), 0, 2, hidden_size=16, num_layers=1,
                                         num_heads=2, intermediate_size=32))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "LlamaTokenizerFast"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    _, tok = load_policy(str(tmp_path))
    text = "<think>1+2=3</think>"
    assert tok(text)["input_ids"] == tokenizer(text)["input_ids"] and tok.padding_side == "left"


def test_load_policy_unknown_name_fails_without_download():
    with pytest.raises(FileNotFoundError, match="name_or_path"):
        load_policy("Qwen/Qwen2.5-0.5B-Instruct-not-here")


# ---------------------------------------------------------------- rollouts
PROMPTS = ["Q:1+2\nA:", "Q:478+356\nA:", "Q:12+34\nA:"]


def test_generate_shapes_masks_and_left_padding(tiny):
    model, tok = tiny
    torch.manual_seed(0)
    out = generate(model, tok, PROMPTS, group_size=4, max_new_tokens=24)
    assert out.prompt_ids.shape[0] == 12 and out.completion_ids.shape[0] == 12
    assert out.prompt_index.tolist() == [0] * 4 + [1] * 4 + [2] * 4  # prompt by prompt
    # left padding: the shorter prompts start with pad, every prompt ends in its last character
    assert (out.prompt_mask[:4, 0] == 0).all() and (out.prompt_mask[4:8] == 1).all()
    assert (out.prompt_ids[out.prompt_mask == 0] == tok.pad_token_id).all()
    assert (out.prompt_ids[:, -1] == tok.convert_tokens_to_ids(":")).all()
    # the completion mask covers the tokens up to and including the first eos, then padding
    for ids, mask, text in zip(out.completion_ids, out.completion_mask, out.completions):
        n = int(mask.sum())
        assert mask[:n].all() and not mask[n:].any()
        assert (ids[n:] == tok.pad_token_id).all()
        if (ids[:n] == tok.eos_token_id).any():
            assert ids[n - 1] == tok.eos_token_id and (ids[:n - 1] != tok.eos_token_id).all()
        assert "<eos>" not in text and "<pad>" not in text


def test_greedy_generation_does_not_depend_on_padding(tiny):
    # a prompt alone and the same prompt left-padded in a batch give the same completion
    model, tok = tiny
    alone = generate(model, tok, ["Q:1+2\nA:"], max_new_tokens=20, greedy=True).completions
    batched = generate(model, tok, ["Q:1+2\nA:", "Q:478+356\nA:"], max_new_tokens=20, greedy=True)
    assert batched.completions[0] == alone[0]


def test_completion_mask_from_ids():
    ids = torch.tensor([[5, 2, 0, 0], [5, 6, 7, 8], [2, 0, 0, 0]])
    assert completion_mask_from_ids(ids, eos_token_id=2).tolist() == [
        [1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]  # eos kept; no eos: the whole row


def test_sequence_logprobs_match_a_manual_forward(tiny):
    model, tok = tiny
    torch.manual_seed(1)
    out = generate(model, tok, PROMPTS, group_size=2, max_new_tokens=16)
    logp = sequence_logprobs(model, out.prompt_ids, out.prompt_mask, out.completion_ids, out.completion_mask)
    assert logp.shape == out.completion_ids.shape
    assert (logp[out.completion_mask == 0] == 0).all()
    for b in range(logp.shape[0]):  # one row at a time, no padding at all
        prompt = out.prompt_ids[b][out.prompt_mask[b] == 1]
        completion = out.completion_ids[b][out.completion_mask[b] == 1]
        ids = torch.cat([prompt, completion])[None]
        with torch.no_grad():
            logits = model(ids).logits[0, len(prompt) - 1:-1]  # predictions of the completion
        manual = torch.log_softmax(logits, -1).gather(1, completion[:, None])[:, 0]
        assert torch.allclose(logp[b, :len(completion)], manual, atol=1e-5), b


def test_sequence_logprobs_temperature_and_gradient(tiny):
    model, tok = tiny
    out = generate(model, tok, PROMPTS[:1], max_new_tokens=8, greedy=True)
    args = (model, out.prompt_ids, out.prompt_mask, out.completion_ids, out.completion_mask)
    hot = sequence_logprobs(*args, temperature=2.0)
    assert not torch.allclose(hot, sequence_logprobs(*args))
    hot.sum().backward()  # gradients flow to the weights
    assert model.model.embed_tokens.weight.grad is not None
    model.zero_grad(set_to_none=True)


# ---------------------------------------------------------------- pass@k
@pytest.mark.parametrize("n,c,k", [(5, 0, 1), (5, 2, 1), (5, 2, 3), (6, 3, 4), (8, 1, 8), (7, 7, 2)])
def test_pass_at_k_matches_enumeration(n, c, k):
    # the share of k-subsets of the n samples that hold at least one correct sample
    samples = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    brute = sum(any(samples[i] for i in s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)


def test_pass_at_1_is_the_accuracy_and_k_checks():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(200, 10, 100) == pytest.approx(1 - math.comb(190, 100) / math.comb(200, 100))
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


# ---------------------------------------------------------------- pretraining
def test_pretraining_is_reproducible_and_trains_on_responses_only(tokenizer):
    import random

    from rlllm_course.llm.pretrain import PretrainConfig, make_batch, pretrain

    config = PretrainConfig(steps=2, batch_size=4, hidden_size=16, num_layers=1, num_heads=2,
                            intermediate_size=32)
    a, b = pretrain(tokenizer, config, progress=False), pretrain(tokenizer, config, progress=False)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name  # same seed, same weights, bit for bit
    problem = tasks.addition_problem(478, 356)
    input_ids, attention_mask, labels = make_batch([problem], tokenizer, random.Random(0), config)
    n_prompt = len(tasks.make_prompt(problem))
    assert (labels[0, :n_prompt] == -100).all()  # the prompt is given, not learned
    assert labels[0, attention_mask[0].sum() - 1] == tokenizer.eos_token_id  # the response ends with eos
