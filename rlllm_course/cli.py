"""The ``rlllm-course`` command: ``release`` and ``grade`` (see course.py), ``gpu-grpo`` (scale/gpu_run.py)."""

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

    p = sub.add_parser("gpu-grpo", help="timed GRPO steps of a local causal LM (a GPU box; module 15)")
    p.add_argument("--model", required=True, help="local folder of a causal LM (e.g. Qwen2.5-0.5B-Instruct)")
    p.add_argument("--steps", type=int, default=3, help="GRPO steps (default: 3)")
    p.add_argument("--device", help="cuda, cuda:1, cpu, ... (default: cuda when available, else cpu)")
    p.add_argument("--task", default="countdown", choices=("addition", "countdown", "reasoning"),
                   help="problems and rule reward (default: countdown)")
    p.add_argument("--prompts", type=int, default=8, help="prompts per step (default: 8)")
    p.add_argument("--group-size", type=int, default=8, help="completions per prompt, G (default: 8)")
    p.add_argument("--max-new-tokens", type=int, default=256, help="default: 256")
    p.add_argument("--lr", type=float, default=1e-6, help="AdamW learning rate (default: 1e-6, as verl_grpo.sh)")
    p.add_argument("--beta", type=float, default=0.001, help="k3 KL coefficient (default: 0.001, as verl_grpo.sh)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (default: on a GPU that supports it)")
    p.add_argument("--gradient-checkpointing", action="store_true",
                   help="recompute the layers' activations in the backward pass (less memory)")

    args = parser.parse_args(argv)
    if args.command == "gpu-grpo":
        from .llm.grpo import GRPOConfig  # imported here: release and grade need no torch
        from .scale.gpu_run import check_device, check_model_folder, gpu_grpo

        try:  # a clear usage error, not a traceback
            check_model_folder(args.model)
            check_device(args.device)
        except ValueError as error:
            parser.error(str(error))
        for name in ("steps", "prompts", "group_size", "max_new_tokens"):
            if getattr(args, name) < 1:
                parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
        config = GRPOConfig(model=args.model, device=args.device, task=args.task, seed=args.seed,
                            steps=args.steps, prompts_per_step=args.prompts, group_size=args.group_size,
                            max_new_tokens=args.max_new_tokens, lr=args.lr, beta=args.beta,
                            temperature=args.temperature)
        gpu_grpo(config, bf16=args.bf16, gradient_checkpointing=args.gradient_checkpointing)
    elif args.command == "release":
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
