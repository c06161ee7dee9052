"""The course's recipes through TRL 1.16's trainers (scale.trl_recipes): the tables, short runs, equalities.

Every mapped argument exists on TRL's config dataclass and carries the course's value; each
trainer takes a few steps on a shipped model and moves it; and on a fixed batch (generation
stubbed out) TRL's RLOO and GRPO trainers compute the course's advantages, loss and gradient.
"""

import dataclasses
import math

import pytest
import torch

from rlllm_course.llm.dpo import DPOConfig
from rlllm_course.llm.grpo import GRPOConfig
from rlllm_course.llm.losses import (bradley_terry_loss, group_advantages, policy_loss, reinforce_loss,
                                     rloo_advantages)
from rlllm_course.llm.model import load_policy, load_tokenizer, resolve_model_path
from rlllm_course.llm.rewards import accuracy_reward, format_reward
from rlllm_course.llm.rollout import completion_mask_from_ids, sequence_logprobs
from rlllm_course.llm.sft import SFTConfig, lr_at
from rlllm_course.llm.tasks import addition_problem, make_prompt
from rlllm_course.rlhf.preferences import preference_pairs
from rlllm_course.rlhf.reward_model import RewardConfig, load_reward_model, pair_rewards
from rlllm_course.scale import trl_recipes as recipes

trl = pytest.importorskip("trl")

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread, as the trainers use


def changed(model, name):
    """Largest absolute change of any weight of `model` from the shipped model `name`."""
    shipped, _ = load_policy(name)
    fresh = dict(shipped.named_parameters())
    return max((p.detach() - fresh[k]).abs().max().item() for k, p in model.named_parameters() if k in fresh)


# ---------------------------------------------------------------- the tables

@pytest.mark.parametrize("trainer", sorted(recipes.TABLES))
def test_every_row_names_real_fields_on_both_sides(trainer):
    trainer_class, name, course_class, rows = recipes.TABLES[trainer]
    assert hasattr(trl, trainer_class) and hasattr(trl, name)
    trl_fields = {f.name for f in dataclasses.fields(getattr(trl, name))}
    course_fields = {f.name for f in dataclasses.fields(course_class)}
    named = set()
    for course, arg, _, _ in rows:
        assert arg is None or arg in trl_fields, (trainer, arg)  # a typo or a renamed TRL argument fails here
        for field in (course.split(", ") if course else []):
            assert field in course_fields, (trainer, field)
            named.add(field)
    # the table accounts for every field of the course config (mapped, or said to have no counterpart)
    assert named == course_fields, sorted(course_fields - named)


def test_grpo_config_carries_the_course_values(tmp_path):
    course = GRPOConfig(seed=7, steps=5, prompts_per_step=3, group_size=5, lr=1e-4, advantage="dr_grpo",
                        aggregation="dr_grpo", clip_eps=0.3, beta=0.02, updates_per_batch=2, format_weight=0.5,
                        temperature=0.7, max_new_tokens=20, max_grad_norm=0.5)
    args = recipes.build_trl_config("grpo", course, tmp_path)
    # the values written out, so that a wrong conversion in the table cannot pass by agreeing with itself
    assert (args.per_device_train_batch_size, args.num_generations, args.max_steps) == (15, 5, 10)
    assert (args.loss_type, args.scale_rewards, args.epsilon, args.epsilon_high) == ("dr_grpo", "none", 0.3, None)
    assert (args.beta, args.num_iterations, args.reward_weights) == (0.02, 2, [1.0, 0.5])
    assert (args.temperature, args.max_completion_length, args.learning_rate) == (0.7, 20, 1e-4)
    assert (args.seed, args.max_grad_norm, args.adam_beta2) == (7, 0.5, 0.99)
    assert args.lr_scheduler_type.value == "constant"
    # TRL's defaults that would change the course's semantics are switched off
    assert not (args.use_bias_correction_kl or args.bf16 or args.gradient_checkpointing or args.shuffle_dataset)
    assert args.use_cpu and args.save_strategy.value == "no" and args.logging_steps == 1
    for row in recipes.GRPO_ARGS:  # and every mapped row landed
        if row[1] is not None:
            value = getattr(args, row[1])
            assert getattr(value, "value", value) == recipes.row_value(row, course), row


@pytest.mark.parametrize("trainer, course", [
    ("rloo", GRPOConfig(advantage="rloo", group_size=3, beta=0.1, consistency_weight=0.2)),
    ("sft", SFTConfig(epochs=1.5, batch_size=6, lr=2e-4, warmup_steps=3, weight_decay=0.1)),
    ("reward", RewardConfig(batch_size=5, center_coefficient=0.01, checkpoint_dir="ckpt", checkpoint_every=7)),
    ("dpo", DPOConfig(beta=0.5, sft_weight=0.3, batch_size=3)),
])
def test_every_config_carries_the_course_values(trainer, course, tmp_path):
    args = recipes.build_trl_config(trainer, course, tmp_path)
    for row in recipes.TABLES[trainer][3]:
        if row[1] is not None:
            value = getattr(args, row[1])
            assert getattr(value, "value", value) == recipes.row_value(row, course), row
    if trainer == "rloo":
        assert args.reward_weights == [1.0, 1.0, 0.2] and args.num_generations == 3 and not args.normalize_advantages
    if trainer == "sft":
        assert args.completion_only_loss and args.lr_scheduler_type.value == "cosine_with_min_lr"
        assert args.lr_scheduler_kwargs == {"min_lr_rate": 0.1} and args.num_train_epochs == 1.5
    if trainer == "reward":  # checkpoints asked for: saved every 7 steps
        assert args.center_rewards_coefficient == 0.01
        assert args.save_strategy.value == "steps" and args.save_steps == 7
    if trainer == "dpo":
        assert args.loss_type == ["sigmoid", "sft"] and args.loss_weights == [1.0, 0.3]
        assert args.precompute_ref_log_probs


def test_builder_refuses_what_trl_cannot_express(tmp_path):
    with pytest.raises(ValueError, match="advantage"):
        recipes.build_trl_config("grpo", GRPOConfig(advantage="moving_average"), tmp_path)
    with pytest.raises(ValueError, match="advantage"):  # RLOO is its own trainer
        recipes.build_trl_config("grpo", GRPOConfig(advantage="rloo"), tmp_path)
    with pytest.raises(ValueError, match="advantage must be 'rloo'"):
        recipes.build_trl_config("rloo", GRPOConfig(), tmp_path)
    with pytest.raises(ValueError, match="length_weight"):
        recipes.build_trl_config("grpo", GRPOConfig(length_weight=0.1), tmp_path)
    with pytest.raises(ValueError, match="sampling"):
        recipes.build_trl_config("grpo", GRPOConfig(sampling="curriculum"), tmp_path)
    with pytest.raises(ValueError, match="config must be"):
        recipes.build_trl_config("dpo", SFTConfig(), tmp_path)
    with pytest.raises(ValueError, match="trainer must be"):
        recipes.build_trl_config("ppo", GRPOConfig(), tmp_path)
    with pytest.raises(ValueError, match="n_pairs"):
        recipes.run_dpo(DPOConfig(), n_pairs=0)
    with pytest.raises(ValueError, match="max_steps"):
        recipes.run_sft(SFTConfig(batch_size=2), max_steps=0)


def test_markdown_table_has_a_line_per_row():
    text = recipes.markdown_table("grpo")
    assert len(text.splitlines()) == 2 + len(recipes.GRPO_ARGS)
    assert "| clip_eps | `epsilon` | same |" in text and "`use_bias_correction_kl` | `False`" in text


# ---------------------------------------------------------------- a few steps of each trainer

def test_sft_trainer_takes_the_cold_start_steps_on_the_course_schedule():
    config = SFTConfig(epochs=2.0, batch_size=4, lr=3e-4, warmup_steps=1)
    model, history = recipes.run_sft(config, n_examples=8)
    assert [h["step"] for h in history] == [1, 2, 3, 4]  # ceil(2 * 8 / 4) steps, one log each
    assert all(math.isfinite(h["loss"]) and h["loss"] > 0 for h in history)
    # after the warm-up TRL's cosine is the course's lr_at; during it TRL starts at 0, the course at lr / warmup
    assert history[0]["learning_rate"] == 0.0 and lr_at(0, 4, 3e-4, 1) == pytest.approx(3e-4)
    for t in (1, 2, 3):
        assert history[t]["learning_rate"] == pytest.approx(lr_at(t, 4, 3e-4, 1), rel=1e-6), t
    assert changed(model, "reasoning") > 1e-4


def test_grpo_trainer_reads_the_tags_and_weighs_the_rewards():
    config = GRPOConfig(steps=3, prompts_per_step=2, group_size=4, max_new_tokens=32, format_weight=0.5, beta=0.04)
    model, history = recipes.run_grpo(config)
    assert len(history) == 3
    for h in history:  # reward = accuracy + format_weight * format, as the course's step sums it
        assert h["reward"] == pytest.approx(h["rewards/accuracy/mean"] + 0.5 * h["rewards/format/mean"], abs=1e-6)
        assert h["learning_rate"] == pytest.approx(config.lr)  # constant, as the course's
        assert math.isfinite(h["loss"])
    # completions decoded with their tags: TRL's own decoding would score every format 0
    assert max(h["rewards/format/mean"] for h in history) > 0
    assert history[0]["kl"] == 0.0  # the reference is the initial policy
    assert changed(model, "tiny") > 1e-4


def test_rloo_trainer_runs_the_r1_zero_rewards():
    config = GRPOConfig(advantage="rloo", steps=5, prompts_per_step=2, group_size=4, max_new_tokens=32,
                        format_weight=0.5, beta=0.0)
    model, history = recipes.run_rloo(config, max_steps=3)  # stops early: 3 of the 5 steps
    assert len(history) == 3 and all(math.isfinite(h["loss"]) for h in history)
    for h in history:
        assert h["reward"] == pytest.approx(h["rewards/accuracy/mean"] + 0.5 * h["rewards/format/mean"], abs=1e-6)
    assert "kl" not in history[0]  # beta = 0: no reference, no KL
    assert changed(model, "tiny") > 1e-4


def test_reward_trainer_starts_at_the_course_loss_and_fits_its_batch():
    config = RewardConfig(epochs=3.0, batch_size=4, warmup_steps=0, lr=3e-4, num_threads=1)
    rm, history = recipes.run_reward_model(config, n_pairs=4)
    assert len(history) == 3  # the same 4 pairs each step
    start, tokenizer = load_reward_model("assistant", seed=config.seed)  # the same fresh head
    pairs = preference_pairs(4, config.seed, split="train")  # the pairs run_reward_model trained on
    with torch.no_grad():
        loss, _ = bradley_terry_loss(*pair_rewards(start, tokenizer, pairs))
    assert history[0]["loss"] == pytest.approx(loss.item(), rel=1e-5)
    assert history[-1]["loss"] < history[0]["loss"] - 0.01  # it learns the batch
    assert (rm.score.weight - start.score.weight).abs().max().item() > 1e-4


def test_dpo_trainer_starts_at_log_2_and_separates_its_pairs():
    config = DPOConfig(epochs=3.0, batch_size=4, warmup_steps=0, beta=0.1)
    model, history = recipes.run_dpo(config, n_pairs=4)
    assert len(history) == 3
    # step 1: the policy is its reference, every implicit reward is 0 and the loss is log 2
    assert history[0]["loss"] == pytest.approx(math.log(2), rel=1e-6)
    assert history[0]["rewards/margins"] == 0.0
    assert history[-1]["loss"] < math.log(2) - 0.05 and history[-1]["rewards/margins"] > 0
    assert changed(model, "assistant") > 1e-4


# ---------------------------------------------------------------- equality on a fixed batch

PROBLEMS = [addition_problem(12, 34), addition_problem(105, 27)]  # prompts of different lengths: left padding
ANSWERS = [["<think>2+4=6,1+3=4</think><answer>46</answer>", "<think>2+4=6</think><answer>45</answer>",
            "46", "<answer>46</answer>"],
           ["<think>5+7=12,0+2+1=3,1=1</think><answer>132</answer>", "<think>5+7=12</think> <answer>122</answer>",
            "<think>x</think><answer>132</answer>", "132 wait"]]


def fixed_batch(config, tokenizer):
    """The course's layout of the fixed batch: prompts left-padded, completions + eos right-padded."""
    G = config.group_size
    prompts = [make_prompt(p, config.template) for p in PROBLEMS for _ in range(G)]
    texts = [t for group in ANSWERS for t in group]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for t in texts]
    completion_ids = torch.full((len(ids), max(map(len, ids))), tokenizer.pad_token_id)
    for i, row in enumerate(ids):
        completion_ids[i, :len(row)] = torch.tensor(row)
    mask = completion_mask_from_ids(completion_ids, tokenizer.eos_token_id)
    rewards = (accuracy_reward(texts, [p for p in PROBLEMS for _ in range(G)])
               + config.format_weight * format_reward(texts))  # (B,) the course's R1-Zero reward
    return (enc["input_ids"], enc["attention_mask"], completion_ids, mask), ids, prompts, rewards


def stubbed_trainer(trainer_class, kind, config, tmp_path, ids):
    """A TRL trainer whose generation returns the fixed completions (`ids`, eos included) row by row."""
    from datasets import Dataset
    policy, tokenizer = load_policy(config.model)
    trainer = getattr(trl, trainer_class)(
        model=policy, args=recipes.build_trl_config(kind, config, tmp_path), processing_class=tokenizer,
        train_dataset=Dataset.from_dict({"prompt": [make_prompt(p) for p in PROBLEMS]}),
        reward_funcs=recipes.rule_reward_functions(tokenizer, PROBLEMS, config))
    # TRL samples through _generate_single_turn (GRPO's also returns the sampler's log-probs: none here)
    fixed = [list(row) for row in ids]
    trainer._generate_single_turn = ((lambda prompt_ids, *a, **k: (fixed, None)) if kind == "grpo"
                                     else (lambda prompt_ids, *a, **k: fixed))
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(); one micro-batch here
    return trainer


def nudge(model, seed):
    """Move the policy a little, as an earlier update on the same batch would: ratios leave 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.03 * torch.randn(p.shape, generator=g))


def gradient(loss, model):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def assert_same_gradient(theirs, ours, rtol=1e-5):
    # relative to the norm: TRL scores without position ids, and RoPE's shift invariance holds to float
    # rounding only (log-probs of left-padded rows differ by ~1e-6)
    assert (theirs - ours).norm() <= rtol * ours.norm(), ((theirs - ours).norm() / ours.norm()).item()


def test_rloo_trainer_equals_the_course_on_a_fixed_batch(tmp_path):
    config = GRPOConfig(advantage="rloo", prompts_per_step=2, group_size=4, format_weight=0.5, beta=0.0,
                        clip_eps=0.2)
    batch, ids, prompts, rewards = fixed_batch(config, load_tokenizer(resolve_model_path("tiny")))
    trainer = stubbed_trainer("RLOOTrainer", "rloo", config, tmp_path, ids)
    model = trainer.model
    out = trainer._generate_and_score_completions([{"prompt": p} for p in prompts])
    # TRL's rewards (tags kept) and its leave-one-out baseline are the course's
    ours = rloo_advantages(rewards, config.group_size)
    assert ours.abs().sum() > 0  # the fixed answers do differ within each group
    torch.testing.assert_close(out["advantages"], ours, rtol=1e-6, atol=1e-6)

    # ratio 1 (the policy that sampled): the gradient is REINFORCE's, the sum over each sequence's tokens
    theirs = gradient(trainer.compute_loss(model, out), model)
    logp = sequence_logprobs(model, *batch)  # (B, T)
    assert_same_gradient(theirs, gradient(reinforce_loss(logp, ours, batch[3])[0], model))
    # not the course's per-token mean ("grpo" aggregation), which weighs a long answer's tokens less
    logp = sequence_logprobs(model, *batch)
    per_token = gradient(policy_loss(logp, logp.detach(), ours, batch[3], aggregation="grpo")[0], model)
    assert (theirs - per_token).norm() > 0.1 * theirs.norm()

    # a moved policy: one clipped ratio per sequence, exp(sum of the token log-ratios), mean over sequences
    with torch.no_grad():
        old = sequence_logprobs(model, *batch).sum(-1, keepdim=True)  # (B, 1)
    nudge(model, seed=0)
    loss = trainer.compute_loss(model, out)
    seq_logp = sequence_logprobs(model, *batch).sum(-1, keepdim=True)  # (B, 1): the completion as one action
    course, metrics = policy_loss(seq_logp, old, ours, torch.ones_like(seq_logp), clip_eps=config.clip_eps)
    assert 0 < metrics["policy/clip_active_frac"] < 1  # some sequences clipped, some not
    assert course.item() == pytest.approx(loss.item(), rel=1e-5)
    assert_same_gradient(gradient(loss, model), gradient(course, model))


def test_grpo_trainer_equals_the_course_step_on_a_fixed_batch(tmp_path):
    # the trainer built from the table: two updates per batch (old log-probs kept), k3 to the reference,
    # a temperature, the grpo aggregation; one set of weights moved between sampling and the update
    config = GRPOConfig(prompts_per_step=2, group_size=4, format_weight=0.5, beta=0.04, updates_per_batch=2,
                        temperature=0.8, clip_eps=0.2)
    batch, ids, prompts, rewards = fixed_batch(config, load_tokenizer(resolve_model_path("tiny")))
    trainer = stubbed_trainer("GRPOTrainer", "grpo", config, tmp_path, ids)
    model = trainer.model
    reference, _ = load_policy("tiny")
    out = trainer._generate_and_score_completions([{"prompt": p} for p in prompts])
    advantages = group_advantages(rewards, config.group_size, scale="group", eps=1e-4)
    torch.testing.assert_close(out["advantages"], advantages, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        old = sequence_logprobs(model, *batch, temperature=config.temperature)  # (B, T)
        ref = sequence_logprobs(reference, *batch, temperature=config.temperature)
    nudge(model, seed=1)
    loss = trainer.compute_loss(model, out)
    logp = sequence_logprobs(model, *batch, temperature=config.temperature)
    course, metrics = policy_loss(logp, old, advantages, batch[3], clip_eps=config.clip_eps,
                                  aggregation=config.aggregation, ref_logp=ref, beta=config.beta,
                                  max_completion_length=config.max_new_tokens)
    assert metrics["policy/clip_active_frac"] > 0 and metrics["policy/kl"] > 0  # both terms at work
    assert course.item() == pytest.approx(loss.item(), rel=1e-5)
    assert_same_gradient(gradient(loss, model), gradient(course, model))
