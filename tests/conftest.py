"""Shared fixtures: the course's assignments, a fresh release, and one grading run.

Grading is the slow part (each notebook runs in a kernel), so one session-wide
run grades every kind of submission the tests look at.
"""

import json
import os
from pathlib import Path

import pytest

from rlllm_course import course

ROOT = Path(__file__).resolve().parent.parent
# RLLLM_TEST_ASSIGNMENTS="00_rl_basics 01_q_learning" limits the notebook tests to some modules.
ASSIGNMENTS = os.environ.get("RLLLM_TEST_ASSIGNMENTS", "").split() or course.assignments()

# The tests run every notebook in FAST mode (small runs, same checks).
os.environ[course.FAST_ENV] = "1"


def read_nb(path):
    return json.loads(Path(path).read_text())


def write_nb(nb, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1))


def nbgrader_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def cell_by_id(nb, grade_id):
    return next(c for c in nb["cells"] if nbgrader_meta(c).get("grade_id") == grade_id)


def source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


@pytest.fixture(scope="session")
def release_dir(tmp_path_factory):
    """A release generated now from solutions/ (to compare with notebooks/)."""
    return course.release(tmp_path_factory.mktemp("release"))


def seed_cell_at(nb):
    """Index right after the parameters cell of a notebook (a dict), where a SEED override goes."""
    return 1 + next(i for i, c in enumerate(nb["cells"]) if "parameters" in c.get("metadata", {}).get("tags", []))


def solution(name):
    return read_nb(ROOT / "solutions" / name / f"{name}.ipynb")


def released(name):
    return read_nb(ROOT / "notebooks" / name / f"{name}.ipynb")



def save_random_llama(folder, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64):
    """A random Llama (seed 0) with the course's tokenizer, saved to `folder` as a model folder; the tokenizer."""
    import torch
    from transformers import LlamaForCausalLM
    from rlllm_course.llm.model import tiny_config
    from rlllm_course.llm.tokenizer import build_tokenizer
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(tiny_config(len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id,
                                         hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
                                         intermediate_size=intermediate_size))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return tokenizer


@pytest.fixture(scope="session")
def base_dir(tmp_path_factory):
    """A tiny random assistant LM saved like the shipped assistant base (config, weights, tokenizer)."""
    from rlllm_course.llm.model import new_model
    from rlllm_course.rlhf.pretrain import MAX_POSITIONS, AssistantPretrainConfig, build_assistant_tokenizer
    tokenizer = build_assistant_tokenizer()
    config = AssistantPretrainConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
    model = new_model(tokenizer, config, MAX_POSITIONS)
    folder = tmp_path_factory.mktemp("assistant-base")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def one_thread():
    """One torch thread, as the trainers use: on a busy machine two threads made the tiny models 80x slower."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
