"""Seconds per GRPO step and per phase: rlllm_course.llm.grpo against TRL's GRPOTrainer, side by side.

    python benchmarks/grpo_vs_trl.py [--steps 8] [--repeats 2] [--beta 0] [--trl-defaults]

Same shipped tiny model (float32), same batch (16 prompts x 8 samples, up to 48 new
tokens, temperature 1, top-k 0, top-p 1), same problems in the same order, same rewards
(accuracy + format), one gradient step per batch, one CPU thread. TRL's arguments come
from the course's own mapping (``scale.trl_recipes.build_trl_config``), which also gives
TRL its fastest set-up on a CPU for the same arithmetic:
- ``bf16=False``: TRL defaults to bf16 autocast even on a CPU. Without native bfloat16
  (AVX2-only CPUs) that made its step ~10x slower (12.6 s against 1.3 s); with AVX512-BF16
  or AMX it makes TRL faster, on other numbers. float32 on both sides is the same work
  on every machine (``phase_clock``'s docstring);
- ``activation_checkpointing=False``: TRL's default recomputes every layer's forward in
  the backward pass to save memory the tiny model does not need;
- ``generation_batch_size`` = the batch (``steps_per_generation=1``), no vLLM, no
  ``torch_compile`` (its compile time is not repaid in a short CPU run), no Liger kernels
  (Triton, GPU only), ``log_completions=False``, data-loader workers 0. TRL's sampler uses
  the KV cache (``use_cache`` is on and checkpointing is off while it generates).
Phases (``phase_clock``): generation (ours ``rollout.generate``, TRL ``_generate``: tokenizing,
sampling, decoding), scoring (ours ``accuracy_reward`` + ``format_reward``, TRL
``_calculate_rewards``), log-probs without gradient (old / reference; none at beta 0 with
one update per batch), the forward with gradient (``sequence_logprobs`` /
``_get_per_token_logps_and_entropies``), backward + step. The two trainers sample
different completions, so the last line compares forward + backward per position
(rows x (prompt + completion) columns). The trainers alternate run by run so that machine
load hits both alike; the first steps of each run are warm-up.
"""

import statistics
import tempfile

import torch

from phase_clock import BACKWARD, PhaseClock, check_steps, grad_phase, main
from rlllm_course.llm import grpo
from rlllm_course.llm.grpo import GRPOConfig, train_grpo
from rlllm_course.llm.model import load_policy
from rlllm_course.llm.tasks import addition_problems, make_prompt
from rlllm_course.scale.trl_recipes import build_trl_config, quiet, rule_reward_functions

GENERATION, SCORING, NO_GRAD, FORWARD = "generation", "scoring", "log-probs (old/ref)", "forward (grad)"
PHASES = [GENERATION, SCORING, NO_GRAD, FORWARD, BACKWARD]
TRL_DEFAULTS = {"bf16": True, "activation_checkpointing": True}  # TRL 1.16's own, which the recipe turns off


def course_config(args, seed):
    return GRPOConfig(seed=seed, steps=args.steps, beta=args.beta, log_kl=False, num_threads=1)


def ours(args, seed):
    clock = PhaseClock()
    with clock.running():
        clock.wrap(grpo, "generate", GENERATION)
        clock.wrap(grpo, "accuracy_reward", SCORING)
        clock.wrap(grpo, "format_reward", SCORING)
        clock.wrap(grpo, "sequence_logprobs", grad_phase(FORWARD, NO_GRAD),
                   positions=lambda model, prompt_ids, prompt_mask, completion_ids, *a, **k:
                   prompt_ids.shape[0] * (prompt_ids.shape[1] + completion_ids.shape[1]))
        _, _, history = train_grpo(course_config(args, seed), progress=False)
    print(f"  ours: mean reward {statistics.mean(h['reward'] for h in history):.3f}", flush=True)
    return clock


def trl_run(args, seed, overrides=None):
    import trl
    from datasets import Dataset

    torch.set_num_threads(1)
    clock = PhaseClock()
    config = course_config(args, seed)
    policy, tokenizer = load_policy(config.model)
    problems = addition_problems(config.steps * config.prompts_per_step, seed=seed, split="train")
    data = Dataset.from_dict({"prompt": [make_prompt(p, config.template) for p in problems]})
    with tempfile.TemporaryDirectory() as out, clock.running():
        trainer = trl.GRPOTrainer(model=policy, reward_funcs=rule_reward_functions(tokenizer, problems, config),
                                  args=build_trl_config("grpo", config, out, **(overrides or {})),
                                  train_dataset=data, processing_class=tokenizer)
        clock.wrap(trainer, "_generate", GENERATION)
        clock.wrap(trainer, "_calculate_rewards", SCORING)
        clock.wrap(trainer, "_get_per_token_logps_and_entropies", grad_phase(FORWARD, NO_GRAD),
                   positions=lambda model, input_ids, *a, **k: input_ids.numel())
        quiet(trainer).train()
    rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
    print(f"  trl: mean reward {statistics.mean(rewards):.3f}", flush=True)
    return check_steps(clock, config.steps)


def beta_argument(parser):
    parser.add_argument("--beta", type=float, default=0.0, help="k3 coefficient: > 0 adds the reference's log-probs")


if __name__ == "__main__":
    main(__doc__, PHASES, ours, trl_run, TRL_DEFAULTS, steps=8, add_arguments=beta_argument, target=1.0)
