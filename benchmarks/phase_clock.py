"""Per-phase seconds of training steps, shared by the side-by-side benchmarks against TRL.

Used by ``grpo_vs_trl.py``, ``dpo_vs_trl.py`` and ``reward_vs_trl.py`` (not run on its own).
A ``PhaseClock`` wraps functions of either trainer (module functions of the course,
methods of a TRL trainer) and charges each call's *exclusive* time to a phase: a call
nested in another wrapped call is taken out of its parent, so the phases of a step add
up to at most the step. What no wrapper covers is reported as "other" (the loss's
arithmetic, advantages, logging, the data loader's bookkeeping).

The same two phases are measured the same way on both sides, by hooks rather than by
wrapping either trainer's code:
- "backward + step": ``Tensor.backward``, ``torch.nn.utils.clip_grad_norm_`` and every
  optimizer's ``step`` (torch's global optimizer hooks);
- the step itself: from one optimizer step's end to the next, so a step holds everything
  the loop does between two updates (TRL's data loader and logging included).
The first ``WARMUP`` steps of every run hold the set-up (loading, tokenizing a dataset, a
precomputed reference) and are not counted.

Why the ratios mean the same on every machine: both trainers run the same float32 model
on one torch thread. TRL's defaults (``bf16=True``, autocast to bfloat16 even on a CPU,
and gradient checkpointing) are switched off by the course's own mapping
(``rlllm_course.scale.trl_recipes``): on a CPU without native bfloat16 (AVX2 only, e.g.
AMD EPYC Rome/Milan) every autocast matmul runs about 6x slower than in float32 and
TRL's GRPO step about 10x; on one with AVX512-BF16 or AMX the same setting makes TRL
faster than float32. ``--trl-defaults`` adds a run of TRL with its own defaults; setting
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` emulates an AVX2-only CPU.
"""

import functools
import platform
import argparse
import copy
import statistics
import time
from contextlib import contextmanager

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

WARMUP = 2
STEP, OTHER, BACKWARD = "step", "other", "backward + step"
POSITIONS = "positions"  # (rows x columns) through the forward with gradient in a step, when counted


class PhaseClock:
    """Exclusive seconds per phase, one dict per optimizer step (``steps``)."""

    def __init__(self):
        self.steps, self.current, self.stack, self.patches = [], {}, [], []
        self.threads = set()  # torch.get_num_threads() seen at every step
        self.last = time.perf_counter()

    def enter(self, phase):
        self.stack.append([phase, time.perf_counter(), 0.0])

    def exit(self):
        phase, start, inner = self.stack.pop()
        elapsed = time.perf_counter() - start
        self.current[phase] = self.current.get(phase, 0.0) + elapsed - inner
        if self.stack:
            self.stack[-1][2] += elapsed  # the parent's exclusive time leaves this call out

    def wrap(self, owner, name, phase, positions=None):
        """Time every call of ``owner.name`` (a module, class or instance attribute) as `phase`.

        phase: a name, or a function of no argument returning one (read at each call, e.g.
        to tell a no-grad forward from one with gradients). positions: optional
        ``f(*args, **kwargs) -> int``, the positions a call with gradients sends through the
        model, summed per step: sampled lengths differ between trainers, so the forward and
        backward are also compared per position.
        """
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            if positions is not None and torch.is_grad_enabled():
                self.current[POSITIONS] = self.current.get(POSITIONS, 0) + positions(*args, **kwargs)
            self.enter(phase() if callable(phase) else phase)
            try:
                return original(*args, **kwargs)
            finally:
                self.exit()

        own = name in vars(owner)  # else inherited (a class) or bound from the class (an instance): delete to undo
        self.patches.append((owner, name, vars(owner)[name] if own else None))
        setattr(owner, name, timed)

    def step_end(self):
        now = time.perf_counter()
        self.current[STEP] = now - self.last
        self.last = now
        self.threads.add(torch.get_num_threads())
        self.steps.append(self.current)
        self.current = {}

    @contextmanager
    def running(self):
        """Hooks for "backward + step" and the step boundary while the block runs; every wrap undone after."""
        hooks = [register_optimizer_step_pre_hook(lambda *a: self.enter(BACKWARD)),
                 register_optimizer_step_post_hook(lambda *a: (self.exit(), self.step_end()))]
        self.wrap(torch.Tensor, "backward", BACKWARD)
        self.wrap(torch.nn.utils, "clip_grad_norm_", BACKWARD)
        try:
            yield self
        finally:
            for hook in hooks:
                hook.remove()
            for owner, name, original in reversed(self.patches):
                if original is None:
                    delattr(owner, name)
                else:
                    setattr(owner, name, original)
            self.patches = []

    def counted(self):
        return self.steps[WARMUP:]


def grad_phase(with_grad, without_grad):
    """A phase chooser for `PhaseClock.wrap`: `with_grad` when autograd is on, else `without_grad`."""
    return lambda: with_grad if torch.is_grad_enabled() else without_grad


def machine():
    """One line on what the figures were measured on."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("", platform.machine()):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    bf16 = [f for f in ("avx512_bf16", "amx_bf16") if f in flags] or ["none"]
    import transformers
    import trl
    return (f"{model}; torch {torch.__version__} (kernels {torch.backends.cpu.get_cpu_capability()}), "
            f"native bf16: {', '.join(bf16)}; transformers {transformers.__version__}, trl {trl.__version__}")


def alternate(runs, repeats):
    """Call each of `runs` ({name: f(seed) -> PhaseClock}) in turn, `repeats` times; {name: counted steps}."""
    steps = {name: [] for name in runs}
    for seed in range(repeats):
        for name, run in runs.items():
            clock = run(seed)
            steps[name] += clock.counted()
            seconds = statistics.median(s[STEP] for s in clock.counted())
            print(f"run {seed} {name:18s} {seconds:.3f} s/step (median of {len(clock.counted())}), "
                  f"torch threads {sorted(clock.threads)}", flush=True)
    return steps


def report(steps, phases, ours="ours"):
    """Print mean seconds per step of each phase, "other" and the step, each run beside `ours`, and ratios.

    steps: {name: list of per-step dicts}; phases: the phase names, in the order of a step.
    The headline ratio is that of the median steps (robust to a busy neighbour); the
    means add up down each column.
    """
    names = list(steps)
    mean = {n: {p: statistics.mean(s.get(p, 0.0) for s in steps[n]) for p in phases + [STEP]} for n in names}
    for n in names:
        mean[n][OTHER] = mean[n][STEP] - sum(mean[n][p] for p in phases)
    others = [n for n in names if n != ours]
    print(f"\nmean seconds per step over {min(len(v) for v in steps.values())}+ steps each, {WARMUP} warm-up "
          f"steps per run left out")
    header = f"{'phase':24s}" + "".join(f"{n:>18s}" for n in names) + "".join(f"{'ours/' + n:>20s}" for n in others)
    print(header)
    print("-" * len(header))
    for p in phases + [OTHER, STEP]:
        row = f"{p if p != STEP else 'step (mean)':24s}" + "".join(f"{mean[n][p]:18.3f}" for n in names)
        row += "".join(f"{mean[ours][p] / mean[n][p]:20.2f}" if mean[n][p] > 1e-3 else f"{'-':>20s}" for n in others)
        print(row)
    median = {n: statistics.median(s[STEP] for s in steps[n]) for n in names}
    print(f"{'step (median)':24s}" + "".join(f"{median[n]:18.3f}" for n in names)
          + "".join(f"{median[ours] / median[n]:20.2f}" for n in others))
    if all(POSITIONS in s for n in names for s in steps[n]):
        # forward with gradient + backward + step, per 1000 positions: the same work whatever was sampled
        per = {n: 1000 * sum(sum(s.get(p, 0.0) for p in phases[-2:]) for s in steps[n])
               / sum(s[POSITIONS] for s in steps[n]) for n in names}
        print(f"{'positions (mean)':24s}" + "".join(f"{statistics.mean(s[POSITIONS] for s in steps[n]):18.0f}"
                                                     for n in names))
        print(f"{'fwd+bwd s/1k positions':24s}" + "".join(f"{per[n]:18.4f}" for n in names)
              + "".join(f"{per[ours] / per[n]:20.2f}" for n in others))
    return median


def course_order(rows, batch_size, seed):
    """`rows` in the order the course's loops read them (``llm.sft.batch_order``, one epoch), copied.

    TRL reads a data set as given with ``train_sampling_strategy="sequential"`` (its default
    samples at random), so both sides see the same batches in the same order.
    """
    from rlllm_course.llm.sft import batch_order
    order = batch_order(len(rows), len(rows) // batch_size, batch_size, seed)
    return [copy.deepcopy(rows[i]) for i in order]


def preference_pairs(n):
    """The first `n` shipped preference pairs of the training split, as prompt/chosen/rejected rows."""
    from rlllm_course.llm.model import DATA_DIR
    from rlllm_course.rlhf.preferences import load_preferences
    rows = load_preferences(DATA_DIR / "assistant-preferences", "train")[:n]
    return [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in rows]


def check_steps(clock, expected):
    """Fail loudly when a run took another number of optimizer steps than the comparison assumes."""
    if len(clock.steps) != expected:
        raise RuntimeError(f"timed {len(clock.steps)} optimizer steps, expected {expected}")
    return clock


def main(doc, phases, ours, trl_run, trl_defaults, steps, add_arguments=None, target=None):
    """The command line of a side-by-side benchmark.

    ours(args, seed) and trl_run(args, seed, overrides=None) return a PhaseClock; `trl_defaults`
    are the overrides that give TRL its own defaults back (``--trl-defaults`` adds that run).
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--repeats", type=int, default=2)
    own = ", ".join(f"{k}={v}" for k, v in trl_defaults.items())
    parser.add_argument("--trl-defaults", action="store_true", help=f"also run TRL with its own defaults ({own})")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(machine())
    runs = {"ours": lambda seed: ours(args, seed), "trl": lambda seed: trl_run(args, seed)}
    if args.trl_defaults:
        runs["trl defaults"] = lambda seed: trl_run(args, seed, trl_defaults)
    median = report(alternate(runs, args.repeats), phases)
    print(f"\nratio ours / trl (median step): {median['ours'] / median['trl']:.2f}"
          + (f"  (target <= {target:g})" if target is not None else ""))
