"""Execution time and peak memory of every solution notebook, FAST and full.

    python benchmarks/notebooks.py [NN_topic ...] [--fast-only]

Runs each notebook in a fresh kernel (as a student's "Run All" or a default
`nbgrader autograde` would) and prints seconds per notebook and the kernel's
peak resident memory (RSS) of the full run: Binder gives a notebook about 2 GB.
Binder's limit holds for the whole container, so the memory of every process the
kernel starts (Ray's raylet, GCS and worker actors in module 15) is summed too, as
proportional set size (PSS: shared pages, such as Ray's object store, counted once).
"""

import argparse
import os
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
BINDER_MEMORY_GB = 2.0
# Appended to each notebook: the kernel's own high-water mark (Linux reports KiB).
PEAK_RSS = "import resource\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def tree_pss_gb():
    """Summed PSS of every process below this one: the kernel and what it started."""
    total = 0
    for child in psutil.Process().children(recursive=True):
        try:
            total += child.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass  # a process that ended between the listing and the read
    return total / 2**30


def run(path, fast):
    """(seconds, peak RSS of the kernel, peak PSS of its process tree) in s and GB."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_RSS))
    os.environ["RLLLM_FAST"] = "1" if fast else "0"  # the kernel inherits it
    peak, done = [0.0], threading.Event()

    def sample():  # every half second while the notebook runs
        while not done.wait(0.5):
            peak[0] = max(peak[0], tree_pss_gb())

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        done.set()
        sampler.join()
    seconds = time.perf_counter() - start
    kib = int(nb.cells[-1].outputs[0]["text"].split()[0])
    return seconds, kib / 2**20, peak[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*")
    parser.add_argument("--fast-only", action="store_true")
    args = parser.parse_args()
    paths = sorted((ROOT / "solutions").glob("*/*.ipynb"))
    if args.names:
        paths = [p for p in paths if p.parent.name in args.names]
    print(f"{'notebook':<28} {'FAST (s)':>9} {'full (s)':>9} {'kernel RSS (GB)':>16} "
          f"{'all processes (GB)':>19}")
    over = []
    for path in paths:
        fast, rss, tree = run(path, fast=True)
        full = float("nan")
        if not args.fast_only:
            full, rss, tree = run(path, fast=False)
        over += [path.parent.name] if max(rss, tree) > BINDER_MEMORY_GB else []
        print(f"{path.parent.name:<28} {fast:9.1f} {full:9.1f} {rss:16.2f} {tree:19.2f}",
              flush=True)
    print(f"over Binder's {BINDER_MEMORY_GB:g} GB: {', '.join(over) or 'none'}")


if __name__ == "__main__":
    main()
