"""Seconds per reward-model step and per phase: rlllm_course.rlhf.reward_model against TRL's RewardTrainer.

    python benchmarks/reward_vs_trl.py [--steps 20] [--repeats 2] [--trl-defaults]

Same model (the shipped assistant base with a fresh score head, float32, seeded alike),
same shipped preference pairs (``assistant-preferences``, the first steps x 32 of the
training split), 32 pairs (64 rows) a step, one epoch, the same batches in the same order
(TRL reads the pairs in the course's shuffled order, ``train_sampling_strategy="sequential"``),
the Bradley-Terry loss, one CPU thread. TRL's arguments come from the course's mapping
(``scale.trl_recipes.build_trl_config``) with ``bf16=False`` and
``activation_checkpointing=False``, its fastest CPU set-up for the same arithmetic
(``phase_clock``'s docstring). Phases (``phase_clock``): batch (ours tokenizes each step's
pairs, ``reward_inputs``; TRL tokenizes the data set once at set-up and collates each
step, its ``data_collator``), forward + loss (ours ``sequence_rewards`` +
``bradley_terry_loss``, TRL ``compute_loss``), backward + step.
"""

import tempfile

import torch

from phase_clock import BACKWARD, PhaseClock, check_steps, course_order, main, preference_pairs
from rlllm_course.rlhf import reward_model
from rlllm_course.rlhf.reward_model import RewardConfig, load_reward_model, train_reward_model
from rlllm_course.scale.trl_recipes import build_trl_config, quiet

BATCH, FORWARD = "batch", "forward + loss"
PHASES = [BATCH, FORWARD, BACKWARD]
TRL_DEFAULTS = {"bf16": True, "activation_checkpointing": True}


def course_config(seed):
    return RewardConfig(epochs=1.0, batch_size=32, seed=seed, num_threads=1)


def ours(args, seed):
    config = course_config(seed)
    data = preference_pairs(args.steps * config.batch_size)
    clock = PhaseClock()
    with clock.running():
        clock.wrap(reward_model, "reward_inputs", BATCH)
        clock.wrap(reward_model, "sequence_rewards", FORWARD)
        clock.wrap(reward_model, "bradley_terry_loss", FORWARD)
        rm, tokenizer = load_reward_model("assistant", seed=seed)
        history = train_reward_model(rm, tokenizer, data, config, progress=False)
    print(f"  ours: last loss {history[-1]['loss']:.3f}", flush=True)
    return clock


def trl_run(args, seed, overrides=None):
    import trl
    from datasets import Dataset

    torch.set_num_threads(1)
    clock = PhaseClock()
    config = course_config(seed)
    data = preference_pairs(args.steps * config.batch_size)
    with tempfile.TemporaryDirectory() as out, clock.running():
        rm, tokenizer = load_reward_model("assistant", seed=seed)
        trl_args = build_trl_config("reward", config, out, train_sampling_strategy="sequential", **(overrides or {}))
        trainer = trl.RewardTrainer(model=rm, args=trl_args, processing_class=tokenizer,
                                    train_dataset=Dataset.from_list(course_order(data, config.batch_size, seed)))
        clock.wrap(trainer, "data_collator", BATCH)
        clock.wrap(trainer, "compute_loss", FORWARD)
        quiet(trainer).train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    print(f"  trl: last loss {losses[-1]:.3f}", flush=True)
    return check_steps(clock, args.steps)


if __name__ == "__main__":
    main(__doc__, PHASES, ours, trl_run, TRL_DEFAULTS, steps=20)
