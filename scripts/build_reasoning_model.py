"""Build the reasoning base (and its small sibling) into rlllm_course/data/ (about 25 minutes on one core).

    python scripts/build_reasoning_model.py                  # "reasoning": the base of modules 09-11
    python scripts/build_reasoning_model.py --size small     # "reasoning-small": the distillation student
    python scripts/build_reasoning_model.py --steps 50 --out /tmp/rb   # a quick trial

Both read the same pretraining mixture (``rlllm_course.reasoning.pretrain``); the
small one has about a fifth of the parameters. Writes the weights, config, tokenizer
and base_metrics.json (held-out figures per level, reflection and mixing rates,
build time). Deterministic for a given seed, torch version and thread count; an
interrupted build resumes from its checkpoint in ``--out``/checkpoint.
"""

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

import torch
import transformers

from rlllm_course.llm.model import SHIPPED_MODELS
from rlllm_course.reasoning.evaluate import evaluate_levels
from rlllm_course.reasoning.pretrain import ReasoningPretrainConfig, build_reasoning_tokenizer, pretrain_reasoning
from rlllm_course.reasoning.tasks import levelled_eval_set

EVAL_SEED = 1234  # the held-out problems every figure of the reasoning track is measured on
SIZES = {"base": {}, "small": {"hidden_size": 64, "intermediate_size": 192}}
NAMES = {"base": "reasoning", "small": "reasoning-small"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="base")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=ReasoningPretrainConfig.seed)
    parser.add_argument("--steps", type=int, default=ReasoningPretrainConfig.steps)
    parser.add_argument("--n-eval", type=int, default=100, help="held-out problems per level")
    args = parser.parse_args()
    out = args.out or SHIPPED_MODELS[NAMES[args.size]]

    config = ReasoningPretrainConfig(seed=args.seed, steps=args.steps, **SIZES[args.size])
    tokenizer = build_reasoning_tokenizer()
    start = time.time()
    model, history = pretrain_reasoning(tokenizer, config, checkpoint_dir=out / "checkpoint")
    build_seconds = history[-1]["seconds"]

    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)

    torch.manual_seed(0)
    figures = evaluate_levels(model, tokenizer, levelled_eval_set(args.n_eval, EVAL_SEED))
    rounded = {k: {m: round(v, 4) for m, v in f.items()} for k, f in
               [("overall", figures["overall"])] + [(f"level_{d}", f) for d, f in figures["levels"].items()]}
    metrics = {
        "eval_problems": {"per_level": args.n_eval, "seed": EVAL_SEED, "split": "eval",
                          "task": "addition", "levels": sorted(figures["levels"])},
        "sampling": {"temperature": 1.0, "n_samples": 8, "max_new_tokens": 96},
        **rounded,
        "final_loss": round(sum(h["loss"] for h in history[-50:]) / len(history[-50:]), 4),
        "parameters": sum(p.numel() for p in model.parameters()),
        "build_seconds": round(build_seconds, 1),
        "pretrain_config": dataclasses.asdict(config),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    (out / "base_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    shutil.rmtree(out / "checkpoint", ignore_errors=True)
    print(json.dumps(metrics, indent=2), f"\ntotal {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
