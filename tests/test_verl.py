"""The course's pieces against verl 0.9.x's own code, on a CPU (module 15).

verl does not train without a GPU, but its algorithm module (``verl.trainer.ppo.core_algos``)
and its reward manager run on a CPU: GAE, GRPO's and RLOO's advantages, the clipped policy loss
under each ``loss_agg_mode``, the clipped value loss and the KL penalties are compared with the
course's functions on the same tensors, and the course's verl reward function is loaded and
called by verl's own ``NaiveRewardManager``. The verl dataset rows are checked without verl.
"""

import json

import numpy as np
import pytest
import torch

from rlllm_course.llm.losses import group_advantages, kl_k1, kl_k2, kl_k3, policy_loss, rloo_advantages
from rlllm_course.llm.tasks import addition_problems, countdown_problems
from rlllm_course.rlhf.ppo_math import clipped_value_loss, masked_gae, masked_whiten
from rlllm_course.scale import verl_data, verl_reward


def prefix_mask(lengths, T):
    return (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).float()  # (B, T)


# ---------------------------------------------------------------- the dataset rows and the reward, without verl
def test_rows_follow_verls_schema_and_round_trip_through_parquet(tmp_path):
    problems = addition_problems(3, seed=0) + countdown_problems(2, seed=0)
    path = verl_data.write_parquet(problems, tmp_path / "train.parquet", "train")
    from datasets import load_dataset
    rows = list(load_dataset("parquet", data_files=str(path), split="train"))
    assert rows == [verl_data.verl_row(p, i, "train") for i, p in enumerate(problems)]
    for row, problem in zip(rows, problems):
        assert set(row) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
        assert row["data_source"] == f"rlllm_course/{problem['task']}"
        assert [m["role"] for m in row["prompt"]] == ["user"] and "<answer>" in row["prompt"][0]["content"]
        assert row["reward_model"]["style"] == "rule"
        truth = json.loads(row["reward_model"]["ground_truth"])
        assert "question" not in truth and truth["task"] == problem["task"]
    assert "What is 874+404?" in rows[0]["prompt"][0]["content"]
    assert "Using the numbers 9, 8, 7" in rows[3]["prompt"][0]["content"]
    with pytest.raises(ValueError, match="split must be"):
        verl_data.verl_row(problems[0], 0, "eval")


def test_compute_score_is_the_course_rule_reward():
    addition, countdown = addition_problems(1, seed=0)[0], countdown_problems(1, seed=0)[0]
    truth = lambda p: verl_data.verl_row(p, 0, "test")["reward_model"]["ground_truth"]
    score = lambda p, text: verl_reward.compute_score(f"rlllm_course/{p['task']}", text, truth(p), {})
    right = f"<think>column by column</think> <answer>{addition['answer']}</answer>"
    assert score(addition, right) == {"score": 2.0, "acc": 1.0, "format": 1.0}
    assert score(addition, f"the answer is <answer>{addition['answer']}</answer>")["score"] == 1.0  # no think block
    assert score(addition, "<think>x</think><answer>1</answer>")["score"] == 1.0  # formatted, wrong
    assert score(addition, f"<think>x</think> {addition['answer']}")["score"] == 0.0  # no answer tags
    assert score(countdown, f"<think>x</think><answer>{countdown['answer']}</answer>")["acc"] == 1.0
    assert score(countdown, "<think>x</think><answer>9+8+7</answer>")["acc"] == 0.0
    assert verl_reward.compute_score("rlllm_course/addition", right, json.loads(truth(addition)))["score"] == 2.0
    with pytest.raises(ValueError, match="data_source"):
        verl_reward.compute_score("openai/gsm8k", right, truth(addition))


# ---------------------------------------------------------------- against verl's own code
@pytest.fixture(scope="module")
def core_algos():
    return pytest.importorskip("verl.trainer.ppo.core_algos", reason="pip install -e '.[scale]' and verl --no-deps")


def char_tokenizer():
    """A character-level tokenizer whose tags are plain text, as in a real chat model's vocabulary.

    The course's tiny tokenizers make <think> and <answer> special tokens, and verl's reward
    manager decodes with skip_special_tokens=True: it would hand the reward function a
    response without its tags, which then scores 0 on format (a real pitfall with such a model).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = ["<pad>", "<eos>"] + [chr(i) for i in range(32, 127)]
    tok = Tokenizer(models.WordLevel({c: i for i, c in enumerate(chars)}, unk_token=" "))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def test_verls_reward_manager_loads_and_calls_the_course_reward(core_algos):
    from omegaconf import OmegaConf
    from verl import DataProto
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.workers.reward_manager.naive import NaiveRewardManager

    tokenizer = char_tokenizer()
    config = OmegaConf.create({"reward": {"custom_reward_function": {"path": verl_reward.__file__,
                                                                     "name": "compute_score"}}})
    manager = NaiveRewardManager(tokenizer, num_examine=0, compute_score=get_custom_reward_fn(config))
    problems = addition_problems(3, seed=1)
    responses = [f"<think>sum</think><answer>{problems[0]['answer']}</answer>",
                 "<think>sum</think><answer>0</answer>", f"{problems[2]['answer']}"]
    P, T = 8, 64  # every response fits
    prompts = torch.full((3, P), tokenizer.pad_token_id)
    responses_ids = torch.full((3, T), tokenizer.pad_token_id)
    attention = torch.zeros(3, P + T, dtype=torch.long)
    lengths = []
    for i, text in enumerate(responses):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert len(ids) < T
        prompts[i, -2:] = torch.tensor(tokenizer("Q:", add_special_tokens=False)["input_ids"])
        responses_ids[i, :len(ids)] = torch.tensor(ids)
        attention[i, P - 2:P + len(ids)] = 1
        lengths.append(len(ids))
    rows = [verl_data.verl_row(p, i, "train") for i, p in enumerate(problems)]
    data = DataProto.from_dict(
        tensors={"prompts": prompts, "responses": responses_ids, "attention_mask": attention},
        non_tensors={key: np.array([r[key] for r in rows], dtype=object)
                     for key in ("data_source", "reward_model", "extra_info")})
    out = manager(data, return_dict=True)
    expected = [verl_reward.compute_score(r["data_source"], text, r["reward_model"]["ground_truth"])["score"]
                for r, text in zip(rows, responses)]
    assert expected == [2.0, 1.0, 0.0]
    for i, n in enumerate(lengths):  # the score sits on the last response token, 0 elsewhere
        assert out["reward_tensor"][i, n - 1].item() == expected[i]
        assert out["reward_tensor"][i].abs().sum().item() == abs(expected[i])
    assert out["reward_extra_info"]["acc"] == [1.0, 0.0, 0.0]


def test_gae_equals_verls_with_its_whitening(core_algos):
    g = torch.Generator().manual_seed(0)
    B, T = 6, 11
    mask = prefix_mask([11, 7, 3, 1, 9, 5], T)
    rewards, values = torch.randn(B, T, generator=g) * mask, torch.randn(B, T, generator=g)
    for gamma, lam in [(1.0, 0.95), (0.99, 0.9), (1.0, 1.0)]:
        theirs, their_returns = core_algos.compute_gae_advantage_return(rewards, values, mask, gamma, lam)
        ours, our_returns = masked_gae(rewards, values, mask, gamma, lam)
        on = mask.bool()
        torch.testing.assert_close(masked_whiten(ours, mask)[on], theirs[on], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(our_returns[on], their_returns[on], atol=1e-6, rtol=1e-6)


def test_grpo_and_rloo_advantages_equal_verls(core_algos):
    g = torch.Generator().manual_seed(1)
    N, G, T = 4, 5, 6
    scores = torch.randint(0, 3, (N * G,), generator=g).float()
    scores[:G] = 1.0  # one group with equal rewards: advantage 0
    mask = prefix_mask(torch.randint(1, T + 1, (N * G,), generator=g).tolist(), T)
    token_rewards = torch.zeros(N * G, T)
    token_rewards[torch.arange(N * G), mask.sum(-1).long() - 1] = scores  # the score on the last token
    index = np.repeat(np.arange(N), G)
    for scale, normalize in (("group", True), ("none", False)):
        theirs, _ = core_algos.compute_grpo_outcome_advantage(token_rewards, mask, index, epsilon=1e-6,
                                                              norm_adv_by_std_in_grpo=normalize)
        ours = group_advantages(scores, G, scale=scale, eps=1e-6)[:, None] * mask
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    theirs, _ = core_algos.compute_rloo_outcome_advantage(token_rewards, mask, index)
    torch.testing.assert_close(rloo_advantages(scores, G)[:, None] * mask, theirs, atol=1e-5, rtol=1e-5)


# the course's token aggregations and verl's loss_agg_mode of the same formula
AGGREGATIONS = {"bnpo": "token-mean", "grpo": "seq-mean-token-mean", "dr_grpo": "seq-mean-token-sum-norm"}


@pytest.mark.parametrize("ours, theirs", AGGREGATIONS.items())
def test_clipped_policy_loss_equals_verls_under_each_aggregation(core_algos, ours, theirs):
    from omegaconf import OmegaConf
    g = torch.Generator().manual_seed(2)
    B, T = 8, 9
    mask = prefix_mask(torch.randint(1, T + 1, (B,), generator=g).tolist(), T)
    old = -torch.rand(B, T, generator=g) * 3
    logp = (old + torch.randn(B, T, generator=g) * 0.3).requires_grad_()  # ratios in about (0.4, 2.5)
    advantages = torch.randn(B, T, generator=g)
    config = OmegaConf.create({"clip_ratio": 0.2, "clip_ratio_low": None, "clip_ratio_high": None,
                               "clip_ratio_c": 3.0, "global_batch_info": {}})
    their_loss, _ = core_algos.compute_policy_loss_vanilla(old, logp, advantages, mask, theirs, config)
    our_loss, _ = policy_loss(logp, old, advantages, mask, clip_eps=0.2, aggregation=ours, max_completion_length=T)
    torch.testing.assert_close(our_loss, their_loss, atol=1e-6, rtol=1e-5)
    their_grad, = torch.autograd.grad(their_loss, logp)
    our_grad, = torch.autograd.grad(our_loss, logp)
    torch.testing.assert_close(our_grad, their_grad, atol=1e-6, rtol=1e-5)


def test_verls_dual_clip_is_what_differs_past_a_ratio_of_three(core_algos):
    # verl's vanilla loss caps -A * ratio at -A * clip_ratio_c (dual-clip PPO, Ye et al. 2020) when A < 0;
    # the course's loss has no such cap: a token with ratio 5 and A = -1 costs 5 here, 3 in verl
    from omegaconf import OmegaConf
    config = OmegaConf.create({"clip_ratio": 0.2, "clip_ratio_low": None, "clip_ratio_high": None,
                               "clip_ratio_c": 3.0, "global_batch_info": {}})
    old, logp = torch.zeros(1, 1), torch.full((1, 1), np.log(5.0))
    mask, advantages = torch.ones(1, 1), -torch.ones(1, 1)
    theirs, _ = core_algos.compute_policy_loss_vanilla(old, logp, advantages, mask, "token-mean", config)
    ours, _ = policy_loss(logp, old, advantages, mask, clip_eps=0.2, aggregation="bnpo")
    assert theirs.item() == pytest.approx(3.0) and ours.item() == pytest.approx(5.0)


def test_value_loss_equals_verls(core_algos):
    g = torch.Generator().manual_seed(3)
    B, T = 5, 7
    mask = prefix_mask([7, 4, 1, 6, 2], T)
    old, returns = torch.randn(B, T, generator=g), torch.randn(B, T, generator=g)
    values = old + torch.randn(B, T, generator=g) * 0.5  # some beyond the clip range of 0.2
    theirs, their_clipfrac = core_algos.compute_value_loss(values, returns, old, mask, 0.2, "token-mean")
    ours, metrics = clipped_value_loss(values, old, returns, mask, 0.2)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)
    assert metrics["value/clip_frac"] == pytest.approx(their_clipfrac.item())


def test_kl_penalties_equal_verls_k1_k2_k3(core_algos):
    g = torch.Generator().manual_seed(4)
    logp, ref = -torch.rand(4, 6, generator=g) * 4, -torch.rand(4, 6, generator=g) * 4
    for name, ours in (("k1", kl_k1), ("k2", kl_k2), ("k3", kl_k3)):
        torch.testing.assert_close(ours(logp, ref), core_algos.kl_penalty(logp, ref, name), atol=1e-6, rtol=1e-6)
    # verl's aliases of the same estimators
    torch.testing.assert_close(kl_k3(logp, ref), core_algos.kl_penalty(logp, ref, "low_var_kl"))
    torch.testing.assert_close(kl_k2(logp, ref), core_algos.kl_penalty(logp, ref, "mse"))


def test_the_launch_script_sets_only_keys_verls_config_has(core_algos):
    # a typo in an override fails at launch on a GPU box, after minutes of set-up: catch it here
    import re
    from pathlib import Path
    from omegaconf import OmegaConf
    import verl

    root = Path(__file__).resolve().parent.parent
    config = OmegaConf.load(Path(verl.__file__).parent / "trainer" / "config" / "_generated_ppo_trainer.yaml")
    script = (root / "scripts" / "verl_grpo.sh").read_text()
    keys = re.findall(r"^\s+([a-z_][a-z_.0-9]*)=.*\\$", script, flags=re.M)  # the override lines
    assert len(keys) > 25 and "reward.custom_reward_function.path" in keys

    def exists(key):  # a key whose value is "???" (must be set) exists too
        parent, _, last = key.rpartition(".")
        node = OmegaConf.select(config, parent) if parent else config
        return node is not None and last in node.keys()  # `in node` is False for a "???" value

    assert [k for k in keys if not exists(k)] == []
    # the reward file the script points verl at is the course's, with the function it names
    assert 'rlllm_course/scale/verl_reward.py"' in script and "custom_reward_function.name=compute_score" in script
    assert "loss_agg_mode=$agg" in script and "agg=seq-mean-token-sum-norm" in script  # Dr. GRPO's aggregation


def test_preprocessing_writes_both_splits(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, str(root / "scripts" / "verl_preprocess.py"), "--task", "addition", "--train", "6",
                    "--test", "3", "--out", str(tmp_path)], check=True, capture_output=True)
    from datasets import load_dataset
    train = load_dataset("parquet", data_files=str(tmp_path / "train.parquet"), split="train")
    test = load_dataset("parquet", data_files=str(tmp_path / "test.parquet"), split="train")
    assert len(train) == 6 and len(test) == 3
    assert {r["extra_info"]["split"] for r in test} == {"test"}
    assert not {r["extra_info"]["question"] for r in train} & {r["extra_info"]["question"] for r in test}
