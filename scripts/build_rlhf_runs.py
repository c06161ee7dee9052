"""Build and ship the RLHF runs of modules 13 and 14 (``rlhf.rlhf_runs``).

    python scripts/build_rlhf_runs.py                        # every run and seed, two at a time
    python scripts/build_rlhf_runs.py --runs grpo --seeds 0  # some of them
    python scripts/build_rlhf_runs.py --jobs 1               # one core

Each run (PPO and GRPO 3-5 minutes on one core, DPO 2-3) goes to
``rlllm_course/data/rlhf-runs/<name>-<seed>.json`` in a process of its own, so that its peak
RSS is its own; a run already saved is kept, an interrupted one resumes from its checkpoint.
``start.json`` (the base's held-out figures) and ``best-of-n.json`` (best-of-n on the same
questions, 32 samples each, about 2 minutes) are written first.
"""

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from rlllm_course.rlhf import rlhf_runs


def one(name, seed):
    """Train one run in this process (the child's side of main)."""
    out = rlhf_runs.run_path(name, seed)
    result = (rlhf_runs.train_dpo_run(seed, out=out, progress=False) if name == "dpo"
              else rlhf_runs.train_run(name, seed, out=out, progress=False))
    last = [log for log in result["history"] if "eval/gold" in log][-1]
    print(f"{name} seed {seed}: eval gold {last['eval/gold']:+.3f}, score {last['eval/score']:+.3f}, "
          f"{last['seconds']:.0f} s, peak {result['peak_rss_mb']:.0f} MB", flush=True)


def main(names, seeds, jobs):
    rlhf_runs.RUNS_DIR.mkdir(parents=True, exist_ok=True)
    start = rlhf_runs.RUNS_DIR / "start.json"
    if not start.exists():
        start.write_text(json.dumps(rlhf_runs.start_figures()) + "\n")
    bon = rlhf_runs.RUNS_DIR / "best-of-n.json"
    if not bon.exists():
        bon.write_text(json.dumps(rlhf_runs.best_of_n_figures()) + "\n")
    todo = [(n, s) for s in seeds for n in names if not rlhf_runs.run_path(n, s).exists()]
    command = lambda n, s: subprocess.run([sys.executable, __file__, "--one", n, str(s)], check=True)
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(lambda job: command(*job), todo))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", choices=list(rlhf_runs.NAMES), default=list(rlhf_runs.NAMES))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(rlhf_runs.SEEDS))
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one core each")
    parser.add_argument("--one", nargs=2, metavar=("NAME", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one[0], int(args.one[1]))
    else:
        main(args.runs, args.seeds, args.jobs)
