"""Seconds per DPO step and per phase: rlllm_course.llm.dpo against TRL's DPOTrainer, side by side.

    python benchmarks/dpo_vs_trl.py [--steps 20] [--repeats 2] [--trl-defaults]

Same shipped assistant model (float32), same shipped preference pairs
(``assistant-preferences``, the first steps x 16 of the training split), the "dpo" run's
hyperparameters (``rlhf.rlhf_runs.DPO_CONFIG``: 16 pairs a step, beta 0.1), one epoch,
the same batches in the same order (TRL reads the pairs in the course's shuffled order,
``train_sampling_strategy="sequential"``), one CPU thread. TRL's arguments come from the
course's mapping (``scale.trl_recipes.build_trl_config``), which gives TRL its fastest
CPU set-up for the same arithmetic: ``bf16=False`` and ``activation_checkpointing=False`` (``phase_clock``'s
docstring), and ``precompute_ref_log_probs=True``: the reference scores every pair once,
before training, as the course's loop does, instead of one more forward each step.
(``padding_free`` is disabled in TRL 1.16 and ``group_by_length`` would change the batches.)
Phases (``phase_clock``): batch (ours tokenizes each step's pairs, ``sft.response_batch``;
TRL tokenizes the data set once at set-up and collates each step, its ``data_collator``),
forward reference (up front on both sides, so only the warm-up steps hold it; its
seconds are printed per run; a per-step phase of TRL with ``--trl-defaults``), forward
policy + loss (ours ``batch_logps`` + ``dpo_loss``, TRL ``compute_loss``), backward + step.
"""

import tempfile

import torch

from phase_clock import (BACKWARD, WARMUP, PhaseClock, check_steps, course_order, grad_phase, main,
                         preference_pairs)
from rlllm_course.llm import dpo
from rlllm_course.llm.dpo import DPOConfig, train_dpo
from rlllm_course.llm.model import load_policy
from rlllm_course.rlhf.rlhf_runs import DPO_CONFIG
from rlllm_course.scale.trl_recipes import build_trl_config, quiet

BATCH, REF, POLICY = "batch", "forward reference", "forward policy + loss"
PHASES = [BATCH, REF, POLICY, BACKWARD]
TRL_DEFAULTS = {"bf16": True, "activation_checkpointing": True, "precompute_ref_log_probs": False}


def course_config(seed):
    return DPOConfig(**{**DPO_CONFIG, "epochs": 1, "seed": seed, "num_threads": 1})


def up_front(clock, name):
    seconds = sum(s.get(REF, 0.0) for s in clock.steps[:WARMUP])
    print(f"  {name}: reference forwards before the counted steps {seconds:.2f} s "
          f"(the whole pass over the pairs when precomputed)", flush=True)


def ours(args, seed):
    config = course_config(seed)
    data = preference_pairs(args.steps * config.batch_size)
    clock = PhaseClock()
    with clock.running():
        clock.wrap(dpo, "response_batch", BATCH)
        clock.wrap(dpo, "batch_logps", grad_phase(POLICY, REF))
        clock.wrap(dpo, "dpo_loss", POLICY)
        policy, tokenizer = load_policy("assistant")
        history = train_dpo(policy, tokenizer, data, config, progress=False)
    up_front(clock, "ours")
    print(f"  ours: last loss {history[-1]['dpo/loss']:.3f}", flush=True)
    return clock


def trl_run(args, seed, overrides=None):
    import trl
    from datasets import Dataset

    torch.set_num_threads(1)
    clock = PhaseClock()
    config = course_config(seed)
    data = preference_pairs(args.steps * config.batch_size)
    with tempfile.TemporaryDirectory() as out, clock.running():
        clock.wrap(trl.DPOTrainer, "compute_ref_log_probs", REF)  # the precomputation, inside __init__
        policy, tokenizer = load_policy("assistant")
        trl_args = build_trl_config("dpo", config, out, train_sampling_strategy="sequential", **(overrides or {}))
        trainer = trl.DPOTrainer(model=policy, args=trl_args, processing_class=tokenizer,
                                 train_dataset=Dataset.from_list(course_order(data, config.batch_size, seed)))
        clock.wrap(trainer, "data_collator", BATCH)
        clock.wrap(trainer, "compute_loss", POLICY)
        if trainer.ref_model is not None:  # no precomputation: one reference forward per step
            clock.wrap(trainer.ref_model, "forward", REF)
        quiet(trainer).train()
    up_front(clock, "trl")
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    print(f"  trl: last loss {losses[-1]:.3f}", flush=True)
    return check_steps(clock, args.steps)


if __name__ == "__main__":
    main(__doc__, PHASES, ours, trl_run, TRL_DEFAULTS, steps=20)
