"""Build and ship the R1 pipeline of module 10 (about 35 minutes on one core, all stages).

    python scripts/build_r1_pipeline.py                          # every stage, in order
    python scripts/build_r1_pipeline.py --stages teacher rs-sft  # some of them

Stages (each saves under ``rlllm_course/data/`` and can be rerun on its own):
- ``cold-start``: SFT of the reasoning base on the curated CoTs -> model ``r1-cold-start``;
- ``reasoning-rl``: R1's reasoning RL from there -> run ``r1-cold-start-rl`` (as
  ``build_reasoning_runs.py --runs r1-cold-start-rl``);
- ``seeds``: cold start + reasoning RL and R1-Zero + consistency at seeds 1 and 2 (seed 0
  is the shipped runs), their held-out curves -> ``r1-pipeline/seeds.json``;
- ``teacher``: 8 samples for each of 2048 training prompts from ``r1-cold-start-rl``
  -> ``r1-pipeline/teacher_samples.json``;
- ``rs-sft``: a fresh base fine-tuned on the kept samples -> model ``r1-rs-sft``;
- ``distillation``: at seeds 0, 1, 2 the small student fine-tuned on the same samples and
  the small student trained by R1-Zero's RL for the same wall time -> models
  ``r1-distill-small`` and ``r1-zero-small`` (seed 0), ``r1-pipeline/distillation.json``.
"""

import argparse
import dataclasses
import json
import time

import torch

from rlllm_course.llm.model import DATA_DIR, load_policy
from rlllm_course.llm.sft import SFTConfig, train_sft
from rlllm_course.reasoning import pipeline_study as study
from rlllm_course.reasoning import r1_pipeline
from rlllm_course.reasoning.r1_zero import RUNS, load_run, r1_zero_config, run_figures, train_run
from rlllm_course.reasoning.tasks import reasoning_problems

N_TEACHER_PROMPTS, N_SAMPLES = 2048, 8
SEEDS = (0, 1, 2)
RS_SFT = SFTConfig(epochs=1.0, batch_size=32, lr=3e-4, warmup_steps=10)  # a fresh base, as the cold start


def save(model, tokenizer, name, run):
    out = DATA_DIR / name
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "run.json").write_text(json.dumps(run, indent=1) + "\n")
    print(name, json.dumps(run["eval"]["overall"]))


def write_figures(name, figures):
    r1_pipeline.FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    (r1_pipeline.FIGURES_DIR / f"{name}.json").write_text(json.dumps(figures, ensure_ascii=False) + "\n")


def sft_run(model, tokenizer, history, config, examples):
    """The run.json of an SFT stage."""
    return {"config": dataclasses.asdict(config), "examples": examples, "steps": len(history),
            "train_seconds": round(history[-1]["seconds"], 1), "eval": run_figures(model, tokenizer),
            "versions": {"torch": torch.__version__}}


def stage_cold_start():
    model, tokenizer, history = r1_pipeline.cold_start(0)
    save(model, tokenizer, "r1-cold-start",
         sft_run(model, tokenizer, history, r1_pipeline.cold_start_config(0), r1_pipeline.COLD_START_N))


def stage_reasoning_rl():
    train_run(r1_zero_config(**RUNS["r1-cold-start-rl"]), DATA_DIR / "r1-cold-start-rl")


def stage_seeds():
    base, tokenizer = load_policy("reasoning")
    evaluate = study.curve_evaluator()
    base_point = evaluate(base, tokenizer)
    cold = evaluate(load_policy("r1-cold-start")[0], tokenizer)
    out = {"base": base_point, "r1-zero-consistency": {"0": study.curve(load_run("r1-zero-consistency")[0], base_point)},
           "cold-start": {"0": cold}, "r1-cold-start-rl": {"0": study.curve(load_run("r1-cold-start-rl")[0], cold)}}
    for seed in SEEDS[1:]:
        curves = study.seed_curves(seed)
        for key, value in curves.items():
            out[key][str(seed)] = value
    write_figures("seeds", out)


def stage_teacher():
    teacher, tokenizer = load_policy("r1-cold-start-rl")
    problems = reasoning_problems(N_TEACHER_PROMPTS, seed=r1_pipeline.TEACHER_SEED, split="train")
    torch.manual_seed(0)
    start = time.time()
    completions, keep = r1_pipeline.rejection_sample(teacher, tokenizer, problems, n_samples=N_SAMPLES)
    write_figures("teacher_samples", {"teacher": "r1-cold-start-rl", "seed": r1_pipeline.TEACHER_SEED,
                                      "n_prompts": N_TEACHER_PROMPTS, "n_samples": N_SAMPLES,
                                      "seconds": round(time.time() - start, 1), "completions": completions})
    print(f"teacher: kept {keep.float().mean().item():.1%} of {len(completions)} samples")


def stage_rs_sft():
    prompts, responses, _ = study.distillation_pairs()
    model, tokenizer = load_policy("reasoning")
    history = train_sft(model, tokenizer, prompts, responses, RS_SFT, desc="rs-sft")
    save(model, tokenizer, "r1-rs-sft", sft_run(model, tokenizer, history, RS_SFT, len(prompts)))


def stage_distillation():
    out = {}
    for seed in SEEDS:
        student, tokenizer, figures = study.distillation_run(seed, DATA_DIR / "r1-zero-small" if seed == 0 else None)
        if seed == 0:
            save(student, tokenizer, "r1-distill-small", {
                "config": figures["sft_config"], "examples": figures["examples"], "steps": figures["sft_steps"],
                "train_seconds": figures["sft_seconds"], "eval": figures["distilled"],
                "versions": {"torch": torch.__version__}})
        out[str(seed)] = figures
        print(f"seed {seed}: RL {figures['rl']['overall']['pass@1']:.3f} in {figures['rl_seconds']} s, "
              f"distilled {figures['distilled']['overall']['pass@1']:.3f} in {figures['sft_seconds']} s")
    write_figures("distillation", out)


STAGES = {"cold-start": stage_cold_start, "reasoning-rl": stage_reasoning_rl, "seeds": stage_seeds,
          "teacher": stage_teacher, "rs-sft": stage_rs_sft, "distillation": stage_distillation}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=list(STAGES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.stages:
        STAGES[name]()


if __name__ == "__main__":
    main()
