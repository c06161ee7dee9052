"""verl's single controller on one machine, with Ray (lecture §5; module 15).

verl runs RL as one Python process, the **single controller** (``RayPPOTrainer.fit``), that
calls **worker groups** (actor and rollout, critic, reward, reference) living in Ray actors on
the GPUs, as if they were local objects. The same pattern, small enough for a laptop:

- ``RolloutWorker`` actors, each a process with its own copy of the policy and one thread,
  sample completions for a share of the step's prompts, in parallel;
- the driver holds the learner: it gathers the rollouts (``merge_rollouts``), scores them and
  takes the GRPO update of module 08 (``llm.grpo.grpo_update``);
- the new weights go to the workers through Ray's object store: ``ray.put`` once, every worker
  reads the same copy (``sync_weights``).

A step is then "rollout phase, training phase", as in verl's hybrid engine, whose rollout and
training share the GPUs; here the workers sit idle while the learner trains.
"""

import copy
import time

import torch

from ..llm.grpo import GRPOConfig, TASKS, grpo_update
from ..llm.model import load_policy
from ..llm.rollout import Rollout, generate
from ..llm.tasks import make_prompt


def _ray():
    import ray  # imported here: only this module needs it (the "scale" extra)
    return ray


class RolloutWorker:
    """A rollout worker: the policy and its sampler in a process of its own (a Ray actor, ``make_workers``)."""

    def __init__(self, model="tiny", num_threads=1):
        torch.set_num_threads(num_threads)
        self.model, self.tokenizer = load_policy(model)
        self.model.eval()

    def load_weights(self, state):
        """Copy `state` (a state dict, read from the object store) into the worker's policy."""
        self.model.load_state_dict(state)
        return True

    def rollout(self, prompts, group_size, max_new_tokens, temperature, seed):
        """``generate`` for `prompts` (templated strings), seeded: the worker's share of a rollout phase."""
        torch.manual_seed(seed)
        return generate(self.model, self.tokenizer, prompts, group_size=group_size, max_new_tokens=max_new_tokens,
                        temperature=temperature)

    def weights_checksum(self):
        """The sum of every weight: to check that a sync reached the worker."""
        return float(sum(p.double().sum() for p in self.model.parameters()))


def make_workers(n, model="tiny"):
    """`n` RolloutWorker actors, one CPU each (``ray.init`` first)."""
    remote = _ray().remote(num_cpus=1)(RolloutWorker)
    return [remote.remote(model) for _ in range(n)]


def sync_weights(workers, model):
    """Put `model`'s weights in the object store once and load them into every worker; returns the seconds."""
    ray = _ray()
    started = time.perf_counter()
    ref = ray.put({k: v.detach().cpu() for k, v in model.state_dict().items()})
    ray.get([w.load_weights.remote(ref) for w in workers])
    return time.perf_counter() - started


def merge_rollouts(rollouts, pad_token_id):
    """One ``Rollout`` of several, in order: prompts left-padded and completions right-padded to common widths."""
    P = max(r.prompt_ids.shape[1] for r in rollouts)
    T = max(r.completion_ids.shape[1] for r in rollouts)
    left = lambda x, fill: torch.nn.functional.pad(x, (P - x.shape[1], 0), value=fill)
    right = lambda x, fill: torch.nn.functional.pad(x, (0, T - x.shape[1]), value=fill)
    index, start = [], 0
    for r in rollouts:
        index.append(r.prompt_index + start)
        start += int(r.prompt_index.max()) + 1 if len(r.prompt_index) else 0
    return Rollout(torch.cat([left(r.prompt_ids, pad_token_id) for r in rollouts]),
                   torch.cat([left(r.prompt_mask, 0) for r in rollouts]),
                   torch.cat([right(r.completion_ids, pad_token_id) for r in rollouts]),
                   torch.cat([right(r.completion_mask, 0) for r in rollouts]),
                   [c for r in rollouts for c in r.completions], torch.cat(index))


def parallel_rollout(workers, prompts, config, seed):
    """The rollout phase: `prompts` split into one contiguous share per worker, sampled in parallel, merged."""
    ray = _ray()
    n, W = len(prompts), len(workers)
    shares = [prompts[n * k // W:n * (k + 1) // W] for k in range(W)]  # whole groups: a prompt's G rows together
    futures = [w.rollout.remote(share, config.group_size, config.max_new_tokens, config.temperature, seed * 100 + k)
               for k, (w, share) in enumerate(zip(workers, shares)) if share]
    return ray.get(futures)


def train_grpo_ray(config=GRPOConfig(), workers=2):
    """GRPO with Ray rollout actors and the learner in this process; returns (model, history).

    workers: how many to start (``make_workers``), or a list of running ones (of ``config.model``).

    Each step: sync the learner's weights to the workers (object store), the rollout phase
    (``parallel_rollout``), the training phase (``grpo_update``). The history's entries are
    ``grpo_update``'s logs with ``rollout_seconds``, ``train_seconds`` and ``sync_seconds``.
    Call ``ray.init`` first (e.g. ``ray.init(num_cpus=2)``).
    """
    torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    model, tokenizer = load_policy(config.model)
    ref_model = copy.deepcopy(model).eval().requires_grad_(False) if config.beta or config.log_kl else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.99), weight_decay=0.0)
    actors = make_workers(workers, config.model) if isinstance(workers, int) else list(workers)
    problems = TASKS[config.task](config.steps * config.prompts_per_step, seed=config.seed, split="train")
    history = []
    for step in range(config.steps):
        batch = problems[step * config.prompts_per_step:(step + 1) * config.prompts_per_step]
        sync = sync_weights(actors, model)
        started = time.perf_counter()
        parts = parallel_rollout(actors, [make_prompt(p, config.template) for p in batch], config,
                                 config.seed * 1_000_003 + step)
        rollout = merge_rollouts(parts, tokenizer.pad_token_id)
        rolled = time.perf_counter()
        log = grpo_update(model, ref_model, optimizer, batch, rollout, config)
        log.update(step=step, sync_seconds=sync, rollout_seconds=rolled - started,
                   train_seconds=time.perf_counter() - rolled)
        history.append(log)
    model.eval()
    return model, history
