"""GRPO with partial rollouts (Kimi k1.5 §2.6.2): train on whole groups as they complete.

Each training step is one iteration of partial rollouts (``partial_rollout_engine``):
1. fill the rollout slots (prompts_per_step * group_size rows): the buffered
   trajectories first, then new prompts, group_size trajectories each (whole groups);
2. generate at most `budget` tokens per trajectory (``generate_segments``); the
   unfinished go back to the buffer;
3. GRPO's advantages are relative to the group, so a group is trained on in the
   iteration its last member finishes; members that finished earlier wait for it;
4. one update (``losses.policy_loss``) on the groups completed this iteration.

What the loss sees of a response (``partial_rollout.segment_loss_mask``): the
segment generated this iteration, and with ``exclude_stale=False`` also the stale
segments, sampled by earlier policies. The importance ratio pi_theta / pi_old
needs the behaviour policy's log-probs: for this iteration's tokens the current
policy's (ratio 1, the policy has not moved since it sampled them), for stale
tokens the sampler's, stored on each ``Segment``; the clipped surrogate then
corrects and clips the off-policy part. A member that finished in an earlier
iteration is all stale: with ``exclude_stale=True`` it gives its reward to the
group's baseline but no token to the loss.
"""

import copy
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..llm.grpo import ADVANTAGES, TASKS, GRPOConfig
from ..llm.losses import policy_loss
from ..llm.model import load_policy
from ..llm.rewards import accuracy_reward, format_reward
from ..llm.rollout import decode_completions, sequence_logprobs
from .evaluate import MAX_NEW_TOKENS
from .partial_rollout import PartialRolloutBuffer, end_iteration, plan_iteration, segment_loss_mask
from .partial_rollout_engine import generate_segments, pad_ids, prompt_token_ids
from ..training import checkpoint_due, load_state, save_checkpoint


def complete_groups(finished, waiting, group_size):
    """Collect finished trajectories by group: the groups complete now, a list of lists of group_size.

    finished: trajectories that finished this iteration, whose ``prompt["group"]``
    names their group; waiting: dict group -> finished members so far, updated in
    place (a complete group leaves it). Groups come out in the order they complete.
    """
    complete = []
    for trajectory in finished:
        members = waiting.setdefault(trajectory.prompt["group"], [])
        members.append(trajectory)
        if len(members) == group_size:
            complete.append(waiting.pop(trajectory.prompt["group"]))
    return complete


def partial_grpo_step(model, ref_model, optimizer, trajectories, tokenizer, config, iteration, exclude_stale=True):
    """One update on B finished trajectories, groups of G = config.group_size consecutive rows.

    trajectories: every segment carries its sampler log-probs; iteration: the
    current one (its segment is on-policy). Rewards r = accuracy + format_weight *
    format, advantages ``ADVANTAGES[config.advantage](r, G)``, (B,). Per token
    (B, T), T the longest response:
        mask    = segment_loss_mask(traj, iteration, exclude_stale),
        old_logp = logp.detach() on this iteration's tokens, the stored sampler
                   log-probs on stale ones,
    then ``policy_loss`` (clip_eps, aggregation, k3 to `ref_model` when config.beta > 0),
    backward, gradient clipping to max_grad_norm, optimizer step.
    Returns a log: loss, reward, accuracy, format, length (mean response tokens,
    eos included), trained_tokens, stale_share (share of the trained tokens from
    earlier iterations), grad_norm and ``policy/*``.
    """
    G = config.group_size
    prompt_ids, prompt_mask = pad_ids(prompt_token_ids(tokenizer, trajectories, config.template),
                                      tokenizer.pad_token_id, side="left")  # (B, P)
    completion_ids, completion_mask = pad_ids([t.response for t in trajectories], tokenizer.pad_token_id,
                                              side="right")  # (B, T)
    completions = decode_completions(tokenizer, completion_ids, completion_mask)
    accuracy = accuracy_reward(completions, [t.prompt for t in trajectories])  # (B,)
    fmt = format_reward(completions)  # (B,)
    rewards = accuracy + config.format_weight * fmt  # (B,)
    advantages = ADVANTAGES[config.advantage](rewards, G)  # (B,)
    current, _ = pad_ids([segment_loss_mask(t, iteration, exclude_stale=True) for t in trajectories], 0,
                         side="right")  # (B, T) 1 on this iteration's tokens
    mask, _ = pad_ids([segment_loss_mask(t, iteration, exclude_stale) for t in trajectories], 0,
                      side="right")  # (B, T)
    sampler_logp, _ = pad_ids([[lp for s in t.segments for lp in s.logprobs] for t in trajectories], 0.0,
                              side="right", dtype=torch.float)  # (B, T)
    if sampler_logp.shape != completion_ids.shape:
        raise ValueError("every segment must carry its sampler log-probs (generate_segments stores them)")

    device = next(model.parameters()).device
    args = [x.to(device) for x in (prompt_ids, prompt_mask, completion_ids, completion_mask)]
    mask, current, sampler_logp = mask.to(device), current.to(device), sampler_logp.to(device)
    with torch.no_grad():
        ref_logp = (sequence_logprobs(ref_model, *args, temperature=config.temperature)
                    if ref_model is not None else None)
    model.train()
    logp = sequence_logprobs(model, *args, temperature=config.temperature)  # (B, T)
    old_logp = torch.where(current.bool(), logp.detach(), sampler_logp)  # (B, T)
    loss, metrics = policy_loss(logp, old_logp, advantages.to(device), mask, clip_eps=config.clip_eps,
                                aggregation=config.aggregation, ref_logp=ref_logp, beta=config.beta,
                                max_completion_length=config.max_new_tokens)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
    optimizer.step()
    model.eval()
    trained = mask.sum().item()
    return {"loss": loss.item(), "reward": rewards.mean().item(), "accuracy": accuracy.mean().item(),
            "format": fmt.mean().item(), "length": completion_mask.sum(-1).float().mean().item(),
            "trained_tokens": trained, "stale_share": (mask * (1 - current)).sum().item() / max(trained, 1),
            "grad_norm": grad_norm.item(), **metrics}


def train_partial_grpo(config=GRPOConfig(model="reasoning", task="reasoning", max_new_tokens=MAX_NEW_TOKENS,
                                         log_kl=False),
                       budget=16, exclude_stale=True, progress=True, evaluator=None):
    """GRPO with partial rollouts from `config`; return (model, tokenizer, history).

    config: a ``GRPOConfig``; used fields: model, task, seed, steps (iterations),
    prompts_per_step and group_size (slots = their product rows in flight),
    lr, advantage (a key of ADVANTAGES: a group estimator), format_weight,
    aggregation, clip_eps, beta, max_grad_norm, temperature, max_new_tokens (the
    response cap max_length), template, num_threads, device. One update per
    iteration (updates_per_batch, sampling, the length and consistency rewards
    are train_grpo's only). checkpoint_dir / checkpoint_every: as in train_grpo,
    the run saves and, started again, resumes where it stopped, with the buffer
    and the groups waiting for their last member. evaluator: as in ``train_grpo``, ``f(model, tokenizer) -> dict``
    run every ``config.eval_every`` iterations, logged under ``eval/``; as there,
    ``seconds`` count it and ``eval_seconds`` is the part spent evaluating.
    budget: tokens per trajectory per iteration;
    exclude_stale: train on this iteration's segments only (Kimi's choice).
    Iteration k draws its samples after ``torch.manual_seed(seed * 1_000_003 + k)``.

    history: one dict per iteration: step, tokens (generated), rows, continued
    (from the buffer), new, buffered (left for the next iteration), finished (the
    group of each trajectory finished this iteration), groups (the groups trained,
    in order), seconds (since the start); when a group was trained also
    trained_tokens, stale_share, accuracy, length, reward, format, loss, grad_norm,
    ``policy/*`` (else loss is None).
    """
    if config.advantage not in ADVANTAGES:
        raise ValueError(f"advantage must be one of {sorted(ADVANTAGES)} (a group estimator), "
                         f"got {config.advantage!r}")
    if config.task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {config.task!r}")
    if not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be an integer >= 1 (tokens per trajectory per iteration), got {budget!r}")
    if not isinstance(config.group_size, int) or config.group_size < 2:
        raise ValueError(f"group_size must be an integer >= 2 (a group baseline), got {config.group_size!r}")
    torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    model, tokenizer = load_policy(config.model, device=config.device)
    ref_model = copy.deepcopy(model).eval().requires_grad_(False) if config.beta else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.99), weight_decay=0.0)
    # at most prompts_per_step new prompts an iteration: enough problems for every step
    problems = TASKS[config.task](config.steps * config.prompts_per_step, seed=config.seed, split="train")
    G, slots = config.group_size, config.prompts_per_step * config.group_size
    buffer, waiting, next_group, start, history = PartialRolloutBuffer(), {}, 0, 0, []
    path = Path(config.checkpoint_dir) / "checkpoint.pt" if config.checkpoint_dir else None
    state = load_state(path)
    if state is not None:
        if (state["budget"], state["exclude_stale"]) != (budget, exclude_stale):
            raise ValueError(f"the checkpoint in {config.checkpoint_dir} is of budget={state['budget']}, "
                             f"exclude_stale={state['exclude_stale']}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history, buffer = state["step"], state["history"], state["buffer"]
        waiting, next_group = state["waiting"], state["next_group"]
    clock = time.time() - (history[-1]["seconds"] if history else 0.0)
    eval_seconds = history[-1]["eval_seconds"] if history else 0.0
    bar = tqdm(range(start, config.steps), desc="partial grpo", disable=not progress, initial=start,
               total=config.steps)
    for step in bar:
        torch.manual_seed(config.seed * 1_000_003 + step)
        continued = len(buffer)
        n_groups = (slots - continued) // G  # whole new groups in the free slots
        new = [dict(problems[g], group=g) for g in range(next_group, next_group + n_groups) for _ in range(G)]
        next_group += n_groups
        batch = plan_iteration(new, buffer)
        model.eval()
        batch, _ = generate_segments(model, tokenizer, batch, step, budget, config.max_new_tokens,
                                     config.temperature, template=config.template)
        finished = end_iteration(batch, buffer)
        groups = complete_groups(finished, waiting, G)
        log = {"step": step, "tokens": sum(len(t.segments[-1].tokens) for t in batch), "rows": len(batch),
               "continued": continued, "new": len(new), "buffered": len(buffer),
               "finished": [t.prompt["group"] for t in finished], "groups": [g[0].prompt["group"] for g in groups],
               "loss": None}
        if groups:
            log.update(partial_grpo_step(model, ref_model, optimizer, [t for g in groups for t in g], tokenizer,
                                         config, step, exclude_stale))
        if evaluator is not None and config.eval_every and (step + 1) % config.eval_every == 0:
            started = time.time()
            log.update({f"eval/{k}": v for k, v in evaluator(model, tokenizer).items()})
            eval_seconds += time.time() - started
        log["seconds"], log["eval_seconds"] = time.time() - clock, eval_seconds
        history.append(log)
        bar.set_postfix(groups=len(groups), buffered=len(buffer),
                        acc=f"{log['accuracy']:.2f}" if groups else "-")
        if path is not None and checkpoint_due(step, config.checkpoint_every, config.steps):
            save_checkpoint(path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step + 1,
                                   "history": history, "buffer": buffer, "waiting": waiting,
                                   "next_group": next_group, "budget": budget, "exclude_stale": exclude_stale})
    model.eval()
    return model, tokenizer, history
