"""Write a course task as verl's parquet datasets (``scale.verl_data``), for a run on a GPU box.

    python scripts/verl_preprocess.py --task countdown --out ~/data/rlllm-countdown
    python scripts/verl_preprocess.py --task addition --train 20000 --test 500

Writes ``<out>/train.parquet`` and ``<out>/test.parquet`` (the held-out questions of the
course's split). ``scripts/verl_grpo.sh`` trains on them.
"""

import argparse
from pathlib import Path

from rlllm_course.llm.grpo import TASKS
from rlllm_course.scale.verl_data import write_parquet

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=sorted(TASKS), default="countdown")
    parser.add_argument("--train", type=int, default=20000, help="training problems")
    parser.add_argument("--test", type=int, default=500, help="held-out problems")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("~/data/rlllm").expanduser())
    args = parser.parse_args()
    make = TASKS[args.task]
    for split, n, which in (("train", args.train, "train"), ("test", args.test, "eval")):
        path = write_parquet(make(n, seed=args.seed, split=which), args.out / f"{split}.parquet", split)
        print(f"{n} {args.task} problems -> {path}")
