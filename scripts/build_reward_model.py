"""Build the RLHF track's reward model into rlllm_course/data/assistant-rm (about half an hour on one core).

    python scripts/build_reward_model.py
    python scripts/build_reward_model.py --pairs 64 --n-norm 16 --n-probe 16 --out /tmp/rm   # a quick trial

Fits ``rlhf.reward_model`` from the assistant base on the shipped preference pairs
(``assistant-preferences/train.jsonl``), normalises it on the base's own samples of the
training questions (zero mean, unit std under the reference policy), and writes it with
rm_metrics.json: the held-out accuracy along training and at the end against the
labeller-noise ceiling, the accuracy on each kind of pair, and the probe table
(``rlhf.evaluate.probe_table``: the reward of each part of a response, beside the gold
reward's). An interrupted build resumes from its checkpoint in ``--out``/checkpoint.
"""

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import torch
import transformers

from rlllm_course.llm.model import DATA_DIR, load_policy
from rlllm_course.llm.rollout import generate
from rlllm_course.rlhf import reward_model as rmod
from rlllm_course.rlhf.assistant_task import assistant_problems, make_prompt
from rlllm_course.rlhf.evaluate import pair_kind, probe_table
from rlllm_course.rlhf.preferences import label_ceiling, load_preferences

PAIRS = DATA_DIR / "assistant-preferences"
# two epochs: after one the held-out accuracy was 73.8%, 8 points under the ceiling (a first-digit error
# was caught in 82-88% of the probes); one thread, so that the build is deterministic on a given machine
RM_CONFIG = rmod.RewardConfig(epochs=2.0, batch_size=32, lr=3e-4, warmup_steps=20, eval_every=50, num_threads=1)
NORMALIZATION_SAMPLES = 2000  # base samples of training questions, one each
PROBE_QUESTIONS = 400
CURVE_PAIRS = 500


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR / "assistant-rm")
    parser.add_argument("--base", default=str(DATA_DIR / "assistant-base"), help="the assistant base's folder")
    parser.add_argument("--pairs", type=int, default=None, help="train on the first N pairs (default: all)")
    parser.add_argument("--n-norm", type=int, default=NORMALIZATION_SAMPLES, help="base samples for the normalisation")
    parser.add_argument("--n-probe", type=int, default=PROBE_QUESTIONS, help="questions of the probe table")
    parser.add_argument("--epochs", type=float, default=RM_CONFIG.epochs, help="passes over the pairs")
    parser.add_argument("--threads", type=int, default=RM_CONFIG.num_threads, help="torch threads")
    args = parser.parse_args()

    train, test = load_preferences(PAIRS, "train"), load_preferences(PAIRS, "test")
    train = train[:args.pairs] if args.pairs else train
    rm, tokenizer = rmod.load_reward_model(args.base, seed=RM_CONFIG.seed)
    config = dataclasses.replace(RM_CONFIG, epochs=args.epochs, num_threads=args.threads,
                                 checkpoint_dir=str(args.out / "checkpoint"))
    # the curve on a quarter of the test pairs (scoring all 2000 takes ~30 s); the final figures on all
    history = rmod.train_reward_model(rm, tokenizer, train, config, eval_pairs=test[:CURVE_PAIRS])

    chosen, rejected = rmod.pair_rewards(rm, tokenizer, test)
    kinds = [pair_kind(p) for p in test]
    by_kind = {}
    for k in sorted(set(kinds)):
        rows = torch.tensor([e == k for e in kinds])
        by_kind[k] = {"pairs": int(rows.sum()), "accuracy": rmod.pairwise_accuracy(chosen[rows], rejected[rows])}

    base, base_tokenizer = load_policy(args.base)
    problems = assistant_problems(args.n_norm, seed=7, split="train")
    torch.manual_seed(0)
    samples = generate(base, base_tokenizer, [make_prompt(p) for p in problems], max_new_tokens=128).completions
    mean, std = rmod.fit_normalization(rm, tokenizer, [make_prompt(p) for p in problems], samples)

    def scorer(prompts, responses):
        return rmod.score(rm, tokenizer, prompts, responses).tolist()

    metrics = {
        "config": {**dataclasses.asdict(config), "checkpoint_dir": ""},
        "train_pairs": len(train), "test_pairs": len(test),
        "accuracy": rmod.pairwise_accuracy(chosen, rejected),
        "ceiling": label_ceiling([(p["gold_chosen"], p["gold_rejected"]) for p in test]),
        "accuracy_by_pair": by_kind,
        "curve": {"test_pairs": min(CURVE_PAIRS, len(test)),
                  "points": [{"pairs": (h["step"] + 1) * config.batch_size, "accuracy": h["eval/accuracy"]}
                             for h in history if "eval/accuracy" in h]},
        "final_loss": history[-1]["loss"], "build_seconds": round(history[-1]["seconds"], 1),
        "normalization": {"samples": len(samples), "mean": mean, "std": std},
        "probes": probe_table(scorer, assistant_problems(args.n_probe, seed=1234, split="eval")),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    rm.save_pretrained(args.out, safe_serialization=True)
    tokenizer.save_pretrained(args.out)
    (args.out / "rm_metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    shutil.rmtree(args.out / "checkpoint", ignore_errors=True)
    print(json.dumps({k: metrics[k] for k in ("accuracy", "ceiling", "accuracy_by_pair")}, indent=1))


if __name__ == "__main__":
    main()
