"""GRPO (and RLOO, Dr. GRPO) on the tiny model: the R1-Zero recipe in one loop.

pi_ref <- pi_theta at the start (a frozen copy of the initial model); then each step
(``grpo_step``), in the order the algorithm runs it:
1. pi_old <- pi_theta: draw ``prompts_per_step`` training problems, sample
   ``group_size`` completions each from the current policy;
2. score them with the rule rewards: r = accuracy + format_weight * format
   (+ consistency_weight * consistency, R1's language-consistency reward;
   + length_weight * Kimi k1.5's length reward once ``length_warmup`` steps are done);
3. turn rewards into advantages within each group (the pluggable estimator), or
   against a moving average of past rewards (``advantage="moving_average"``);
4. ``updates_per_batch`` gradient steps on the clipped surrogate (``losses.policy_loss``)
   against the same pi_old, with an optional k3 KL penalty to pi_ref.

The old log-probs are those of the sampling policy, computed once per batch
(with ``updates_per_batch = 1`` they equal the current ones: ratio = 1, no
clipping, and the loss gradient is the plain policy gradient). Problems come from
the training split, in a fixed order (``sampling="sequential"``) or drawn each step
from a pool by Kimi k1.5's strategies (``reasoning.sampling.ProblemSampler``);
evaluation uses the held-out split (``tasks``).
"""

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .evaluate import evaluate
from .losses import group_advantages, moving_average_advantages, policy_loss, rloo_advantages
from .model import load_policy
from .rewards import accuracy_reward, consistency_reward, format_reward, length_penalty
from .rollout import generate, sequence_logprobs
from .tasks import TINY_TEMPLATE, addition_problems, countdown_problems, make_prompt
from ..reasoning.sampling import STRATEGIES, ProblemSampler
from ..reasoning.tasks import reasoning_problems
from ..training import checkpoint_due, load_state, save_checkpoint

ADVANTAGES = {
    "grpo": lambda rewards, g: group_advantages(rewards, g, scale="group"),  # (r - mean) / (std + eps)
    "dr_grpo": lambda rewards, g: group_advantages(rewards, g, scale="none"),  # r - mean
    "rloo": rloo_advantages,  # r - mean of the other G - 1
}
# Estimators with state across steps: the baseline b, carried by train_grpo and checkpointed.
STATEFUL_ADVANTAGES = ("moving_average",)  # r - b_{k-1}, then b_k = decay * b_{k-1} + (1 - decay) * mean r
TASKS = {"addition": addition_problems, "countdown": countdown_problems, "reasoning": reasoning_problems}


@dataclass
class GRPOConfig:
    model: str = "tiny"  # shipped name or local folder
    task: str = "addition"  # a key of TASKS (the tiny model was pretrained on addition only)
    seed: int = 0
    steps: int = 60  # greedy pass@1 is above 90% by then on the tiny model
    prompts_per_step: int = 16
    group_size: int = 8  # G completions per prompt
    lr: float = 3e-4  # much larger rates (1e-3) risk a collapse to well-formatted wrong sums
    advantage: str = "grpo"  # a key of ADVANTAGES, or "moving_average"
    baseline_decay: float = 0.9  # beta of the moving-average baseline (advantage="moving_average")
    aggregation: str = "grpo"  # token aggregation of the loss (see losses.policy_loss)
    clip_eps: float = 0.2
    beta: float = 0.0  # k3 KL coefficient to the initial (reference) model
    log_kl: bool = True  # keep the reference model to log KL(policy || ref) even when beta = 0
    updates_per_batch: int = 1  # gradient steps on each batch of samples (TRL's num_iterations)
    format_weight: float = 1.0
    consistency_weight: float = 0.0  # R1's language-consistency reward (0: R1-Zero)
    length_weight: float = 0.0  # Kimi k1.5's length reward (rewards.length_penalty), within each group
    length_warmup: int = 0  # steps without the length reward first (Kimi warms up without it)
    sampling: str = "sequential"  # a fixed list of problems, or one of sampling.STRATEGIES over a pool
    pool_size: int = 256  # training problems the strategies draw from (with replacement)
    curriculum_warmup: int = 0  # "curriculum": steps on every level before the hard level only
    temperature: float = 1.0
    max_new_tokens: int = 48
    max_grad_norm: float = 1.0
    template: str = TINY_TEMPLATE
    eval_every: int = 0  # steps between held-out evaluations (0: none during training)
    n_eval: int = 200
    eval_seed: int = 1234
    checkpoint_dir: str = ""  # "" disables checkpoints; otherwise resumes from the last one
    checkpoint_every: int = 25
    num_threads: int = 1  # one thread is fastest for the tiny model on a CPU
    device: str = "cpu"


def _checkpoint_path(config):
    return Path(config.checkpoint_dir) / "checkpoint.pt" if config.checkpoint_dir else None


def grpo_step(model, ref_model, optimizer, problems, tokenizer, config, baseline=0.0, length_weight=0.0):
    """One GRPO iteration on `problems`: sample, reward, advantages, update. Returns a log dict.

    model: the policy (updated in place by `optimizer`); ref_model: the frozen reference,
    or None (then no KL term and no ``policy/kl``); problems: list of N problem dicts
    (``tasks``); config: a ``GRPOConfig`` (group_size G, template, temperature,
    max_new_tokens, format_weight, advantage, aggregation, clip_eps, beta,
    updates_per_batch, max_grad_norm). In order:
    1. pi_old <- pi_theta: sample G completions per prompt with ``rollout.generate``
       (model in eval mode; one call, the first use of torch's global random stream:
       seed it before calling for a reproducible step); B = N * G rows, prompt by prompt;
    2. rewards r = accuracy + format_weight * format (+ consistency_weight *
       ``consistency_reward``) (+ `length_weight` * ``length_penalty`` of the
       completion lengths, eos included, within each group), (B,);
    3. advantages ``ADVANTAGES[config.advantage](r, G)`` (or the moving average, from
       `baseline`, whose update the log returns under ``baseline``), constants;
    4. under no_grad, once: old log-probs (the sampler's, only needed when
       updates_per_batch > 1; with 1 update old = logp.detach(), ratio 1) and
       reference log-probs, all at `config.temperature`, masked by the completion mask
       (which keeps the eos);
    5. updates_per_batch times (model in train mode), against the same old log-probs:
       logp with grad, ``policy_loss`` (clip_eps, aggregation, ref_logp, beta,
       max_completion_length=config.max_new_tokens), zero_grad, backward, clip the
       gradient norm to max_grad_norm, optimizer step.
    Returns {"rewards": list of B floats, "completions": the B texts, "correct": their 0/1
    accuracies, "lengths": their tokens, "reward", "accuracy", "format" (batch means),
    "length" (mean completion tokens, eos included), "grad_norm" (before clipping, last
    update), "length_reward" (its mean, when length_weight is set), and the last
    update's ``policy_loss`` metrics ``policy/*``}.
    """
    prompts = [make_prompt(p, config.template) for p in problems]
    model.eval()
    rollout = generate(model, tokenizer, prompts, group_size=config.group_size, max_new_tokens=config.max_new_tokens,
                       temperature=config.temperature)
    return grpo_update(model, ref_model, optimizer, problems, rollout, config, baseline, length_weight)


def grpo_update(model, ref_model, optimizer, problems, rollout, config, baseline=0.0, length_weight=0.0):
    """Steps 2-5 of ``grpo_step`` on a given `rollout` of `problems` (G rows per problem, in order).

    The learner's half of a step, for rollouts sampled elsewhere (``scale.ray_rollout``'s
    workers); ``grpo_step`` samples, then calls it. Returns ``grpo_step``'s log.
    """
    G = config.group_size
    repeated = [p for p in problems for _ in range(G)]  # (B,) problem of each row
    accuracy = accuracy_reward(rollout.completions, repeated)  # (B,)
    fmt = format_reward(rollout.completions)  # (B,)
    rewards = accuracy + config.format_weight * fmt  # (B,)
    if config.consistency_weight:
        rewards = rewards + config.consistency_weight * consistency_reward(rollout.completions)
    extra = {}
    if length_weight:
        length_reward = length_penalty(rollout.completion_mask.sum(-1), accuracy, G)  # (B,)
        rewards = rewards + length_weight * length_reward
        extra["length_reward"] = length_reward.mean().item()
    if config.advantage == "moving_average":
        advantages, extra["baseline"] = moving_average_advantages(rewards, baseline, config.baseline_decay)
    else:
        advantages = ADVANTAGES[config.advantage](rewards, G)  # (B,)

    args = (rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids, rollout.completion_mask)
    mask = rollout.completion_mask
    with torch.no_grad():
        # With one update per batch the sampling policy is the current one: old = logp.detach().
        old_logp = (sequence_logprobs(model, *args, temperature=config.temperature)
                    if config.updates_per_batch > 1 else None)  # (B, T)
        ref_logp = (sequence_logprobs(ref_model, *args, temperature=config.temperature)
                    if ref_model is not None else None)
    model.train()
    for _ in range(config.updates_per_batch):
        logp = sequence_logprobs(model, *args, temperature=config.temperature)  # (B, T)
        old = logp.detach() if old_logp is None else old_logp
        loss, metrics = policy_loss(logp, old, advantages, mask, clip_eps=config.clip_eps,
                                    aggregation=config.aggregation, ref_logp=ref_logp, beta=config.beta,
                                    max_completion_length=config.max_new_tokens)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
    log = {"rewards": rewards.tolist(),  # (B,) the batch's rewards, group by group
           "completions": rollout.completions,  # (B,) the texts, for any later statistic
           "correct": accuracy.tolist(),  # (B,) 0/1 accuracy of each text
           "lengths": mask.sum(-1).tolist(),  # (B,) tokens of each completion, eos included
           "reward": rewards.mean().item(), "accuracy": accuracy.mean().item(),
           "format": fmt.mean().item(), "length": mask.sum(-1).float().mean().item(),
           "grad_norm": grad_norm.item(), **extra, **metrics}
    return log


def train_grpo(config=GRPOConfig(), progress=True, evaluator=None):
    """Run GRPO from `config`; return (model, tokenizer, history).

    evaluator: optional ``f(model, tokenizer) -> dict of floats`` run every ``eval_every``
    steps instead of the default held-out ``evaluate`` (its keys are logged under ``eval/``).

    history: list of per-step dicts (``step``, ``rewards`` (the B samples'), ``reward``
    (their mean), ``accuracy``, ``format``,
    ``length``, ``policy/*``, ``seconds`` (since the start), ``eval_seconds`` (the part of
    them spent evaluating); ``eval/pass@1`` and ``eval/format`` at
    evaluation steps; ``baseline`` with the moving-average estimator, which starts
    from b_0 = 0; ``problems``, the pool indices of the step's prompts, when a
    sampling strategy draws them). With ``checkpoint_dir`` set, the run saves every
    ``checkpoint_every`` steps and, started again, resumes where it stopped with
    the same problems and the same random stream (both are derived from the step;
    the prioritized sampler's success counts are saved with the weights).
    """
    estimators = sorted(ADVANTAGES) + list(STATEFUL_ADVANTAGES)
    if config.advantage not in estimators:
        raise ValueError(f"advantage must be one of {estimators}, got {config.advantage!r}")
    if config.task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {config.task!r}")
    if config.sampling not in ("sequential",) + STRATEGIES:
        raise ValueError(f"sampling must be 'sequential' or one of {STRATEGIES}, got {config.sampling!r}")
    torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    model, tokenizer = load_policy(config.model, device=config.device)
    ref_model = copy.deepcopy(model).eval().requires_grad_(False) if config.beta or config.log_kl else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.99), weight_decay=0.0)
    make_problems = TASKS[config.task]
    sampler = None
    if config.sampling == "sequential":
        problems = make_problems(config.steps * config.prompts_per_step, seed=config.seed, split="train")
    else:
        sampler = ProblemSampler(make_problems(config.pool_size, seed=config.seed, split="train"),
                                 config.sampling, config.seed, config.curriculum_warmup)
    eval_problems = make_problems(config.n_eval, seed=config.eval_seed, split="eval")

    start, history, path, baseline = 0, [], _checkpoint_path(config), 0.0
    state = load_state(path)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history = state["step"], state["history"]
        baseline = state.get("baseline", 0.0)
        if sampler is not None:
            sampler.load_state_dict(state["sampler"])

    # seconds since the start, evaluation included; eval_seconds: the part spent evaluating
    clock = time.time() - (history[-1]["seconds"] if history else 0.0)
    eval_seconds = history[-1].get("eval_seconds", 0.0) if history else 0.0
    bar = tqdm(range(start, config.steps), desc="grpo", disable=not progress, initial=start,
               total=config.steps)
    for step in bar:
        torch.manual_seed(config.seed * 1_000_003 + step)  # the step's samples, reproducible on resume
        if sampler is None:
            batch = problems[step * config.prompts_per_step:(step + 1) * config.prompts_per_step]
        else:
            index = sampler.draw(step, config.prompts_per_step)  # (N,) into the pool
            batch = [sampler.pool[i] for i in index.tolist()]
        length_weight = config.length_weight if step >= config.length_warmup else 0.0
        log = {"step": step, **grpo_step(model, ref_model, optimizer, batch, tokenizer, config, baseline,
                                         length_weight)}
        if sampler is not None:  # every sample of the group grades its problem
            sampler.update(index.repeat_interleave(config.group_size), torch.tensor(log["correct"]))
            log["problems"] = index.tolist()
        baseline = log.get("baseline", baseline)
        if config.eval_every and (step + 1) % config.eval_every == 0:
            started = time.time()
            figures = (evaluator(model, tokenizer) if evaluator is not None else
                       evaluate(model, tokenizer, eval_problems, config.template,
                                max_new_tokens=config.max_new_tokens))
            log.update({f"eval/{k}": v for k, v in figures.items()})
            eval_seconds += time.time() - started
        log["seconds"], log["eval_seconds"] = time.time() - clock, eval_seconds
        history.append(log)
        bar.set_postfix(acc=f"{log['accuracy']:.2f}", fmt=f"{log['format']:.2f}", len=f"{log['length']:.0f}")
        if path is not None and checkpoint_due(step, config.checkpoint_every, config.steps):
            # weights, optimizer, the next step, the log, the moving-average baseline, the sampler's state
            save_checkpoint(path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "step": step + 1, "history": history, "config": asdict(config),
                                   "baseline": baseline,
                                   "sampler": sampler.state_dict() if sampler is not None else None})
    model.eval()
    return model, tokenizer, history
