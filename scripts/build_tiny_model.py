"""Build the course's tiny model into rlllm_course/data/tiny-arith (8-10 minutes on one core).

    python scripts/build_tiny_model.py            # the shipped model (seed 0)
    python scripts/build_tiny_model.py --steps 50 --out /tmp/tiny   # a quick trial

Writes model.safetensors, config.json, generation_config.json, the tokenizer
files and base_metrics.json (the base model's held-out figures and build time).
The result is deterministic for a given seed, torch version and thread count.
"""

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch
import transformers

from rlllm_course.llm.evaluate import evaluate
from rlllm_course.llm.model import SHIPPED_MODELS
from rlllm_course.llm.pretrain import PretrainConfig, pretrain
from rlllm_course.llm.tasks import addition_problems
from rlllm_course.llm.tokenizer import build_tokenizer

EVAL_SEED = 1234  # the held-out problems every figure of the course is measured on


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SHIPPED_MODELS["tiny"])
    parser.add_argument("--seed", type=int, default=PretrainConfig.seed)
    parser.add_argument("--steps", type=int, default=PretrainConfig.steps)
    parser.add_argument("--n-eval", type=int, default=500)
    args = parser.parse_args()

    config = PretrainConfig(seed=args.seed, steps=args.steps)
    tokenizer = build_tokenizer()
    start = time.time()
    model = pretrain(tokenizer, config)
    build_seconds = time.time() - start

    args.out.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(args.out, safe_serialization=True)
    tokenizer.save_pretrained(args.out)

    torch.manual_seed(0)
    problems = addition_problems(args.n_eval, seed=EVAL_SEED, split="eval")
    figures = evaluate(model, tokenizer, problems, n_samples=8, k=8)
    metrics = {
        "eval_problems": {"n": args.n_eval, "seed": EVAL_SEED, "split": "eval", "task": "addition"},
        "greedy": {k: round(figures[k], 4) for k in ("pass@1", "format", "length")},
        "sampled": {"temperature": 1.0, "n_samples": 8,
                    "pass@8": round(figures["pass@8"], 4),
                    "sample_accuracy": round(figures["sample_accuracy"], 4)},
        "parameters": sum(p.numel() for p in model.parameters()),
        "build_seconds": round(build_seconds, 1),
        "pretrain_config": dataclasses.asdict(config),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    (args.out / "base_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
