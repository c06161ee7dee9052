"""RLHF with PPO (module 13): the critic, one step against hand-computed targets, the direction
of learning, the gold reward kept out of the loss, checkpoint and resume, config checks.

Every model is a tiny random Llama with the assistant tokenizer, saved to a tmp folder:
the loop's plumbing is under test here, not what the shipped models learn.
"""

import copy
import dataclasses

import pytest
import torch

from rlllm_course.llm.model import load_policy, load_tokenizer
from rlllm_course.llm.rollout import sequence_logprobs
from rlllm_course.rlhf import reward_model as rmod
from rlllm_course.rlhf import rlhf_ppo
from rlllm_course.rlhf.assistant_task import assistant_problems, make_prompt
from rlllm_course.rlhf.rlhf_ppo import RLHFConfig, check_config, load_critic, rlhf_step, token_values, train_rlhf


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread, as the trainers use


@pytest.fixture(scope="module")
def rm_dir(base_dir, tmp_path_factory):
    """A tiny reward model on that base (random head), saved like the shipped one."""
    rm, tokenizer = rmod.load_reward_model(str(base_dir), seed=1)
    folder = tmp_path_factory.mktemp("assistant-rm")
    rm.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def small(base_dir, rm_dir, **changes):
    fields = dict(policy=str(base_dir), reward_model=str(rm_dir), steps=2, prompts_per_step=4, minibatches=2,
                  ppo_epochs=2, max_new_tokens=8, eval_every=0, n_eval=4)
    return RLHFConfig(**{**fields, **changes})


def four_models(config):
    """What train_rlhf builds: policy, critic, reference, reward model, tokenizers, optimizers."""
    policy, tokenizer = load_policy(config.policy)
    rm, rm_tokenizer = rmod.load_reward_model(config.reward_model)
    critic = load_critic(config.reward_model)
    ref = copy.deepcopy(policy).requires_grad_(False)
    return policy, critic, ref, rm, tokenizer, rm_tokenizer, rlhf_ppo.make_optimizers(policy, critic, config)


def batch(tokenizer, n=3, lengths=(5, 3, 1), seed=0):
    """Left-padded prompts and random (non-special) response tokens with prefix masks of `lengths`."""
    enc = tokenizer([make_prompt(p) for p in assistant_problems(n, seed=seed)], padding=True, return_tensors="pt",
                    add_special_tokens=False)
    g = torch.Generator().manual_seed(seed)
    completion = torch.randint(5, len(tokenizer), (n, max(lengths)), generator=g)  # (n, T)
    mask = (torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]).long()  # (n, T)
    return (torch.cat([enc["input_ids"], completion], 1), torch.cat([enc["attention_mask"], mask], 1),
            enc["input_ids"].shape[1])


# ---------------------------------------------------------------- the critic
def test_the_critic_starts_at_zero_and_reads_the_state_before_each_token(base_dir, rm_dir):
    critic = load_critic(str(rm_dir))
    rm, _ = rmod.load_reward_model(str(rm_dir))
    tokenizer = load_tokenizer(rm_dir, padding_side="left")  # the policy's side: prompts end in one column
    input_ids, attention_mask, P = batch(tokenizer)
    with torch.no_grad():
        values = token_values(critic, input_ids, attention_mask, P)
    # zero head: V = 0 at every token of every response, whatever the body computes
    assert values.shape == (3, 5) and torch.equal(values, torch.zeros(3, 5))
    # the body is the reward model's (TRL's value model starts from it); only the head differs
    for name, w in rm.model.state_dict().items():
        assert torch.equal(critic.model.state_dict()[name], w), name
    assert rm.score.weight.abs().sum() > 0
    # with a random head, V(s_t) is the head on the LAST token of the state (prompt, c_<t), run alone and
    # unpadded: the state before the action c_t, so neither c_t nor any later token can move it
    torch.manual_seed(0)
    torch.nn.init.normal_(critic.score.weight)
    with torch.no_grad():
        values = token_values(critic, input_ids, attention_mask, P)
        for b, length in enumerate((5, 3, 1)):
            for t in range(5):
                if t >= length:  # past the response's end: 0 (never in a loss)
                    assert values[b, t] == 0.0
                    continue
                state = input_ids[b, :P + t][attention_mask[b, :P + t].bool()][None]  # (1, n) real tokens before c_t
                manual = critic.score(critic.model(input_ids=state).last_hidden_state[0, -1])
                assert values[b, t].item() == pytest.approx(manual.item(), abs=1e-5)
        assert values[:, 0].abs().sum() > 0 and values[0].std() > 0  # a constant would pass the zero check
    with pytest.raises(ValueError, match="response_start"):
        token_values(critic, input_ids, attention_mask, input_ids.shape[1])


# ---------------------------------------------------------------- one step against hand-computed targets
def test_one_step_from_the_reference_has_kl_0_ratio_1_and_returns_equal_to_the_score(base_dir, rm_dir, monkeypatch):
    # policy = reference, V = 0 (zero head), gamma = lam = 1, one epoch of one minibatch:
    # kl_t = 0, so r_t is the (penalised) score on the last token and 0 before; the return of every
    # response token is its reward-to-go, the score itself
    config = small(base_dir, rm_dir, ppo_epochs=1, minibatches=1, gamma=1.0, lam=1.0, missing_eos_penalty=0.5,
                   beta=0.3, lr=1e-2)
    policy, critic, ref, rm, tokenizer, rm_tokenizer, optimizers = four_models(config)
    seen = {}
    real_gae, real_shaped = rlhf_ppo.masked_gae, rlhf_ppo.kl_shaped_rewards

    def gae_spy(rewards, values, mask, gamma, lam):
        out = real_gae(rewards, values, mask, gamma, lam)
        seen.update(values=values, mask=mask, returns=out[1])
        return out

    def shaped_spy(scores, *args):
        seen["scores"] = scores
        return real_shaped(scores, *args)

    monkeypatch.setattr(rlhf_ppo, "masked_gae", gae_spy)
    monkeypatch.setattr(rlhf_ppo, "kl_shaped_rewards", shaped_spy)
    problems = assistant_problems(4, seed=5)
    before = [p.detach().clone() for p in ref.parameters()]
    torch.manual_seed(0)
    log = rlhf_step(policy, critic, ref, rm, tokenizer, rm_tokenizer, problems, optimizers, config)
    assert log["kl"] == 0.0 and log["non_score_reward"] == 0.0  # the same model on the same tokens
    assert log["policy/ratio"] == pytest.approx(1.0, abs=1e-5)  # first update: pi_theta = pi_old
    assert log["policy/approx_kl"] == pytest.approx(0.0, abs=1e-6) and log["policy/clip_frac"] == 0.0
    assert torch.equal(seen["values"], torch.zeros_like(seen["values"]))
    # the reward model's own score of the decoded text enters, minus the penalty where there is no eos
    rm_scores = rmod.score(rm, rm_tokenizer, [make_prompt(p) for p in problems], log["completions"])
    torch.testing.assert_close(torch.tensor(log["scores"]), rm_scores)
    penalty = (rm_scores - seen["scores"]) / 0.5  # (B,) 1 for a response cut at max_new_tokens, else 0
    torch.testing.assert_close(penalty, penalty.round(), atol=1e-6, rtol=0)
    assert penalty.mean().item() == pytest.approx(log["no_eos"]) and set(penalty.round().tolist()) <= {0.0, 1.0}
    mask = seen["mask"].bool()
    expected = seen["scores"][:, None].expand_as(mask)  # (B, T) the score at every response token
    torch.testing.assert_close(seen["returns"][mask], expected[mask], atol=1e-6, rtol=0)
    assert torch.all(seen["returns"][~mask] == 0)
    # the reference is frozen: no gradient, not one weight moved; the policy did move
    assert all(p.grad is None for p in ref.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, ref.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))


# ---------------------------------------------------------------- the reward model's score drives learning
def test_learning_follows_the_reward_models_score(base_dir, rm_dir, monkeypatch):
    # a stub reward model that likes a response opening with a digit: after a few steps the policy puts
    # more probability on the responses it scored high and less on the others, and opens with a digit more
    config = small(base_dir, rm_dir, prompts_per_step=16, max_new_tokens=4, beta=0.0, lr=1e-2, critic_lr=1e-2)
    policy, critic, ref, rm, tokenizer, rm_tokenizer, optimizers = four_models(config)
    monkeypatch.setattr(rlhf_ppo, "score", lambda rm, tok, prompts, responses, **kw: torch.tensor(
        [1.0 if r[:1].isdigit() else -1.0 for r in responses]))
    problems = assistant_problems(16, seed=2)
    prompts = [make_prompt(p) for p in problems]
    digits = [tokenizer.convert_tokens_to_ids(c) for c in "0123456789"]

    def measure(model, completions):
        """(log pi of each completion's first token (N,), mean P(the first response token is a digit))."""
        enc = tokenizer(prompts, padding=True, return_tensors="pt", add_special_tokens=False)
        ids = torch.tensor([tokenizer(c, add_special_tokens=False)["input_ids"][:1] or [tokenizer.eos_token_id]
                            for c in completions])  # (N, 1) an empty text is an eos at once
        with torch.no_grad():
            logp = sequence_logprobs(model, enc["input_ids"], enc["attention_mask"], ids, torch.ones_like(ids))
            last = model(**enc).logits[:, -1].softmax(-1)  # (N, V) next-token distribution after each prompt
        return logp[:, 0], last[:, digits].sum(-1).mean().item()

    torch.manual_seed(0)
    first = rlhf_step(policy, critic, ref, rm, tokenizer, rm_tokenizer, problems, optimizers, config)
    high = torch.tensor(first["scores"]) > 0  # (N,) the responses the stub scored high
    assert 0 < high.sum() < len(high)
    logp_before, digit_before = measure(ref, first["completions"])  # the reference: the policy before any update
    for step in range(1, 6):
        torch.manual_seed(step)
        rlhf_step(policy, critic, ref, rm, tokenizer, rm_tokenizer, problems, optimizers, config)
    logp_after, digit_after = measure(policy, first["completions"])
    change = logp_after - logp_before  # (N,) of each sampled opening's log-prob
    assert change[high].min() > 0.1  # every high-scored opening became likelier (+0.2 to +0.3 nats)
    assert change[~high].mean() < -0.3  # the low-scored ones less likely on average (-1.1)
    assert digit_after > digit_before + 0.08  # and a digit first in general (0.18 -> 0.30)


# ---------------------------------------------------------------- the gold reward is only a logged figure
def test_the_gold_reward_is_logged_but_never_trained_on(base_dir, rm_dir, monkeypatch):
    # an absurd gold reward changes the log and nothing else: not one weight, not one other logged number
    config = small(base_dir, rm_dir, eval_every=2)
    policy, _, history = train_rlhf(config, progress=False)
    monkeypatch.setattr(rlhf_ppo, "gold_reward", lambda problem, text: 1e6)
    absurd, _, absurd_history = train_rlhf(config, progress=False)
    assert [h["gold"] for h in absurd_history] == [1e6, 1e6]  # the patch reached the loop
    for (name, a), b in zip(policy.state_dict().items(), absurd.state_dict().values()):
        assert torch.equal(a, b), name
    skip = {"gold", "golds", "seconds", "eval_seconds"}
    for h, g in zip(history, absurd_history):
        assert {k: v for k, v in h.items() if k not in skip} == {k: v for k, v in g.items() if k not in skip}
    for key in ("score", "reward", "gold", "kl", "non_score_reward", "rlhf_reward", "length", "no_eos",
                "policy/entropy", "policy/approx_kl", "policy/clip_frac", "policy/clip_active_frac",
                "value/loss", "value/clip_frac", "value/explained_variance", "completions", "seconds"):
        assert key in history[-1], key
    assert "eval/gold" in history[1] and "eval/score" in history[1] and "eval/gold" not in history[0]
    first = history[0]  # the penalty enters the reward, not the logged score
    assert first["reward"] == pytest.approx(first["score"] - config.missing_eos_penalty * first["no_eos"])


# ---------------------------------------------------------------- checkpoint and resume
def test_resume_reproduces_an_uninterrupted_run(base_dir, rm_dir, tmp_path, monkeypatch):
    # 4 steps in one go == 2 steps, a crash right after the checkpoint, then a resumed run to 4:
    # same problems, same samples (the random stream is derived from the step), same optimizer states
    config = small(base_dir, rm_dir, steps=4, checkpoint_every=2)
    straight, _, h_straight = train_rlhf(dataclasses.replace(config, checkpoint_dir=str(tmp_path / "a")),
                                         progress=False)
    real_save = rlhf_ppo.save_checkpoint

    def save_then_crash(path, state):
        real_save(path, state)
        if state["step"] == 2:
            raise KeyboardInterrupt

    resumable = dataclasses.replace(config, checkpoint_dir=str(tmp_path / "b"))
    monkeypatch.setattr(rlhf_ppo, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train_rlhf(resumable, progress=False)
    monkeypatch.setattr(rlhf_ppo, "save_checkpoint", real_save)
    resumed, _, h_resumed = train_rlhf(resumable, progress=False)
    assert [h["step"] for h in h_resumed] == [0, 1, 2, 3]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    drop = {"seconds", "eval_seconds"}
    assert [{k: v for k, v in h.items() if k not in drop} for h in h_resumed] == \
        [{k: v for k, v in h.items() if k not in drop} for h in h_straight]
    a, b = (torch.load(tmp_path / d / "checkpoint.pt", weights_only=False) for d in "ab")
    assert a["step"] == b["step"] == 4
    for name, w in a["critic"].items():
        assert torch.equal(b["critic"][name], w), name


# ---------------------------------------------------------------- the critic-free estimator (GRPO)
def test_grpo_mode_uses_group_relative_advantages_and_no_critic(base_dir, rm_dir, tmp_path, monkeypatch):
    # advantage="grpo": G responses per prompt, A = (score - group mean) / (group std + eps) on every
    # token, the k3 KL in the loss with beta; no critic is built, saved or logged
    config = small(base_dir, rm_dir, advantage="grpo", group_size=4, prompts_per_step=2, minibatches=2,
                   ppo_epochs=1, beta=0.1, missing_eos_penalty=0.0)
    scores = torch.tensor([1.0, 2.0, 3.0, 6.0, -1.0, -1.0, -1.0, 5.0])  # two groups of 4
    monkeypatch.setattr(rlhf_ppo, "score", lambda rm, tok, prompts, responses, **kw: scores[:len(responses)])
    seen = {}
    real_loss = rlhf_ppo.policy_loss

    def loss_spy(logp, old_logp, advantages, mask, **kw):
        seen.setdefault("calls", []).append((advantages, mask, kw))
        return real_loss(logp, old_logp, advantages, mask, **kw)

    monkeypatch.setattr(rlhf_ppo, "policy_loss", loss_spy)
    policy, tokenizer = load_policy(config.policy)
    rm, rm_tokenizer = rmod.load_reward_model(config.reward_model)
    ref = copy.deepcopy(policy).requires_grad_(False)
    optimizers = rlhf_ppo.make_optimizers(policy, None, config)
    assert optimizers[1] is None
    problems = assistant_problems(2, seed=3)
    torch.manual_seed(0)
    log = rlhf_step(policy, None, ref, rm, tokenizer, rm_tokenizer, problems, optimizers, config)
    assert len(log["completions"]) == 8 and not any(k.startswith("value/") for k in log)
    grouped = scores.view(2, 4)
    expected = ((grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-4)).flatten()
    assert len(seen["calls"]) == 2  # one epoch of two minibatches of 4 rows
    for advantages, mask, kw in seen["calls"]:
        assert kw["aggregation"] == "grpo" and kw["beta"] == 0.1 and kw["ref_logp"] is not None
        rows = advantages[:, 0]  # every token of a response has its response's advantage, 0 past its end
        torch.testing.assert_close(advantages, rows[:, None] * mask)
        for a in rows.tolist():
            assert min(abs(a - e) for e in expected.tolist()) < 1e-5
    # a whole run: no critic in the checkpoint, and resuming works as with the critic
    path = tmp_path / "grpo"
    train_rlhf(dataclasses.replace(config, checkpoint_dir=str(path)), progress=False)
    state = torch.load(path / "checkpoint.pt", weights_only=False)
    assert state["critic"] is None and state["optimizers"][1] is None and state["step"] == 2


# ---------------------------------------------------------------- config checks
@pytest.mark.parametrize("field, value", [
    ("steps", 0), ("prompts_per_step", 0), ("max_new_tokens", 2.5), ("ppo_epochs", 0), ("minibatches", 3),
    ("temperature", 0.0), ("lr", -1e-5), ("critic_lr", float("nan")), ("beta", -0.1), ("kl_estimator", "k2"),
    ("gamma", 1.5), ("lam", -0.1), ("clip_eps", 0.0), ("clip_range_value", 0.0), ("vf_coef", -1.0),
    ("missing_eos_penalty", -1.0), ("max_grad_norm", 0.0), ("eval_every", -1), ("checkpoint_every", 0),
    ("advantage", "rloo"), ("group_size", 0),
])
def test_a_bad_config_value_raises_naming_the_field(field, value):
    # a typo in a config must fail at once with the field's name, not as a shape error mid-run
    config = dataclasses.replace(RLHFConfig(), **{field: value})
    with pytest.raises(ValueError, match=f"RLHFConfig.{field} "):
        check_config(config)
    with pytest.raises(ValueError, match=f"RLHFConfig.{field} "):
        train_rlhf(config, progress=False)  # before any model is loaded


def test_grpo_needs_a_group_of_two():
    with pytest.raises(ValueError, match="RLHFConfig.group_size must be >= 2 with advantage='grpo'"):
        check_config(RLHFConfig(advantage="grpo", group_size=1))
    check_config(RLHFConfig(advantage="grpo", group_size=4, prompts_per_step=8, minibatches=4))
