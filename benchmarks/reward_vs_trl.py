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

import argparse
import copy
import tempfile

import torch

from phase_clock import BACKWARD, PhaseClock, alternate, machine, report
from rlllm_course.llm.model import DATA_DIR
from rlllm_course.llm.sft import batch_order
from rlllm_course.rlhf import reward_model
from rlllm_course.rlhf.preferences import load_preferences
from rlllm_course.rlhf.reward_model import RewardConfig, load_reward_model, train_reward_model
from rlllm_course.scale.trl_recipes import build_trl_config

BATCH, FORWARD = "batch", "forward + loss"
PHASES = [BATCH, FORWARD, BACKWARD]
TRL_DEFAULTS = {"bf16": True, "activation_checkpointing": True}


def pairs(steps, batch_size):
    rows = load_preferences(DATA_DIR / "assistant-preferences", "train")[:steps * batch_size]
    return [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in rows]


def course_config(seed):
    return RewardConfig(epochs=1.0, batch_size=32, seed=seed, num_threads=1)


def ours(data, seed):
    clock = PhaseClock()
    with clock.running():
        clock.wrap(reward_model, "reward_inputs", BATCH)
        clock.wrap(reward_model, "sequence_rewards", FORWARD)
        clock.wrap(reward_model, "bradley_terry_loss", FORWARD)
        rm, tokenizer = load_reward_model("assistant", seed=seed)
        history = train_reward_model(rm, tokenizer, data, course_config(seed), progress=False)
    print(f"  ours: last loss {history[-1]['loss']:.3f}", flush=True)
    return clock


def trl_run(data, seed, overrides=None):
    import trl
    from datasets import Dataset

    torch.set_num_threads(1)
    clock = PhaseClock()
    config = course_config(seed)
    with tempfile.TemporaryDirectory() as out, clock.running():
        rm, tokenizer = load_reward_model("assistant", seed=seed)
        # the course's batches, in its order: TRL reads the pairs as given (its default samples at random)
        in_order = [copy.deepcopy(data[i]) for i in batch_order(len(data), len(data) // config.batch_size,
                                                                config.batch_size, seed)]
        args = build_trl_config("reward", config, out, train_sampling_strategy="sequential",
                                **(overrides or {}))
        trainer = trl.RewardTrainer(model=rm, args=args, train_dataset=Dataset.from_list(in_order),
                                    processing_class=tokenizer)
        clock.wrap(trainer, "data_collator", BATCH)
        clock.wrap(trainer, "compute_loss", FORWARD)
        trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    print(f"  trl: last loss {losses[-1]:.3f}", flush=True)
    if len(clock.steps) != len(data) // config.batch_size:
        raise RuntimeError(f"timed {len(clock.steps)} optimizer steps, expected {len(data) // config.batch_size}")
    return clock


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--trl-defaults", action="store_true",
                        help="also run TRL with its own defaults (bf16 autocast, activation checkpointing)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(machine())
    data = pairs(args.steps, course_config(0).batch_size)
    runs = {"ours": lambda seed: ours(data, seed), "trl": lambda seed: trl_run(data, seed)}
    if args.trl_defaults:
        runs["trl defaults"] = lambda seed: trl_run(data, seed, TRL_DEFAULTS)
    median = report(alternate(runs, args.repeats), PHASES)
    print(f"\nratio ours / trl (median step): {median['ours'] / median['trl']:.2f}")


if __name__ == "__main__":
    main()
