"""Build the Binder environment the way repo2docker does, then run a notebook in it.

    python benchmarks/binder_build.py [NN_topic] [--keep DIR]

repo2docker makes a fresh environment of the Python in ``binder/runtime.txt``,
installs ``binder/requirements.txt``, then runs ``binder/postBuild`` from the
repository root. This script does the same in a new venv, prints the install
time, checks the student lab configuration landed, and runs one solution
notebook (full run, default 08_grpo) with the venv's own kernel, printing its
seconds and peak RSS against Binder's 2 GB.

Where the CPU wheel index named in requirements.txt cannot be reached, the
pinned torch is taken from the default index at the same version (the CPU
build where pip is set up with one); everything else is installed as listed.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"


def reachable(url):
    try:
        urllib.request.urlopen(url, timeout=10)
        return True
    except OSError:
        return False


def requirements(out):
    """binder/requirements.txt, with torch from the default index if the CPU index is unreachable."""
    text = (BINDER / "requirements.txt").read_text()
    index = re.search(r"^--extra-index-url\s+(\S+)", text, re.M)
    if index and not reachable(index.group(1)):
        print("the CPU wheel index is unreachable: torch comes from the default index")
        text = re.sub(r"^--extra-index-url.*$", "", text, flags=re.M)
        text = re.sub(r"^torch==([\d.]+)\+cpu", r"torch==\1", text, flags=re.M)
    out.write_text(text)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebook", nargs="?", default="08_grpo")
    parser.add_argument("--keep", help="build the venv in this folder and keep it")
    args = parser.parse_args()
    runtime = (BINDER / "runtime.txt").read_text().strip()  # e.g. python-3.11
    if not f"python-{sys.version_info.major}.{sys.version_info.minor}".startswith(runtime):
        print(f"warning: binder/runtime.txt asks for {runtime}, this is Python {sys.version.split()[0]}")

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(args.keep or tmp)
        env_dir = home / "env"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
        py = env_dir / "bin" / "python"
        subprocess.run([py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
        subprocess.run([py, "-m", "pip", "install", "--quiet", "-r",
                        str(requirements(home / "requirements.txt"))], check=True)
        path = dict(os.environ, PATH=f"{env_dir / 'bin'}{os.pathsep}{os.environ['PATH']}")
        subprocess.run(["bash", str(BINDER / "postBuild")], cwd=ROOT, env=path, check=True)
        install = time.perf_counter() - start
        print(f"install (venv, requirements.txt, postBuild): {install:.0f} s")

        page_config = env_dir / "etc" / "jupyter" / "labconfig" / "page_config.json"
        print(f"student lab configuration installed: {page_config.is_file()}")
        done = subprocess.run([py, str(ROOT / "benchmarks" / "notebooks.py"), args.notebook],
                              env=path, capture_output=True, text=True)
        print(done.stdout, done.stderr[-2000:] if done.returncode else "", sep="")
        sys.exit(done.returncode)


if __name__ == "__main__":
    main()
