"""Throughput measured: tokens per second, achieved FLOP/s and peak memory of a GRPO step (module 15).

``scale.cost`` puts a GRPO step on paper; this file times one. A step has two phases that
stress a device differently, so they are timed apart:

- generation (``llm.rollout.generate``): one forward pass per new token over the whole batch,
  reading every weight each time; small matrix products, bound by memory bandwidth;
- the update (``llm.grpo.grpo_update``): the reference's log-probs and one forward and
  backward pass over every row at once; large matrix products, bound by FLOPs.

Counting conventions:
- tokens are real tokens, never padding: a phase's tokens are the sum of the completion
  masks (eos included: stopping is an action the policy took and is trained on); the update
  trains on the same tokens, once per update;
- achieved FLOPs use ``scale.cost``'s 2N / 6N per real token that passes through the model,
  prompt tokens included (the prefill reads them, the update recomputes them): generation
  2N per prompt and completion token, the update 6N per token and update plus 2N per token
  for the reference (and for the old log-probs with more than one update);
- a GPU runs its kernels asynchronously: the clock is read only after
  ``torch.cuda.synchronize`` (``timed``).

Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU (the tensors torch allocated,
reset at every step); on a CPU it is the process's peak resident set size
(``resource.getrusage``), which covers everything (Python, the libraries) and is never reset.
"""

import contextlib
import resource
import sys
import time
from dataclasses import dataclass

import torch

from .cost import grpo_step_flops
from ..llm.grpo import grpo_update
from ..llm.rollout import generate


def real_tokens(mask):
    """The number of real tokens in a 0/1 `mask` of any shape (its sum), as an int."""
    return int(mask.sum())


def synchronize(device):
    """Wait for `device`'s queued kernels (a no-op on a CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(run, device):
    """Call ``run()``; return (its result, wall seconds), the device synchronized at both ends."""
    synchronize(device)
    started = time.perf_counter()
    result = run()
    synchronize(device)
    return result, time.perf_counter() - started


def reset_peak_memory(device):
    """Start a new peak on a GPU (a CPU's peak RSS cannot be reset)."""
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device):
    """(bytes, what was measured): the GPU's peak allocation, or the process's peak RSS on a CPU."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated(device), "peak GPU memory (max_memory_allocated)"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss * (1 if sys.platform == "darwin" else 1024), "peak RSS of the process (CPU run)"  # kB on Linux


@dataclass
class StepThroughput:
    """Tokens and seconds of one GRPO step's two phases (module docstring for the conventions)."""

    prompt_tokens: int  # real prompt tokens of the B rows (each row reads its prompt)
    generated_tokens: int  # sum of the completion masks
    generation_seconds: float
    trained_tokens: int  # generated_tokens * updates
    update_seconds: float  # rewards, advantages, reference and old log-probs, the updates
    updates: int = 1
    reference: bool = True

    @property
    def seconds(self):
        return self.generation_seconds + self.update_seconds

    @property
    def generated_per_second(self):
        return self.generated_tokens / self.generation_seconds

    @property
    def trained_per_second(self):
        return self.trained_tokens / self.update_seconds

    def flops(self, n_params):
        """``scale.cost.StepCost`` of the step's real tokens (linear in tokens: the batch as one row)."""
        return grpo_step_flops(n_params, prompts=1, group_size=1, prompt_tokens=self.prompt_tokens,
                               response_tokens=max(self.generated_tokens, 1), updates=self.updates,
                               reference=self.reference)

    def achieved_flops_per_second(self, n_params):
        """(generation, update) FLOP/s achieved: the phase's FLOPs on paper over its seconds."""
        cost = self.flops(n_params)
        return cost.generation / self.generation_seconds, (cost.logprobs + cost.update) / self.update_seconds


def measured_grpo_step(model, ref_model, optimizer, problems, prompts, tokenizer, config, precision=None):
    """``llm.grpo.grpo_step`` with its two halves timed: generate, then ``grpo_update``.

    problems: N problem dicts; prompts: their N prompt strings (already templated, so a chat
    model's template can be applied by the caller); config: a ``GRPOConfig``; precision: a
    context manager to run both phases in (e.g. ``torch.autocast``), or None.
    Returns (grpo_update's log, a ``StepThroughput``).
    """
    device = next(model.parameters()).device
    precision = precision if precision is not None else contextlib.nullcontext()
    with precision:
        model.eval()
        rollout, generation_seconds = timed(
            lambda: generate(model, tokenizer, prompts, group_size=config.group_size,
                             max_new_tokens=config.max_new_tokens, temperature=config.temperature), device)
        log, update_seconds = timed(
            lambda: grpo_update(model, ref_model, optimizer, problems, rollout, config), device)
    generated = real_tokens(rollout.completion_mask)
    return log, StepThroughput(real_tokens(rollout.prompt_mask), generated, generation_seconds,
                               generated * config.updates_per_batch, update_seconds,
                               config.updates_per_batch, ref_model is not None)


def matmul_flops_per_second(size=1024, repeats=5, device="cpu", dtype=torch.float32):
    """FLOP/s of a `size` x `size` matrix product on `device` (best of `repeats`): 2 size^3 FLOPs each.

    The device's attainable peak for this dtype and thread count, to set achieved FLOP/s against.
    """
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b  # warm-up
    best = min(timed(lambda: a @ b, device)[1] for _ in range(repeats))
    return 2 * size ** 3 / best
