"""The ``rlllm-course`` command: ``release`` and ``grade`` (see course.py)."""

import argparse

from . import course


def main(argv=None):
    parser = argparse.ArgumentParser(prog="rlllm-course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="regenerate notebooks/ from solutions/")
    p.add_argument("assignments", nargs="*", help="NN_topic names (default: all)")
    p.add_argument("--out", help="release folder (default: notebooks/)")

    p = sub.add_parser("grade", help="autograde a folder of submissions into a CSV")
    p.add_argument("submitted", help="folder of <student_id>/<NN_topic>/<NN_topic>.ipynb")
    p.add_argument("--assignment", action="append", dest="assignments",
                   help="grade only this assignment (repeatable)")
    p.add_argument("--out", default="grades.csv", help="grades CSV (default: grades.csv)")
    p.add_argument("--workdir", default="grading",
                   help="nbgrader course folder for this grading (default: grading/)")
    p.add_argument("--timeout", type=int, default=600, help="seconds per cell (default: 600)")
    p.add_argument("--fast", action="store_true", help="run notebooks with RLLLM_FAST=1")
    p.add_argument("--jobs", type=int, default=1, help="notebooks graded at once (default: 1)")

    args = parser.parse_args(argv)
    if args.command == "release":
        out = course.release(args.out, args.assignments or None)
        print(f"released into {out}")
    else:
        rows = course.grade(args.submitted, args.out, args.workdir, args.assignments,
                            args.timeout, args.fast, args.jobs)
        for row in rows:
            note = f"  ({row['problem']})" if row["problem"] else ""
            print(f"{row['student_id']:>16} {row['assignment']:<24} "
                  f"{float(row['score']):6.1f} / {float(row['max_score']):.1f}{note}")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
