"""Build the assistant base of the RLHF track into rlllm_course/data/assistant-base (20-30 minutes on one core).

    python scripts/build_assistant_model.py
    python scripts/build_assistant_model.py --steps 50 --out /tmp/ab   # a quick trial

Pretrains a from-scratch Llama on the mixture of ``rlllm_course.rlhf.pretrain``, then
writes the weights, config, tokenizer and base_metrics.json: the gold reward and the
parts of its responses on held-out questions, sampled (temperature 1) and greedy.
Deterministic for a given seed, torch version and thread count; an interrupted build
resumes from its checkpoint in ``--out``/checkpoint.
"""

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import torch
import transformers

from rlllm_course.llm.model import DATA_DIR
from rlllm_course.rlhf.assistant_task import assistant_problems
from rlllm_course.rlhf.evaluate import gold_figures
from rlllm_course.rlhf.pretrain import AssistantPretrainConfig, build_assistant_tokenizer, pretrain_assistant

EVAL_SEED = 1234  # the held-out questions the RLHF track's figures are measured on


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR / "assistant-base")
    parser.add_argument("--seed", type=int, default=AssistantPretrainConfig.seed)
    parser.add_argument("--steps", type=int, default=AssistantPretrainConfig.steps)
    parser.add_argument("--n-eval", type=int, default=400, help="held-out questions")
    args = parser.parse_args()

    config = AssistantPretrainConfig(seed=args.seed, steps=args.steps)
    tokenizer = build_assistant_tokenizer()
    model, history = pretrain_assistant(tokenizer, config, checkpoint_dir=args.out / "checkpoint")
    args.out.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(args.out, safe_serialization=True)
    tokenizer.save_pretrained(args.out)

    problems = assistant_problems(args.n_eval, EVAL_SEED, split="eval")
    torch.manual_seed(0)
    figures = {"sampled": gold_figures(model, tokenizer, problems, n_samples=4),
               "greedy": gold_figures(model, tokenizer, problems, greedy=True)}
    for f in figures.values():
        examples = f.pop("completions")[:8]
        f["examples"] = examples
    metrics = {"config": dataclasses.asdict(config), "steps": len(history),
               "final_loss": round(history[-1]["loss"], 4), "build_seconds": round(history[-1]["seconds"], 1),
               "eval_questions": args.n_eval, "eval_seed": EVAL_SEED, **figures,
               "versions": {"torch": torch.__version__, "transformers": transformers.__version__}}
    (args.out / "base_metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    shutil.rmtree(args.out / "checkpoint", ignore_errors=True)
    print(json.dumps({k: figures[k]["gold"] for k in figures}), figures["sampled"]["kinds"])


if __name__ == "__main__":
    main()
