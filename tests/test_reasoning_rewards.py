import pytest

from rlllm_course.llm.rewards import accuracy_reward
from rlllm_course.reasoning.evaluate import pass_at_1_by_level
from rlllm_course.reasoning.rewards import (has_reflection, notation, reflection_rate,
                                            substring_accuracy_reward)

P = {"task": "addition", "question": "4785+3561", "answer": "8346", "level": 4}


@pytest.mark.parametrize("text, expected", [
    ("<think>7+5=12 wait 7+5+1=13</think><answer>8346</answer>", True),
    ("<think>7+5+1=13,wait,4+3+1=8</think><answer>8346</answer>", True),  # comma-separated word
    ("<think>7+5+1=13</think><answer>8346</answer>", False),
    ("<think>7+5+1=13</think><answer>wait</answer>", False),  # outside the CoT
    ("7+5=12 wait 7+5+1=13 8346", False),  # no think block
    ("<think></think><answer>8346</answer>", False),  # empty CoT
    ("<think>awaiting 7+5=12</think>", False),  # a word, not a substring
    ("<think>7+5=12 wait</think><think>x</think>", True),  # first block only
])
def test_has_reflection(text, expected):
    assert has_reflection(text) is expected


def test_reflection_rate():
    texts = ["<think>1 wait 2</think>", "<think>1</think>", "", "<think>wait</think>"]
    assert reflection_rate(texts) == 0.5
    assert reflection_rate([]) == 0.0
    with pytest.raises(ValueError, match="completions"):
        reflection_rate("<think>wait</think>")


@pytest.mark.parametrize("text, expected", [
    ("<think>5+1=6,8+6=14</think><answer>8346</answer>", "arabic"),
    ("<think>五+一=六,八+六=一四</think>", "chinese"),
    ("<think>5+1=6,八+六=一四</think>", "mixed"),
    ("<think>5+1=6 wait 五+一=六</think>", "mixed"),
    ("<think>wait</think>", "none"),
    ("no tags 5+1=6", "none"),
])
def test_notation(text, expected):
    assert notation(text) == expected


def test_substring_reward_is_fooled_where_the_strict_one_is_not():
    hacks = ["<answer>8346 8345 8347</answer>", "<think>8346</think><answer></answer>",
             "<answer>18346</answer>"]
    problems = [P] * len(hacks)
    assert substring_accuracy_reward(hacks, problems).tolist() == [1.0, 1.0, 1.0]
    assert accuracy_reward(hacks, problems).tolist() == [0.0, 0.0, 0.0]
    honest = ["<answer>8346</answer>", "<answer>8345</answer>"]
    assert substring_accuracy_reward(honest, [P, P]).tolist() == accuracy_reward(honest, [P, P]).tolist()
    with pytest.raises(ValueError, match="one entry per completion"):
        substring_accuracy_reward(honest, [P])


def test_pass_at_1_by_level():
    assert pass_at_1_by_level([1, 0, 1, 1, 0], [5, 5, 2, 2, 3]) == {2: 1.0, 3: 0.0, 5: 0.5}
    with pytest.raises(ValueError, match="same length"):
        pass_at_1_by_level([1], [2, 3])
