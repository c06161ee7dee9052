"""Build and ship the Kimi k1.5 runs of module 11.

    python scripts/build_kimi_runs.py                     # every stage
    python scripts/build_kimi_runs.py --stages sampling   # some of them

Stages (each saves under ``rlllm_course/data/kimi/`` and can be rerun on its own):
- ``sampling``: R1-Zero with uniform, curriculum and prioritized sampling of a pool of
  training problems, seeds 0, 1, 2 (``reasoning.kimi_sampling``; about 3 minutes a run
  on one core, 9 runs) -> ``kimi/sampling/<strategy>-<seed>.json``. A run already
  saved is kept; an interrupted one resumes from its checkpoint.
- ``partial``: R1-Zero on partial rollouts (a budget of 16 tokens an iteration), stale
  segments excluded from the loss or trained on, seeds 0, 1, 2 (``reasoning.kimi_partial``;
  about 3 minutes a run, 6 runs) -> ``kimi/partial/<setting>-<seed>.json``.
- ``long-cot``: the long-CoT SFT of the reasoning base (``reasoning.long_cot``; about 30
  minutes, checkpointed) -> model ``kimi-long``;
- ``long2short``: from ``kimi-long``, per seed 0, 1, 2: model merging with ``r1-cold-start``
  over alpha (seed 0 only: it draws nothing), shortest rejection sampling + SFT, DPO, long2short
  RL and the length reward alone (``reasoning.kimi_long2short``; about 25 minutes a seed,
  resumed from ``runs/long2short-seed-<seed>/`` when interrupted)
  -> ``kimi/long2short/seed-<seed>.json``.
"""

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import torch

from rlllm_course.llm.model import DATA_DIR
from rlllm_course.reasoning import kimi_long2short as l2s
from rlllm_course.reasoning import kimi_partial, kimi_sampling, long_cot
from rlllm_course.reasoning.long_cot import MAX_NEW_TOKENS


def train_missing(study, names, train, report):
    """Train every (name, seed) run of `study` not saved yet (kimi_sampling or kimi_partial), in seed order."""
    study.RUNS_DIR.mkdir(parents=True, exist_ok=True)
    for seed in study.SEEDS:
        for name in names:
            out = study.run_path(name, seed)
            if not out.exists():
                print(name, seed, report(train(name, seed, out=out)))


def stage_sampling():
    train_missing(kimi_sampling, kimi_sampling.STRATEGIES, kimi_sampling.train_sampling_run,
                  lambda history: f"steps to 60% on level 5: {kimi_sampling.steps_to(history, 0.6)}")


def stage_partial():
    def final(history):
        last = [log for log in history if "eval/pass@1" in log][-1]
        return f"final held-out pass@1: {last['eval/pass@1']} ({last['seconds']:.0f} s)"
    train_missing(kimi_partial, kimi_partial.SETTINGS, kimi_partial.train_partial_run, final)


def stage_long_cot():
    out = DATA_DIR / "kimi-long"
    config = long_cot.long_cot_config(checkpoint_dir=str(out / "checkpoint"))
    model, tokenizer, history = long_cot.long_cot_sft(checkpoint_dir=config.checkpoint_dir)
    # trained on answers up to ~170 positions (the base's config says 128); RoPE has no table to outgrow
    model.config.max_position_embeddings = 256
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    run = {"config": dataclasses.asdict(dataclasses.replace(config, checkpoint_dir="")),
           "examples": long_cot.LONG_N, "steps": len(history), "train_seconds": round(history[-1]["seconds"], 1),
           "eval": l2s.figures(model, tokenizer),
           "versions": {"torch": torch.__version__}}
    (out / "run.json").write_text(json.dumps(run, indent=1) + "\n")
    shutil.rmtree(out / "checkpoint", ignore_errors=True)
    print("kimi-long", run["eval"]["pass@1"], run["eval"]["length"])


WORK_DIR = Path(__file__).resolve().parent.parent / "runs"  # git ignores it


def stage_long2short(seeds=l2s.SEEDS):
    l2s.FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        path = l2s.FIGURES_DIR / f"seed-{seed}.json"
        if path.exists():
            continue
        work = WORK_DIR / f"long2short-seed-{seed}"  # every finished part, and the checkpoints: a rerun resumes
        out = l2s.seed_figures(seed, merging=seed == 0, work_dir=work)
        path.write_text(json.dumps(out) + "\n")
        shutil.rmtree(work, ignore_errors=True)
        print(seed, {k: (v["pass@1"], v["length"]) for k, v in out.items() if isinstance(v, dict) and "pass@1" in v})


STAGES = {"sampling": stage_sampling, "partial": stage_partial, "long-cot": stage_long_cot,
          "long2short": stage_long2short}

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", nargs="+", choices=list(STAGES), default=list(STAGES))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(l2s.SEEDS),
                        help="long2short: the seeds to build (run several processes on several cores)")
    args = parser.parse_args()
    for stage in args.stages:
        STAGES[stage](args.seeds) if stage == "long2short" else STAGES[stage]()
