"""Execution time of every solution notebook, in FAST mode and in the full run.

    python benchmarks/notebooks.py [NN_topic ...] [--fast-only]

Runs each notebook in a fresh kernel (as a student's "Run All" or a default
`nbgrader autograde` would) and prints seconds per notebook.
"""

import argparse
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def run(path, fast):
    nb = nbformat.read(path, as_version=4)
    os.environ["RLLLM_FAST"] = "1" if fast else "0"  # the kernel inherits it
    start = time.perf_counter()
    NotebookClient(nb, timeout=1800, resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*")
    parser.add_argument("--fast-only", action="store_true")
    args = parser.parse_args()
    paths = sorted((ROOT / "solutions").glob("*/*.ipynb"))
    if args.names:
        paths = [p for p in paths if p.parent.name in args.names]
    print(f"{'notebook':<28} {'FAST (s)':>9} {'full (s)':>9}")
    for path in paths:
        fast = run(path, fast=True)
        full = float("nan") if args.fast_only else run(path, fast=False)
        print(f"{path.parent.name:<28} {fast:9.1f} {full:9.1f}", flush=True)


if __name__ == "__main__":
    main()
