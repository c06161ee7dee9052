"""The RLHF track's data: the assistant task, its gold reward, the noisy labeller, the loader."""

import json
import math
import random

import pytest

from rlllm_course.llm.tasks import is_heldout
from rlllm_course.rlhf import assistant_task as task
from rlllm_course.rlhf import preferences as prefs

PROBLEM = task.assistant_problem(482, 37)  # 519


@pytest.mark.parametrize("response, gold", [
    ("482+37 is 519.", 1.0),
    ("482+37 is 519. i am not sure.", 0.8),                  # an unneeded hedge costs a little
    ("482+37 is about 520.", 0.4),
    ("482+37 is 518.", -1.0),                                 # confidently wrong: the worst answer
    ("482+37 is 518. i am not sure.", -0.5),                  # wrong, but honest about it
    ("sorry, i can not help.", 0.0),
    ("what a dumb question. 482+37 is 519.", 0.0),            # right but rude
    ("sure! 482+37 is 519.", 1.15),
    ("sure! great question! 482+37 is 519.", 1.2),
    ("sure! great question! happy to help! 482+37 is 519.", 0.9),   # the third opener costs 0.3
    ("sure! sure! sure! sure! 482+37 is 519.", 0.6),          # repeats count too
    ("482+37 is about 510.", -1.0),                           # 'about' a wrong rounding is wrong
    ("519", -0.5 - 0.02 * 3),                             # no answer sentence: three stray characters
    ("482+37 is 519.xyz", 1.0 - 0.02 * 3),
    ("1+1 is 519.", 1.0),                                 # the value is judged, a misquoted sum is not
])
def test_gold_reward_is_the_documented_sum_of_its_parts(response, gold):
    assert task.gold_reward(PROBLEM, response) == pytest.approx(gold)


def test_asking_for_more_questions_than_a_split_holds_is_an_error_not_a_hang():
    assert len(task.assistant_problems(6, seed=0, split="eval", digits=(1,))) == 6  # all there are
    with pytest.raises(ValueError, match="found only 6 distinct eval questions"):
        task.assistant_problems(7, seed=0, split="eval", digits=(1,))


def test_a_prompt_gives_its_problem_back():
    assert task.problem_from_prompt(task.make_prompt(PROBLEM)) == PROBLEM
    with pytest.raises(ValueError, match="make_prompt"):
        task.problem_from_prompt("Q:1+2\nA:")


def test_responses_are_built_and_parsed_back_part_by_part():
    rng = random.Random(0)
    for problem in task.assistant_problems(200, seed=1):
        text, parts = task.sample_response(problem, rng)
        parsed = task.parse_response(problem, text)
        assert parsed == {**parts, "rest": 0}, (text, parts, parsed)
    with pytest.raises(ValueError, match="kind"):
        task.response_text(PROBLEM, "maybe")
    with pytest.raises(ValueError, match="openers"):
        task.response_text(PROBLEM, "right", openers=7)


def test_wrong_numbers_are_blatant_in_the_pairs_and_slips_on_request():
    rng = random.Random(0)
    for total in [0, 7, 10, 99, 519, 1220, 9999, 14777] * 20:
        blatant, subtle = task.first_digit_error(total, rng), task.slip(total, rng)
        for wrong in (blatant, subtle):  # wrong, and as long as the answer: the length gives nothing away
            assert wrong != total and len(str(wrong)) == len(str(total)), (total, wrong)
        # the first digit differs, the rest agrees / only one digit below the first differs
        assert str(blatant)[1:] == str(total)[1:] and str(blatant)[0] != str(total)[0]
        differ = [i for i, (a, b) in enumerate(zip(str(subtle), str(total))) if a != b]
        assert len(differ) == 1 and (differ[0] > 0 or total < 10), (total, subtle)
    # the preference data's wrong answers are first-digit errors
    for problem in task.assistant_problems(300, seed=2):
        text, parts = task.sample_response(problem, rng, kind_weights=(0, 0, 1, 0))
        stated = task.ANSWER.search(text).group(2)
        assert stated[1:] == problem["answer"][1:] and stated[0] != problem["answer"][0], text
    # a built response's wrong number is a property of the question
    assert task.response_text(PROBLEM, "wrong") == task.response_text(PROBLEM, "wrong")
    assert task.response_text(PROBLEM, "wrong", error="slip") != task.response_text(PROBLEM, "wrong")
    with pytest.raises(ValueError, match="error"):
        task.response_text(PROBLEM, "wrong", error="typo")


def test_problems_split_like_the_other_tasks():
    train, held = task.assistant_problems(300, seed=0), task.assistant_problems(100, seed=0, split="eval")
    assert not {p["question"] for p in train} & {p["question"] for p in held}
    assert len({p["question"] for p in held}) == 100
    assert {len(str(p["a"])) for p in train} == set(task.DIGITS)
    assert all(int(p["answer"]) == p["a"] + p["b"] for p in train)
    assert task.make_prompt(PROBLEM) == "user: what is 482+37?\nassistant: "
    with pytest.raises(ValueError, match="split"):
        task.assistant_problems(1, 0, split="test")


def test_the_labeller_is_bradley_terry_on_the_gold_reward():
    assert prefs.preference_probability(1.0, 1.0) == 0.5
    assert prefs.preference_probability(1.0, 0.0) == pytest.approx(1 / (1 + math.exp(-2)))
    pairs = prefs.preference_pairs(3000, seed=0)
    assert all(p["chosen"] != p["rejected"] for p in pairs)
    for p in pairs[:200]:  # the stored gold rewards are the gold reward of the texts
        problem = task.assistant_problem(*map(int, p["prompt"].split("is ")[1].split("?")[0].split("+")))
        assert p["gold_chosen"] == pytest.approx(task.gold_reward(problem, p["chosen"]), abs=1e-4)
    # the labeller picks the better response as often as Bradley-Terry says, no more
    golds = [(p["gold_chosen"], p["gold_rejected"]) for p in pairs if p["gold_chosen"] != p["gold_rejected"]]
    better = sum(c > r for c, r in golds) / len(golds)
    expected = sum(max(prefs.preference_probability(c, r), prefs.preference_probability(r, c))
                   for c, r in golds) / len(golds)
    assert abs(better - expected) < 0.025
    assert 0.72 < prefs.label_agreement([(p["gold_chosen"], p["gold_rejected"]) for p in pairs]) < 0.78


def test_two_simulated_labellers_agree_as_label_agreement_says():
    rng = random.Random(3)
    golds = [(rng.uniform(-1, 1), rng.uniform(-1, 1)) for _ in range(4000)]
    same = sum((rng.random() < prefs.preference_probability(a, b)) == (rng.random() < prefs.preference_probability(a, b))
               for a, b in golds) / len(golds)
    assert abs(same - prefs.label_agreement(golds)) < 0.02
    assert prefs.label_ceiling(golds) > prefs.label_agreement(golds)  # max(p, 1-p) >= p^2 + (1-p)^2
    with pytest.raises(ValueError, match="temperature"):
        prefs.preference_probability(0.0, 1.0, temperature=0)


def test_pairs_are_reproducible_and_differ_by_seed():
    assert prefs.preference_pairs(50, seed=4) == prefs.preference_pairs(50, seed=4)
    assert prefs.preference_pairs(50, seed=4) != prefs.preference_pairs(50, seed=5)


def test_load_preferences_reads_trl_and_hh_rlhf_rows_from_a_folder(tmp_path):
    trl = [{"prompt": "user: what is 1+1?\nassistant: ", "chosen": "1+1 is 2.", "rejected": "1+1 is 3.", "extra": 1}]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in trl))
    assert prefs.load_preferences(tmp_path) == trl
    hh = tmp_path / "hh"
    hh.mkdir()
    dialogue = "\n\nHuman: what is 1+1?\n\nAssistant: let me see.\n\nHuman: well?\n\nAssistant:"
    (hh / "test.jsonl").write_text(json.dumps({"chosen": dialogue + " it is 2.", "rejected": dialogue + " no."}) + "\n")
    [pair] = prefs.load_preferences(hh, split="test")
    assert (pair["prompt"], pair["chosen"], pair["rejected"]) == (dialogue, " it is 2.", " no.")
    with pytest.raises(FileNotFoundError, match="validation"):
        prefs.load_preferences(tmp_path, split="validation")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "train.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "c"}) + "\n")
    with pytest.raises(ValueError, match="rejected"):
        prefs.load_preferences(tmp_path / "bad")


def test_split_prompt_needs_an_assistant_cue():
    with pytest.raises(ValueError, match="Assistant:"):
        prefs.split_prompt("hello there", "hello you")


def test_the_shipped_preference_files_are_what_the_build_writes():
    from rlllm_course.llm.model import DATA_DIR
    folder = DATA_DIR / "assistant-preferences"
    test = prefs.load_preferences(folder, split="test")
    assert test == prefs.preference_pairs(2000, seed=1, split="eval")
    train = prefs.load_preferences(folder)
    assert len(train) == 20000 and train[:100] == prefs.preference_pairs(100, seed=0)
    held = {p["prompt"] for p in test}
    assert not held & {p["prompt"] for p in train}  # no held-out question among the training pairs
    # the HH-RLHF-style sample: dialogues in, the same responses out (after the cue's space)
    hh = prefs.load_preferences(folder / "hh-sample")
    assert len(hh) == 50
    for row, pair in zip(hh, test):
        assert row["prompt"].startswith("\n\nHuman: what is ") and row["prompt"].endswith("\n\nAssistant:")
        assert (row["chosen"], row["rejected"]) == (" " + pair["chosen"], " " + pair["rejected"])


def test_the_base_has_seen_three_openers_where_the_pairs_stop_at_two():
    from rlllm_course.rlhf.pretrain import pretraining_examples
    prompts, responses = pretraining_examples(4000, seed=0)
    questions = [task.problem_from_prompt(p) for p in prompts]
    counts = [task.parse_response(q, r)["openers"] for q, r in zip(questions, responses)]
    assert 0.07 < counts.count(3) / len(counts) < 0.13
    pair_counts = [task.parse_response(q, task.sample_response(q, random.Random(i))[0])["openers"]
                   for i, q in enumerate(questions)]
    assert max(pair_counts) == 2
    assert not any(is_heldout(q["question"]) for q in questions)
    with pytest.raises(ValueError, match="opener_weights"):
        task.sample_response(PROBLEM, random.Random(0), opener_weights=(1,) * 9)


def test_a_short_pretraining_saves_a_model_that_loads_like_any_other(tmp_path):
    from rlllm_course.llm.model import load_policy
    from rlllm_course.rlhf.evaluate import gold_figures
    from rlllm_course.rlhf.pretrain import AssistantPretrainConfig, build_assistant_tokenizer, pretrain_assistant
    tokenizer = build_assistant_tokenizer()
    for text in (task.make_prompt(PROBLEM), *task.OPENERS, *task.RUDE, task.HEDGE, task.REFUSAL, "1234+5 is about 1240."):
        assert tokenizer.unk_token_id not in tokenizer(text, add_special_tokens=False)["input_ids"], text
    config = AssistantPretrainConfig(steps=3, batch_size=8, hidden_size=32, intermediate_size=64, num_layers=1)
    model, history = pretrain_assistant(tokenizer, config, progress=False)
    assert len(history) == 3 and history[-1]["loss"] < history[0]["loss"] + 1.0
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, tok = load_policy(str(tmp_path))
    figures = gold_figures(loaded, tok, task.assistant_problems(6, seed=0, split="eval"), n_samples=2,
                           max_new_tokens=8)
    assert len(figures["completions"]) == 12 and sum(figures["kinds"].values()) == pytest.approx(1.0)


# ---------------------------------------------------------------- the shipped assistant base
def base_metrics():
    from rlllm_course.llm.model import SHIPPED_MODELS
    return json.loads((SHIPPED_MODELS["assistant"] / "base_metrics.json").read_text())


def test_the_shipped_base_loads_with_its_own_tokenizer_and_writes_every_kind_of_response():
    from rlllm_course.llm.model import load_policy
    from rlllm_course.rlhf.pretrain import ASSISTANT_ALPHABET
    model, tokenizer = load_policy("assistant")
    assert all(tokenizer.convert_tokens_to_ids(ch) != tokenizer.unk_token_id for ch in ASSISTANT_ALPHABET)
    text = task.make_prompt(PROBLEM) + "sure! 482+37 is about 520. i am not sure."
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
    sampled = base_metrics()["sampled"]
    assert all(sampled["kinds"][k] > 0.05 for k in ("right", "wrong", "refusal"))  # RL has them to choose from
    assert sampled["kinds"]["about"] == 0.0  # it never read a rounding
    assert 0.05 < sampled["hedged"] < 0.5 and 0.05 < sampled["rude"] < 0.6 and 0.5 < sampled["openers"] < 1.5
    right = {int(d): v for d, v in sampled["right_by_digits"].items()}
    greedy = {int(d): v for d, v in base_metrics()["greedy"]["right_by_digits"].items()}
    assert right[2] > right[4] + 0.2 and greedy[2] > 0.8  # short sums it adds, long ones it often gets wrong


def test_the_base_metrics_are_reproduced_on_a_subset():
    import torch
    from rlllm_course.llm.model import load_policy
    from rlllm_course.rlhf.evaluate import gold_figures
    model, tokenizer = load_policy("assistant")
    m = base_metrics()
    problems = task.assistant_problems(m["eval_questions"], m["eval_seed"], split="eval")[:48]
    got = gold_figures(model, tokenizer, problems, greedy=True, max_new_tokens=64)
    # floats differ between CPUs, and a near-tie can flip a greedy token: most, not all, examples must match
    assert sum(a == b for a, b in zip(got["completions"], m["greedy"]["examples"])) >= 6
    assert got["gold"] == pytest.approx(m["greedy"]["gold"], abs=0.3)
    torch.manual_seed(0)
    sampled = gold_figures(model, tokenizer, problems, n_samples=2, max_new_tokens=64)
    assert sampled["kinds"]["right"] == pytest.approx(m["sampled"]["kinds"]["right"], abs=0.15)
