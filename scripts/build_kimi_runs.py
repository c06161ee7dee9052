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
"""

import argparse

from rlllm_course.reasoning import kimi_partial, kimi_sampling


def stage_sampling():
    kimi_sampling.RUNS_DIR.mkdir(parents=True, exist_ok=True)
    for seed in kimi_sampling.SEEDS:
        for strategy in kimi_sampling.STRATEGIES:
            out = kimi_sampling.run_path(strategy, seed)
            if out.exists():
                continue
            history = kimi_sampling.train_sampling_run(strategy, seed, out=out)
            print(strategy, seed, "steps to 60% on level 5:", kimi_sampling.steps_to(history, 0.6))


def stage_partial():
    kimi_partial.RUNS_DIR.mkdir(parents=True, exist_ok=True)
    for seed in kimi_partial.SEEDS:
        for setting in kimi_partial.SETTINGS:
            out = kimi_partial.run_path(setting, seed)
            if out.exists():
                continue
            history = kimi_partial.train_partial_run(setting, seed, out=out)
            last = [log for log in history if "eval/pass@1" in log][-1]
            print(setting, seed, "final held-out pass@1:", last["eval/pass@1"], f"{last['seconds']:.0f} s")


STAGES = {"sampling": stage_sampling, "partial": stage_partial}

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", nargs="+", choices=list(STAGES), default=list(STAGES))
    for stage in parser.parse_args().stages:
        STAGES[stage]()
