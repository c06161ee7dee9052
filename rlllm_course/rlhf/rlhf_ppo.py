"""RLHF with PPO on tokens: policy, critic, reward model and reference (lecture §4.1, module 13).

Four models, as the lecture draws them:
- the **policy** pi_theta (the assistant base, trained);
- the **critic** V_phi (a value per token, trained; ``load_critic``);
- the **reward model** r(x, y) (frozen; module 12's ``assistant-rm``);
- the **reference** pi_ref (a frozen copy of the initial policy).

A step (``rlhf_step``) samples, scores, shapes the reward per token and runs PPO;
the per-token math is ``ppo_math``'s, the clipped surrogate ``losses.policy_loss``.
With ``advantage="grpo"`` the same loop drops the critic: G responses per prompt,
group-relative advantages and a k3 KL term in the loss, as module 08 (the switch
verl calls ``algorithm.adv_estimator``), so both estimators meet the same reward
model, the same prompts and the same evaluation.
Huang et al. 2022, "The N implementation details of RLHF with PPO", is cited as
"detail: ..." where a detail is used. The gold reward (``assistant_task.gold_reward``)
is only logged: the policy never sees it. Its gap to the reward model's score is
the over-optimisation module 13 plots.
"""

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..llm.dpo import batch_logps
from ..llm.losses import group_advantages, masked_mean, policy_loss
from ..llm.model import load_policy
from ..llm.rollout import generate, sequence_logprobs
from ..training import checkpoint_due, load_state, save_checkpoint
from .assistant_task import assistant_problems, gold_reward, make_prompt
from .evaluate import MAX_NEW_TOKENS, gold_figures
from .ppo_math import (KL_ESTIMATORS, clipped_value_loss, kl_shaped_rewards, masked_gae, masked_whiten,
                       missing_eos_penalty)
from .reward_model import load_reward_model, score


@dataclass
class RLHFConfig:
    policy: str = "assistant"  # shipped name or local folder of a causal LM
    reward_model: str = "assistant-rm"  # shipped name or local folder; the critic starts from it too
    seed: int = 0
    steps: int = 50
    prompts_per_step: int = 32
    advantage: str = "gae"  # "gae": PPO with the critic; "grpo": critic-free, group-relative (module 08)
    group_size: int = 1  # responses per prompt: B = prompts_per_step * group_size rows; "grpo" needs >= 2
    max_new_tokens: int = 64  # 6% of the base's samples are longer (its longest ~100): they get the eos penalty
    temperature: float = 1.0
    lr: float = 1e-5  # policy (AdamW); at 3e-5 the sums degrade within 10 steps, the gold falls at once
    critic_lr: float = 3e-4  # the critic starts from V = 0 and has to catch up fast
    beta: float = 0.05  # KL coefficient: of the per-token penalty in the reward ("gae"), of k3 in the loss ("grpo")
    kl_estimator: str = "k1"  # a key of ppo_math.KL_ESTIMATORS ("k1": InstructGPT's and TRL's); "grpo": logged only
    gamma: float = 1.0
    lam: float = 0.95
    ppo_epochs: int = 4  # passes over each batch of samples
    minibatches: int = 4  # per pass; must divide the B rows
    clip_eps: float = 0.2
    clip_range_value: float = 0.2
    vf_coef: float = 0.1  # TRL's; see rlhf_step on what it does with two Adam optimizers
    whiten_advantages: bool = True
    missing_eos_penalty: float = 1.0  # subtracted from the score of a response cut at max_new_tokens
    max_grad_norm: float = 1.0  # per model
    eval_every: int = 10  # steps between held-out evaluations (0: none)
    n_eval: int = 128
    eval_seed: int = 1234
    checkpoint_dir: str = ""  # "" disables checkpoints; otherwise resumes from the last one
    checkpoint_every: int = 10
    num_threads: int = 1  # one thread is fastest for models this small
    device: str = "cpu"


ADVANTAGES = ("gae", "grpo")

# the checks of check_config: integer fields and their minimum, then real-valued fields by range
_MIN_INT = {"steps": 1, "prompts_per_step": 1, "group_size": 1, "max_new_tokens": 1, "ppo_epochs": 1, "minibatches": 1,
            "eval_every": 0, "n_eval": 1, "checkpoint_every": 1}
_RANGES = {"> 0": lambda v: v > 0, ">= 0": lambda v: v >= 0, "in [0, 1]": lambda v: 0 <= v <= 1}
_RANGE_OF = {"temperature": "> 0", "lr": "> 0", "critic_lr": "> 0", "clip_eps": "> 0", "clip_range_value": "> 0",
             "max_grad_norm": "> 0", "beta": ">= 0", "vf_coef": ">= 0", "missing_eos_penalty": ">= 0",
             "gamma": "in [0, 1]", "lam": "in [0, 1]"}


def check_config(config):
    """Raise ValueError naming the first field of `config` (an ``RLHFConfig``) that is out of range."""
    for name, least in _MIN_INT.items():
        value = getattr(config, name)
        if not isinstance(value, int) or value < least:
            raise ValueError(f"RLHFConfig.{name} must be an integer >= {least}, got {value!r}")
    for name, expected in _RANGE_OF.items():
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or not _RANGES[expected](value):  # NaN fails every range
            raise ValueError(f"RLHFConfig.{name} must be a number {expected}, got {value!r}")
    if config.kl_estimator not in KL_ESTIMATORS:
        raise ValueError(f"RLHFConfig.kl_estimator must be one of {tuple(KL_ESTIMATORS)}, got {config.kl_estimator!r}")
    if config.advantage not in ADVANTAGES:
        raise ValueError(f"RLHFConfig.advantage must be one of {ADVANTAGES}, got {config.advantage!r}")
    if config.advantage == "grpo" and config.group_size < 2:
        raise ValueError(f"RLHFConfig.group_size must be >= 2 with advantage='grpo' (a group needs two "
                         f"responses to compare), got {config.group_size}")
    rows = config.prompts_per_step * config.group_size
    if rows % config.minibatches:
        raise ValueError(f"RLHFConfig.minibatches must divide the B = prompts_per_step * group_size = {rows} rows, "
                         f"got {config.minibatches}")


def load_critic(name_or_path="assistant-rm"):
    """The value model: a sequence classifier (one output) from the reward model's folder, its head at 0.

    The body starts from the reward model's, as TRL does (it already reads what makes a
    response good); the score head is set to zero, so V = 0 everywhere at the start
    (detail: value head initialised to zero), the same for every token, rather than the
    reward model's head, whose unnormalised output has an arbitrary level.
    """
    critic, _ = load_reward_model(name_or_path)
    with torch.no_grad():
        critic.score.weight.zero_()
        if getattr(critic.score, "bias", None) is not None:
            critic.score.bias.zero_()
    return critic


def token_values(critic, input_ids, attention_mask, response_start):
    """V(s_t) for every response token: the critic's head on the hidden state before token t.

    input_ids, attention_mask: (B, L) prompt + response, the prompt left-padded so that
    every response starts at column `response_start` = P; T = L - P response tokens.
    State s_t is the prompt and the response tokens before t; its last token sits at
    column P - 1 + t, so values[:, t] = score(h[:, P - 1 + t]): the state BEFORE the
    action c_t, the same shift as the log-probs (the logit at column j predicts j + 1).
    Positions count real tokens (``cumsum - 1``), as in ``reward_model.sequence_rewards``.
    Returns (B, T), with gradients; entries past a response's end are 0.
    """
    if input_ids.ndim != 2 or attention_mask.shape != input_ids.shape:
        raise ValueError(f"input_ids and attention_mask must both have shape (B, L), got "
                         f"{tuple(input_ids.shape)} and {tuple(attention_mask.shape)}")
    if not 1 <= response_start < input_ids.shape[1]:
        raise ValueError(f"response_start must be in 1..{input_ids.shape[1] - 1} (at least one prompt "
                         f"and one response token), got {response_start}")
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # (B, L)
    body = getattr(critic, critic.base_model_prefix)
    hidden = body(input_ids=input_ids, attention_mask=attention_mask,
                  position_ids=position_ids).last_hidden_state  # (B, L, H)
    values = critic.score(hidden[:, response_start - 1:-1]).squeeze(-1)  # (B, T): columns P-1 .. L-2
    return values * attention_mask[:, response_start:]  # (B, T)


def make_optimizers(policy, critic, config):
    """AdamW (no weight decay) for the policy at ``lr`` and for the critic at ``critic_lr`` (None without one)."""
    return (torch.optim.AdamW(policy.parameters(), lr=config.lr, weight_decay=0.0),
            torch.optim.AdamW(critic.parameters(), lr=config.critic_lr, weight_decay=0.0) if critic is not None
            else None)


def rlhf_step(policy, critic, ref_policy, rm, tokenizer, rm_tokenizer, problems, optimizers, config):
    """One RLHF iteration on `problems` (N dicts of ``assistant_task``). Returns a log dict.

    policy, critic: trained in place by ``optimizers`` = (policy's, critic's); critic and
    its optimizer are None with ``advantage="grpo"``; ref_policy, rm: frozen; tokenizer:
    the policy's (left padding; the critic reads the same ids); rm_tokenizer: the reward
    model's own. Uses torch's global random stream (sampling, then the minibatch order):
    seed it before calling. In order, with B = N * group_size rows:
    1. sample y ~ pi_theta(. | x), ``group_size`` per prompt x, at ``temperature``;
    2. score = r(x, y) (the normalised reward model, on the decoded text, with its own
       tokenizer) minus ``missing_eos_penalty`` if y has no eos, (B,);
    3. under no_grad: old logp and ref logp (B, T) at ``temperature`` (and old values);
    4. "gae": per-token rewards r_t = -beta * kl_t + [t last] * score, GAE(gamma, lam)
       advantages and returns, advantages whitened over the batch's tokens;
       "grpo": A = (score - group mean) / (group std + eps) on every token of a
       response, and the KL to the reference as beta * k3 in the loss instead;
    5. ``ppo_epochs`` x ``minibatches`` updates on the loss
           "gae":  L = L_clip (mean over the minibatch's tokens, "bnpo", as TRL) + vf_coef * L_V
           "grpo": L = L_clip + beta * k3 (mean over each response's tokens, then over responses).
       The two models share no parameter, so one backward of L gives each its own
       gradient; each then has its own clipping and its own Adam, so critic_lr is the
       critic's knob (Adam ignores a gradient's scale: vf_coef acts only through the
       clipping) and neither gradient's size can shrink the other's step, as one joint
       norm does in TRL, whose single optimizer holds both models.
    The log: ``score`` (mean reward-model score, before the penalty), ``reward`` (after),
    ``gold`` (mean gold reward, only logged), ``kl`` (mean over responses of sum_t kl_t,
    with ``kl_estimator`` in both modes), ``non_score_reward`` (mean of -beta * sum_t kl_t),
    ``rlhf_reward`` (reward + non_score_reward), ``length`` (tokens, eos included), ``no_eos``
    (share cut at max_new_tokens), ``policy/*`` and ``value/*`` (means over the updates;
    no ``value/*`` without a critic), ``completions``, ``scores``, ``golds``.
    """
    check_config(config)
    policy_optimizer, critic_optimizer = optimizers
    gae = config.advantage == "gae"
    G = config.group_size
    prompts = [make_prompt(p) for p in problems]
    problems = [p for p in problems for _ in range(G)]  # (B,) the problem of each row, group by group
    # Detail: dropout disabled: the models stay in eval mode, so the first ratio is exactly 1.
    policy.eval()
    rollout = generate(policy, tokenizer, prompts, group_size=G, max_new_tokens=config.max_new_tokens,
                       temperature=config.temperature)
    mask, P = rollout.completion_mask, rollout.prompt_ids.shape[1]  # (B, T), prompt columns
    input_ids, attention_mask = rollout.input_ids, rollout.attention_mask  # (B, P + T)
    # The reward model reads the text with its own tokenizer (a real one need not share the policy's).
    rm_scores = score(rm, rm_tokenizer, [make_prompt(p) for p in problems],
                      rollout.completions)  # (B,) detail: reward normalization
    # Detail: penalise a response that never ends (OpenAI: -1 without the stop token; TRL's missing_eos_penalty).
    scores = missing_eos_penalty(rm_scores, rollout.completion_ids, tokenizer.eos_token_id,
                                 config.missing_eos_penalty)  # (B,)
    golds = [gold_reward(p, c) for p, c in zip(problems, rollout.completions)]  # logged, never trained on

    args = (rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids, mask)
    with torch.no_grad():
        # Detail: logits divided by the sampling temperature, for old, ref and new log-probs alike.
        old_logp = sequence_logprobs(policy, *args, temperature=config.temperature)  # (B, T)
        ref_logp = sequence_logprobs(ref_policy, *args, temperature=config.temperature)  # (B, T)
    if gae:
        critic.eval()
        with torch.no_grad():
            old_values = token_values(critic, input_ids, attention_mask, P)  # (B, T)
        # Detail: a per-token KL penalty in the reward, the score on the last token.
        rewards, kl = kl_shaped_rewards(scores, old_logp, ref_logp, mask, config.beta, config.kl_estimator)
        advantages, returns = masked_gae(rewards, old_values, mask, config.gamma, config.lam)  # (B, T) each
        if config.whiten_advantages:  # detail: advantage whitening (OpenAI per minibatch, TRL and here per batch)
            advantages = masked_whiten(advantages, mask)
    else:  # GRPO: the group's other responses are the baseline, no critic
        kl = KL_ESTIMATORS[config.kl_estimator](old_logp, ref_logp) * mask  # (B, T) logged only
        advantages = group_advantages(scores, G)[:, None] * mask  # (B, T)

    B = len(problems)
    size = B // config.minibatches
    sums = {}
    for _ in range(config.ppo_epochs):
        order = torch.randperm(B)  # (B,) shuffled rows, a new order each epoch
        for start in range(0, B, size):
            idx = order[start:start + size]  # (b,)
            width = int(mask[idx].sum(-1).max())  # the minibatch's longest response: cut the padding after it
            m = mask[idx, :width]  # (b, t)
            logp = sequence_logprobs(policy, rollout.prompt_ids[idx], rollout.prompt_mask[idx],
                                     rollout.completion_ids[idx, :width], m, temperature=config.temperature)
            if gae:
                loss, metrics = policy_loss(logp, old_logp[idx, :width], advantages[idx, :width], m,
                                            clip_eps=config.clip_eps, aggregation="bnpo")
                values = token_values(critic, input_ids[idx, :P + width], attention_mask[idx, :P + width], P)
                # Detail: clipped value function (its own range, clip_range_value).
                v_loss, v_metrics = clipped_value_loss(values, old_values[idx, :width], returns[idx, :width], m,
                                                       config.clip_range_value)
                loss = loss + config.vf_coef * v_loss
                critic_optimizer.zero_grad(set_to_none=True)
            else:
                loss, metrics = policy_loss(logp, old_logp[idx, :width], advantages[idx, :width], m,
                                            clip_eps=config.clip_eps, aggregation="grpo",
                                            ref_logp=ref_logp[idx, :width], beta=config.beta)
                v_metrics = {}
            policy_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip = torch.nn.utils.clip_grad_norm_  # each model's own norm, before clipping, is logged
            metrics["policy/grad_norm"] = clip(policy.parameters(), config.max_grad_norm).item()
            policy_optimizer.step()
            if gae:
                v_metrics["value/grad_norm"] = clip(critic.parameters(), config.max_grad_norm).item()
                critic_optimizer.step()
            with torch.no_grad():  # PPO's clip fraction: the share of tokens with |ratio - 1| > clip_eps
                ratio = torch.exp(logp - old_logp[idx, :width])
                metrics["policy/clip_frac"] = masked_mean(((ratio - 1).abs() > config.clip_eps).float(), m).item()
            for key, value in {**metrics, **v_metrics}.items():
                sums[key] = sums.get(key, 0.0) + value
    updates = config.ppo_epochs * config.minibatches
    lengths = mask.sum(-1).float()  # (B,)
    kl_sum = (kl * mask).sum(-1)  # (B,) the estimator's KL of each response to the reference
    log = {"score": rm_scores.mean().item(), "reward": scores.mean().item(), "gold": sum(golds) / B,
           "kl": kl_sum.mean().item(), "non_score_reward": -config.beta * kl_sum.mean().item(),
           "rlhf_reward": (scores - config.beta * kl_sum).mean().item(), "length": lengths.mean().item(),
           "no_eos": (~(rollout.completion_ids == tokenizer.eos_token_id).any(-1)).float().mean().item(),
           # a sample estimate of the per-token entropy of the sampling policy: E[-log pi(c_t | s_t)]
           "policy/entropy": masked_mean(-old_logp, mask).item(),
           **{key: value / updates for key, value in sums.items()},
           "completions": rollout.completions, "scores": rm_scores.tolist(), "golds": golds}
    if gae:
        log["value/mean"] = masked_mean(old_values, mask).item()
    return log


def evaluate_policy(policy, tokenizer, rm, rm_tokenizer, problems, config, ref_policy=None):
    """Sampled (at ``temperature``, one per problem) held-out figures: ``gold_figures`` and the mean rm score.

    Sampled, not greedy: RLHF optimises the expected reward of samples, and the
    sampled figures show what the KL to the reference buys. Up to the shipped
    figures' length (``evaluate.MAX_NEW_TOKENS``), so they compare with base_metrics.json.
    Seeded with ``eval_seed``: every evaluation draws with the same random numbers.
    With `ref_policy`, also ``kl``: KL(policy || ref) estimated on these samples, the mean
    over responses of log pi(y + eos | x) - log pi_ref(y + eos | x) (``dpo.batch_logps``).
    """
    torch.manual_seed(config.eval_seed)
    figures = gold_figures(policy, tokenizer, problems, temperature=config.temperature,
                           max_new_tokens=max(MAX_NEW_TOKENS, config.max_new_tokens))
    prompts = [make_prompt(p) for p in problems]
    figures["score"] = score(rm, rm_tokenizer, prompts, figures["completions"]).mean().item()
    if ref_policy is not None:
        with torch.no_grad():
            logp = batch_logps(policy, tokenizer, prompts, figures["completions"])
            ref_logp = batch_logps(ref_policy, tokenizer, prompts, figures["completions"])
        figures["kl"] = (logp - ref_logp).mean().item()
    return figures


def train_rlhf(config=RLHFConfig(), progress=True):
    """Run RLHF-PPO from `config`; return (policy, tokenizer, history).

    history: one dict per step, ``rlhf_step``'s log with ``step``, ``seconds`` (since
    the start, evaluation included), ``eval_seconds``, and every ``eval_every`` steps
    ``eval/...`` (``evaluate_policy`` on ``n_eval`` held-out problems). Training
    problems: ``assistant_problems(steps * prompts_per_step, seed, "train")``, in order.
    With ``checkpoint_dir`` set, the run saves policy, critic, both optimizers and the
    history every ``checkpoint_every`` steps and at the end (atomically) and, started
    again, resumes at the saved step with the same problems and the same random stream
    (both derived from the step).
    """
    check_config(config)
    torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    policy, tokenizer = load_policy(config.policy, device=config.device)
    ref_policy = copy.deepcopy(policy).eval().requires_grad_(False)
    rm, rm_tokenizer = load_reward_model(config.reward_model)
    rm = rm.to(config.device).requires_grad_(False)
    critic = load_critic(config.reward_model).to(config.device) if config.advantage == "gae" else None
    if critic is not None and critic.config.vocab_size != policy.config.vocab_size:  # the critic reads the policy's token ids
        raise ValueError(f"reward_model {config.reward_model!r} must share the policy's vocabulary "
                         f"({policy.config.vocab_size} tokens) to serve as the critic, got {critic.config.vocab_size}")
    optimizers = make_optimizers(policy, critic, config)
    problems = assistant_problems(config.steps * config.prompts_per_step, config.seed, "train")
    eval_problems = assistant_problems(config.n_eval, config.eval_seed, "eval")

    start, history = 0, []
    path = Path(config.checkpoint_dir) / "checkpoint.pt" if config.checkpoint_dir else None
    state = load_state(path)
    if state is not None:
        policy.load_state_dict(state["policy"])
        if critic is not None:
            critic.load_state_dict(state["critic"])
        for optimizer, saved in zip(optimizers, state["optimizers"]):
            if optimizer is not None:
                optimizer.load_state_dict(saved)
        start, history = state["step"], state["history"]
    clock = time.time() - (history[-1]["seconds"] if history else 0.0)
    eval_seconds = history[-1]["eval_seconds"] if history else 0.0
    bar = tqdm(range(start, config.steps), desc="rlhf-ppo", disable=not progress, initial=start, total=config.steps)
    for step in bar:
        torch.manual_seed(config.seed * 1_000_003 + step)  # the step's samples, reproducible on resume
        batch = problems[step * config.prompts_per_step:(step + 1) * config.prompts_per_step]
        log = {"step": step, **rlhf_step(policy, critic, ref_policy, rm, tokenizer, rm_tokenizer, batch,
                                         optimizers, config)}
        if config.eval_every and (step + 1) % config.eval_every == 0:
            started = time.time()
            figures = evaluate_policy(policy, tokenizer, rm, rm_tokenizer, eval_problems, config)
            log.update({f"eval/{k}": v for k, v in figures.items()})
            eval_seconds += time.time() - started
        log["seconds"], log["eval_seconds"] = time.time() - clock, eval_seconds
        history.append(log)
        bar.set_postfix(score=f"{log['score']:.2f}", gold=f"{log['gold']:.2f}", kl=f"{log['kl']:.2f}")
        if path is not None and checkpoint_due(step, config.checkpoint_every, config.steps):
            save_checkpoint(path, {"policy": policy.state_dict(),
                                   "critic": critic.state_dict() if critic is not None else None,
                                   "optimizers": [o.state_dict() if o is not None else None for o in optimizers], "step": step + 1,
                                   "history": history, "config": asdict(config)})
    policy.eval()
    return policy, tokenizer, history
