"""Seconds per GRPO step: rlllm_course.llm.grpo against TRL's GRPOTrainer, side by side.

    python benchmarks/grpo_vs_trl.py [--steps 12] [--repeats 2]

Same shipped tiny model, same batch (16 prompts x 8 samples, up to 48 new
tokens, temperature 1), same rewards (accuracy + format), beta = 0, one
gradient step per batch, one CPU thread. Each step is timed from its start to
the end of the optimizer step (sampling, rewards, advantages, loss, update);
the first two steps of each run are warm-up and not counted. The two trainers
alternate run by run so that machine load hits both alike.
"""

import argparse
import statistics
import tempfile
import time

import torch

from rlllm_course.llm.grpo import GRPOConfig, train_grpo
from rlllm_course.llm.model import resolve_model_path
from rlllm_course.llm.rewards import accuracy_reward, format_reward
from rlllm_course.llm.tasks import TINY_TEMPLATE, addition_problems, make_prompt

WARMUP = 2


def ours(steps, seed):
    config = GRPOConfig(seed=seed, steps=steps, log_kl=False, beta=0.0)
    _, _, history = train_grpo(config, progress=False)
    print(f"  ours: mean reward {statistics.mean(h['reward'] for h in history):.3f}", flush=True)
    ends = [h["seconds"] for h in history]
    return [b - a for a, b in zip(ends[:-1], ends[1:])][WARMUP - 1:]  # step i's duration, warm-up dropped


def trl_run(steps, seed):
    import transformers
    import trl
    from datasets import Dataset

    from rlllm_course.llm.model import load_tokenizer

    config = GRPOConfig(seed=seed)
    problems = addition_problems(steps * config.prompts_per_step, seed=seed, split="train")
    by_prompt = {make_prompt(p, TINY_TEMPLATE): p for p in problems}
    dataset = Dataset.from_dict({"prompt": list(by_prompt)})

    tokenizer = load_tokenizer(str(resolve_model_path(config.model)))

    def texts(completion_ids):
        # TRL decodes without special tokens, which drops the <think>/<answer> tags
        # the rewards read: decode as our rollout does, tags kept.
        return [tokenizer.decode([i for i in ids if i not in drop], skip_special_tokens=False)
                for ids in completion_ids]

    drop = {tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id}

    def accuracy(prompts, completions, completion_ids, **kwargs):
        return accuracy_reward(texts(completion_ids), [by_prompt[p] for p in prompts]).tolist()

    def fmt(prompts, completions, completion_ids, **kwargs):
        return format_reward(texts(completion_ids)).tolist()

    class StepClock(transformers.TrainerCallback):
        def __init__(self):
            self.times = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter() - self.start)

    clock = StepClock()
    with tempfile.TemporaryDirectory() as out:
        args = trl.GRPOConfig(
            output_dir=out, use_cpu=True, seed=seed, max_steps=steps, report_to="none",
            save_strategy="no", disable_tqdm=True,
            per_device_train_batch_size=config.prompts_per_step * config.group_size,
            num_generations=config.group_size, max_completion_length=config.max_new_tokens,
            temperature=config.temperature, learning_rate=config.lr, beta=0.0,
            epsilon=config.clip_eps, loss_type=config.aggregation, scale_rewards="group",
            max_grad_norm=config.max_grad_norm, lr_scheduler_type="constant", warmup_steps=0,
            num_iterations=1, dataloader_num_workers=0, logging_steps=1)
        model = str(resolve_model_path(config.model))
        trainer = trl.GRPOTrainer(model=model, reward_funcs=[accuracy, fmt], args=args,
                                  train_dataset=dataset, processing_class=tokenizer,
                                  callbacks=[clock])
        trainer.train()
        rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
    print(f"  trl: mean reward {statistics.mean(rewards):.3f}", flush=True)
    return clock.times[WARMUP:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    times = {"rlllm_course": [], "trl": []}
    for r in range(args.repeats):
        times["rlllm_course"] += ours(args.steps, seed=r)
        times["trl"] += trl_run(args.steps, seed=r)
        print(f"run {r}: ours {statistics.median(times['rlllm_course']):.3f} s/step, "
              f"trl {statistics.median(times['trl']):.3f} s/step", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nmedian seconds per step over {len(times['trl'])} steps each")
    print(f"  rlllm_course.llm.grpo : {med['rlllm_course']:.3f}")
    print(f"  trl GRPOTrainer       : {med['trl']:.3f}")
    print(f"  ratio ours / trl      : {med['rlllm_course'] / med['trl']:.2f}  (target <= 1)")


if __name__ == "__main__":
    main()
