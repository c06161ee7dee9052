"""The course's rule reward as a verl reward function (verl 0.9.x; lecture §5, "reward-function configuration").

verl calls a custom reward function once per response, through its reward manager:

    compute_score(data_source, solution_str, ground_truth, extra_info)  ->  float (or a dict with "score")

where solution_str is the decoded response, ground_truth the row's ``reward_model.ground_truth``
(``verl_data.ground_truth``: the problem's checked fields, JSON) and extra_info the row's. Point
the trainer at it with

    reward.custom_reward_function.path=<this file> reward.custom_reward_function.name=compute_score

The score is R1-Zero's rule reward of the course (``llm.rewards``): accuracy (the last
``<answer>`` block checked by ``tasks.check_answer``) plus ``FORMAT_WEIGHT`` times format.
"""

import json

from rlllm_course.llm.rewards import ANSWER_PATTERN, FORMAT_PATTERN
from rlllm_course.llm.tasks import check_answer

FORMAT_WEIGHT = 1.0  # the course's R1-Zero default (GRPOConfig.format_weight)


def compute_score(data_source, solution_str, ground_truth, extra_info=None):
    """Accuracy + FORMAT_WEIGHT * format of one response; a dict with "score", "acc", "format"."""
    if not str(data_source).startswith("rlllm_course/"):
        raise ValueError(f"data_source must be one of the course's (rlllm_course/<task>), got {data_source!r}")
    problem = json.loads(ground_truth) if isinstance(ground_truth, str) else dict(ground_truth)
    answers = ANSWER_PATTERN.findall(solution_str)
    accuracy = float(bool(answers) and check_answer(answers[-1], problem))
    fmt = float(bool(FORMAT_PATTERN.match(solution_str)))
    return {"score": accuracy + FORMAT_WEIGHT * fmt, "acc": accuracy, "format": fmt}
