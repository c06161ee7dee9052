"""Train and ship the reasoning track's reference runs (a few minutes each on one core).

    python scripts/build_reasoning_runs.py                 # every run below
    python scripts/build_reasoning_runs.py --runs r1-zero  # one of them

- ``r1-zero``: GRPO from the reasoning base with accuracy + format (module 09);
- ``r1-zero-consistency``: the same with R1's language-consistency reward added;
- ``r1-cold-start-rl``: R1's reasoning RL (with the consistency reward) from the cold start
  (module 10; ``scripts/build_r1_pipeline.py --stages cold-start`` builds that first);
- ``r1-zero-small``: R1-Zero on the small student (module 10's distillation comparison).

Each is saved as a model folder under ``rlllm_course/data/`` (loadable by name with
``load_policy``) holding ``history.json`` (the run's per-step log, its sampled
completions included) and ``run.json`` (config, seconds, held-out figures per level).
An interrupted run resumes from its checkpoint.
"""

import argparse
import json

from rlllm_course.llm.model import DATA_DIR, SHIPPED_MODELS
from rlllm_course.reasoning.r1_zero import RUNS, r1_zero_config, train_run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--n-eval", type=int, default=100, help="held-out problems per level")
    args = parser.parse_args()
    for name in args.runs:
        out = SHIPPED_MODELS.get(name, DATA_DIR / name)
        *_, run = train_run(r1_zero_config(**RUNS[name]), out, args.n_eval)
        print(name, json.dumps(run["eval"]["levels"]), f"{run['train_seconds']} s")


if __name__ == "__main__":
    main()
