"""The course's tasks as verl datasets (verl 0.9.x; lecture §5).

verl's PPO/GRPO trainer (``python -m verl.trainer.main_ppo``) reads parquet files whose rows
look like those its own ``examples/data_preprocess/*.py`` scripts write:

    {"data_source": "rlllm_course/addition",                 # picks the reward function
     "prompt": [{"role": "user", "content": "..."}],        # a chat, templated by the model's tokenizer
     "ability": "math",
     "reward_model": {"style": "rule", "ground_truth": "..."},  # what the reward function checks against
     "extra_info": {"split": "train", "index": 0, ...}}

A course problem (``llm.tasks``: addition, Countdown; ``reasoning.tasks``) becomes one row:
the R1-Zero instruction and the question as the user's message (an instruct model brings its
own chat template, so the course's plain-text template is not used), the problem's checkable
fields as a JSON ground truth (``verl_reward.compute_score`` reads it back).
"""

import json
from pathlib import Path

DATA_SOURCE = "rlllm_course/{task}"
INSTRUCTION = ("Solve the problem. First think about the reasoning process, then give the answer. "
               "Enclose the reasoning in <think> </think> and the answer in <answer> </answer> tags, "
               "i.e. <think> reasoning here </think> <answer> answer here </answer>.")
PROBLEM_TEXT = {"addition": "What is {question}?",
                "countdown": "Using the numbers {numbers}, each exactly once, and + - * / and parentheses, "
                             "write an expression equal to {target}."}
CHECKED_FIELDS = {"addition": ("task", "answer"), "countdown": ("task", "numbers", "target")}


def ground_truth(problem):
    """The fields of `problem` its rule checks (``tasks.check_answer``), as a JSON string."""
    task = problem.get("task", "addition")
    if task not in CHECKED_FIELDS:
        raise ValueError(f"problem['task'] must be one of {sorted(CHECKED_FIELDS)}, got {task!r}")
    return json.dumps({key: problem[key] if key != "task" else task for key in CHECKED_FIELDS[task]})


def verl_row(problem, index, split):
    """One row of verl's dataset schema for a course `problem` (module docstring)."""
    ground = ground_truth(problem)  # checks the task first
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test' (verl's file names), got {split!r}")
    task = problem.get("task", "addition")
    fields = {**problem, "numbers": ", ".join(map(str, problem.get("numbers", ())))}  # "9, 8, 7", not a list
    question = PROBLEM_TEXT[task].format(**fields)
    return {"data_source": DATA_SOURCE.format(task=task),
            "prompt": [{"role": "user", "content": f"{INSTRUCTION}\n{question}"}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": ground},
            "extra_info": {"split": split, "index": index, "question": problem["question"]}}


def write_parquet(problems, path, split):
    """Write `problems` as verl rows to the parquet file `path` (``datasets``' writer); returns the path."""
    from datasets import Dataset  # imported here: only the preprocessing needs it

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list([verl_row(p, i, split) for i, p in enumerate(problems)]).to_parquet(str(path))
    return path
