"""Execution time and peak memory of every solution notebook, FAST and full.

    python benchmarks/notebooks.py [NN_topic ...] [--fast-only]

Runs each notebook in a fresh kernel (as a student's "Run All" or a default
`nbgrader autograde` would) and prints seconds per notebook and the kernel's
peak resident memory (RSS) of the full run: Binder gives a notebook about 2 GB.
"""

import argparse
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
BINDER_MEMORY_GB = 2.0
# Appended to each notebook: the kernel's own high-water mark (Linux reports KiB).
PEAK_RSS = "import resource\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def run(path, fast):
    """(seconds, peak RSS in GB of the kernel) of one Run All of `path`."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_RSS))
    os.environ["RLLLM_FAST"] = "1" if fast else "0"  # the kernel inherits it
    start = time.perf_counter()
    NotebookClient(nb, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    kib = int(nb.cells[-1].outputs[0]["text"].split()[0])
    return seconds, kib / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*")
    parser.add_argument("--fast-only", action="store_true")
    args = parser.parse_args()
    paths = sorted((ROOT / "solutions").glob("*/*.ipynb"))
    if args.names:
        paths = [p for p in paths if p.parent.name in args.names]
    print(f"{'notebook':<28} {'FAST (s)':>9} {'full (s)':>9} {'peak RSS (GB)':>14}")
    over = []
    for path in paths:
        fast, rss = run(path, fast=True)
        full = float("nan")
        if not args.fast_only:
            full, rss = run(path, fast=False)
        over += [path.parent.name] if rss > BINDER_MEMORY_GB else []
        print(f"{path.parent.name:<28} {fast:9.1f} {full:9.1f} {rss:14.2f}", flush=True)
    print(f"over Binder's {BINDER_MEMORY_GB:g} GB: {', '.join(over) or 'none'}")


if __name__ == "__main__":
    main()
