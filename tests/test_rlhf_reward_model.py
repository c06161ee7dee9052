"""The reward model of module 12: pooling, padding, the Bradley-Terry fit, TRL's loss, normalisation, best-of-n."""

import dataclasses
import itertools
import math
import random

import pytest
import torch

from rlllm_course.llm.losses import bradley_terry_loss
from rlllm_course.rlhf import best_of_n as bon
from rlllm_course.rlhf import reward_model as rmod
from rlllm_course.rlhf.assistant_task import assistant_problems, make_prompt, sample_response


def toy_pairs(n, seed=0):
    """Pairs whose chosen response is polite and the rejected one rude: learnable in a few steps."""
    rng, pairs = random.Random(seed), []
    for problem in assistant_problems(n, seed=seed):
        answer = f"{problem['question']} is {problem['answer']}."
        pairs.append({"prompt": make_prompt(problem), "chosen": "sure! " * rng.randint(0, 1) + answer,
                      "rejected": "what a dumb question. " + answer})
    return pairs


# ---------------------------------------------------------------- pooling
def test_last_token_index_finds_the_last_real_token_on_either_side():
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]])
    assert rmod.last_token_index(right).tolist() == [2, 4, 0]
    assert rmod.last_token_index(left).tolist() == [4, 4, 4]  # mask.sum(-1) - 1 would say [2, 4, 0]
    with pytest.raises(ValueError, match="at least one real token"):
        rmod.last_token_index(torch.tensor([[1, 1], [0, 0]]))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        rmod.last_token_index(torch.ones(3, dtype=torch.long))


def test_a_text_gets_the_same_reward_padded_left_or_right(base_dir):
    rm, tokenizer = rmod.load_reward_model(str(base_dir))
    prompts = [make_prompt(p) for p in assistant_problems(4, seed=0)]
    responses = ["1+4 is 5.", "sure! what a dumb question. 1200+34 is about 1230. i am not sure.", "", "sorry, i can not help."]
    right = rmod.score(rm, tokenizer, prompts, responses, normalized=False)
    tokenizer.padding_side = "left"
    left = rmod.score(rm, tokenizer, prompts, responses, normalized=False)
    alone = torch.cat([rmod.score(rm, tokenizer, [p], [r], normalized=False) for p, r in zip(prompts, responses)])
    torch.testing.assert_close(left, right, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone, right, atol=1e-5, rtol=1e-5)
    assert right.std() > 0  # a head that ignored the text would pass the rest


def test_the_reward_is_read_at_the_eos_as_transformers_does_and_also_when_pad_is_eos(base_dir):
    rm, tokenizer = rmod.load_reward_model(str(base_dir))
    prompts, responses = [make_prompt(p) for p in assistant_problems(3, seed=1)], ["0+1 is 1.", "sure! 11+11 is 22.", "x"]
    input_ids, attention_mask = rmod.reward_inputs(tokenizer, prompts, responses)
    assert (input_ids[torch.arange(3), rmod.last_token_index(attention_mask)] == tokenizer.eos_token_id).all()
    with torch.no_grad():
        ours = rmod.sequence_rewards(rm, input_ids, attention_mask)
        theirs = rm(input_ids=input_ids, attention_mask=attention_mask).logits.squeeze(-1)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    # with pad == eos, transformers' "last token that is not the pad" is the one before the eos
    rm.config.pad_token_id = tokenizer.eos_token_id
    with torch.no_grad():
        theirs = rm(input_ids=input_ids.masked_fill(attention_mask == 0, tokenizer.eos_token_id),
                    attention_mask=attention_mask).logits.squeeze(-1)
        ours_again = rmod.sequence_rewards(rm, input_ids.masked_fill(attention_mask == 0, tokenizer.eos_token_id),
                                           attention_mask)
    torch.testing.assert_close(ours_again, ours, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(theirs, ours, atol=1e-4)


def test_a_real_architecture_from_a_local_folder_scores_the_same_way(tmp_path):
    # the path a learner takes with a real model: a Qwen2 causal LM saved in a folder
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from rlllm_course.rlhf.pretrain import build_assistant_tokenizer
    tokenizer = build_assistant_tokenizer()
    torch.manual_seed(0)
    Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id)).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    rm, tok = rmod.load_reward_model(str(tmp_path))
    assert type(rm).__name__ == "Qwen2ForSequenceClassification" and len(tok) == len(tokenizer)
    prompts, responses = [make_prompt(p) for p in assistant_problems(3, seed=4)], ["1+1 is 2.", "", "sure! sorry, i can not help."]
    input_ids, attention_mask = rmod.reward_inputs(tok, prompts, responses)
    with torch.no_grad():
        theirs = rm(input_ids=input_ids, attention_mask=attention_mask).logits.squeeze(-1)
    right = rmod.score(rm, tok, prompts, responses, normalized=False)
    tok.padding_side = "left"
    torch.testing.assert_close(right, theirs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rmod.score(rm, tok, prompts, responses, normalized=False), right, atol=1e-5, rtol=1e-5)


def test_a_reward_model_starts_from_the_base_and_reloads_with_its_normalisation(base_dir, tmp_path):
    from transformers import AutoModelForCausalLM
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    rm, tokenizer = rmod.load_reward_model(str(base_dir), seed=3)
    again, _ = rmod.load_reward_model(str(base_dir), seed=3)
    other, _ = rmod.load_reward_model(str(base_dir), seed=4)
    assert rm.config.num_labels == 1 and tokenizer.padding_side == "right"
    for name, w in base.model.state_dict().items():
        torch.testing.assert_close(rm.model.state_dict()[name], w)
    torch.testing.assert_close(rm.score.weight, again.score.weight)
    assert not torch.equal(rm.score.weight, other.score.weight)
    prompts = [make_prompt(p) for p in assistant_problems(40, seed=2)]
    rng = random.Random(0)
    responses = [sample_response(p, rng)[0] for p in assistant_problems(40, seed=2)]
    mean, std = rmod.fit_normalization(rm, tokenizer, prompts, responses)
    normalized = rmod.score(rm, tokenizer, prompts, responses)
    assert abs(normalized.mean().item()) < 1e-4 and normalized.std().item() == pytest.approx(1.0, abs=1e-4)
    raw = rmod.score(rm, tokenizer, prompts, responses, normalized=False)
    torch.testing.assert_close(normalized, (raw - mean) / std)
    rm.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, _ = rmod.load_reward_model(str(tmp_path), seed=99)
    torch.testing.assert_close(rmod.score(loaded, tokenizer, prompts, responses), normalized)
    with pytest.raises(ValueError, match="at least two"):
        rmod.fit_normalization(rm, tokenizer, prompts[:1], responses[:1])


# ---------------------------------------------------------------- the loss, against TRL
def test_bradley_terry_centering_term():
    chosen, rejected = torch.tensor([2.0, 0.5]), torch.tensor([1.0, -1.5])
    plain, _ = bradley_terry_loss(chosen, rejected)
    centred, _ = bradley_terry_loss(chosen, rejected, center_coefficient=0.01)
    assert centred.item() == pytest.approx(plain.item() + 0.01 * (9.0 + 1.0) / 2, rel=1e-6)


@pytest.mark.parametrize("margin, center", [(False, None), (True, None), (False, 0.01), (True, 0.05)])
def test_bradley_terry_loss_equals_trl_reward_trainer(base_dir, tmp_path, margin, center):
    trl = pytest.importorskip("trl")
    from datasets import Dataset
    from types import SimpleNamespace
    rm, tokenizer = rmod.load_reward_model(str(base_dir))
    data = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in toy_pairs(4)])
    trainer = trl.RewardTrainer(model=rm, processing_class=tokenizer, train_dataset=data,
                                args=trl.RewardConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[],
                                                      center_rewards_coefficient=center))
    torch.manual_seed(0)
    chosen, rejected, m = torch.randn(6), torch.randn(6), torch.rand(6)

    class Scores(torch.nn.Module):  # hands TRL the rewards under test, in its chosen-then-rejected layout
        training = True

        def forward(self, **inputs):
            return SimpleNamespace(logits=torch.cat([chosen, rejected])[:, None])

    inputs = {"input_ids": torch.zeros(12, 3, dtype=torch.long), "attention_mask": torch.ones(12, 3, dtype=torch.long)}
    if margin:
        inputs["margin"] = m
    theirs = trainer.compute_loss(Scores(), inputs)
    ours, metrics = bradley_terry_loss(chosen, rejected, margin=m if margin else 0.0,
                                       center_coefficient=center or 0.0)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)
    assert metrics["rm/accuracy"] == pytest.approx((chosen > rejected).float().mean().item())


# ---------------------------------------------------------------- accuracy and training
def test_pairwise_accuracy_counts_a_tie_as_half():
    assert rmod.pairwise_accuracy(torch.tensor([1.0, 2.0, 0.0, 3.0]), torch.tensor([0.0, 3.0, 0.0, 3.0])) == 0.5
    assert rmod.pairwise_accuracy(torch.zeros(7), torch.zeros(7)) == 0.5  # a constant model is a coin
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        rmod.pairwise_accuracy(torch.zeros(3), torch.zeros(4))


def test_training_learns_the_preference_and_resumes_where_it_stopped(base_dir, tmp_path, monkeypatch):
    from rlllm_course.training import save_checkpoint
    pairs, held_out = toy_pairs(96, seed=0), toy_pairs(64, seed=1)
    config = rmod.RewardConfig(epochs=1.0, batch_size=16, lr=3e-3, warmup_steps=1, num_threads=1)
    rm, tokenizer = rmod.load_reward_model(str(base_dir))
    before = rmod.pairwise_accuracy(*rmod.pair_rewards(rm, tokenizer, held_out))
    history = rmod.train_reward_model(rm, tokenizer, pairs, dataclasses.replace(config, eval_every=4),
                                      progress=False, eval_pairs=held_out)
    after = rmod.pairwise_accuracy(*rmod.pair_rewards(rm, tokenizer, held_out))
    assert len(history) == 6 and {"loss", "rm/accuracy", "rm/margin", "lr", "seconds"} <= set(history[0])
    assert [h["step"] for h in history if "eval/accuracy" in h] == [3, 5] and history[-1]["eval/accuracy"] == after
    assert after > 0.95 and after > before
    # interrupted right after the checkpoint of step 4 (of 6), then run again: the same model
    saves = []

    def save_then_stop(path, state):
        save_checkpoint(path, state)
        saves.append(state["step"])
        if state["step"] == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(rmod, "save_checkpoint", save_then_stop)
    resumable = dataclasses.replace(config, checkpoint_dir=str(tmp_path), checkpoint_every=2)
    first, _ = rmod.load_reward_model(str(base_dir))
    with pytest.raises(KeyboardInterrupt):
        rmod.train_reward_model(first, tokenizer, pairs, resumable, progress=False)
    resumed, _ = rmod.load_reward_model(str(base_dir))
    rest = rmod.train_reward_model(resumed, tokenizer, pairs, resumable, progress=False)
    assert saves == [2, 4, 6]
    assert [h["step"] for h in rest] == list(range(6))
    for name, w in rm.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], w, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="'prompt', 'chosen' and 'rejected'"):
        rmod.train_reward_model(rm, tokenizer, [{"prompt": "x", "chosen": "y"}], config, progress=False)


# ---------------------------------------------------------------- best-of-n
def test_best_of_n_picks_the_highest_of_the_first_n():
    scores = torch.tensor([[0.1, 0.9, 0.5, 2.0], [3.0, 0.0, 1.0, 4.0]])
    assert bon.best_of_n(scores, 1).tolist() == [0, 0]
    assert bon.best_of_n(scores, 3).tolist() == [1, 0]
    assert bon.best_of_n(scores, 4).tolist() == [3, 3]
    for bad in (0, 5, 2.0):
        with pytest.raises(ValueError, match="n must be an integer in 1..4"):
            bon.best_of_n(scores, bad)


def test_kl_of_best_of_n():
    assert bon.kl_best_of_n(1) == 0.0
    assert bon.kl_best_of_n(2) == pytest.approx(math.log(2) - 0.5)
    assert bon.kl_best_of_n(64) == pytest.approx(math.log(64) - 63 / 64)
    # exact for a uniform policy over many outcomes: best-of-n of n draws of a continuous score
    K, n = 20000, 4
    p = torch.full((K,), 1.0 / K)
    q = (torch.arange(1, K + 1, dtype=torch.float64) / K) ** n - (torch.arange(K, dtype=torch.float64) / K) ** n
    assert (q * (q.log() - p.double().log())).sum().item() == pytest.approx(bon.kl_best_of_n(n), abs=1e-3)


def test_best_of_n_curve_is_the_average_over_every_subset():
    torch.manual_seed(0)
    proxy, gold = torch.randn(5, 7), torch.randn(5, 7)
    proxy[0, :3] = 1.0  # ties, broken by sample order
    curve = bon.best_of_n_curve(proxy, gold, [1, 2, 4, 7])
    for n, got in zip(curve["n"], curve["gold"]):
        picks = [gold[torch.arange(5), torch.tensor(s)[bon.best_of_n(proxy[:, list(s)], n)]]
                 for s in itertools.combinations(range(7), n)]
        assert got == pytest.approx(torch.stack(picks).mean().item(), abs=1e-6)
    assert curve["proxy"] == sorted(curve["proxy"]) and curve["proxy"][-1] == pytest.approx(proxy.max(1).values.mean().item())
    assert curve["gold"][0] == pytest.approx(gold.mean().item())
    assert sum(bon.best_of_n_weights(7, 3)).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"shape \(P, N\)"):
        bon.best_of_n_curve(proxy, gold[:, :3], [1])


# ---------------------------------------------------------------- the probe of what a scorer learned
def test_the_probe_table_of_the_gold_reward_is_the_gold_reward():
    from rlllm_course.rlhf.assistant_task import gold_reward, problem_from_prompt
    from rlllm_course.rlhf.evaluate import PROBES, probe_table
    problems = assistant_problems(40, seed=3, split="eval")
    calls = []

    def gold_scorer(prompts, responses):
        calls.append(len(prompts))
        return [gold_reward(problem_from_prompt(p), r) for p, r in zip(prompts, responses)]

    table = probe_table(gold_scorer, problems)
    assert calls == [40] * len(PROBES)
    for name in PROBES:
        assert table[name]["score"] == pytest.approx(table[name]["gold"])
    assert table["right"]["gold"] == 1.0 and table["wrong"]["gold"] == -1.0
    assert table["three openers"]["gold"] == pytest.approx(1.0 + 0.15 + 0.05 - 0.3)
    assert set(table["right beats wrong"]) == {len(str(p["a"])) for p in problems}
    assert all(v == 1.0 for v in table["right beats wrong"].values())
    assert all(v == 1.0 for v in table["right beats a slip"].values())
    assert table["wrong, a slip"]["gold"] == -1.0
    # a scorer that cannot add: right and wrong tie, so right never beats wrong
    blind = probe_table(lambda prompts, responses: [float("about" in r) for r in responses], problems)
    assert all(v == 0.0 for v in blind["right beats wrong"].values())
    # a scorer that reads only the first digit catches the blatant errors and misses every slip
    first_digit = probe_table(
        lambda prompts, responses: [float(r.split(" is ")[-1][:1] == str(problem_from_prompt(p)["answer"])[0])
                                    if " is " in r else 0.0 for p, r in zip(prompts, responses)], problems)
    assert all(v == 1.0 for v in first_digit["right beats wrong"].values())
    assert all(v == 0.0 for d, v in first_digit["right beats a slip"].items() if d > 1)


# ---------------------------------------------------------------- what tells a pair apart
def test_pair_kind_names_the_first_part_that_differs():
    from rlllm_course.rlhf.assistant_task import assistant_problem, response_text
    from rlllm_course.rlhf.evaluate import pair_kind
    problem = assistant_problem(482, 37)

    def pair(a, b):
        return {"prompt": make_prompt(problem), "chosen": response_text(problem, **a),
                "rejected": response_text(problem, **b)}

    assert pair_kind(pair(dict(kind="right"), dict(kind="wrong", rude=1))) == "answer kind"  # the answer comes first
    assert pair_kind(pair(dict(kind="right", rude=1), dict(kind="right", hedged=True))) == "rude"
    assert pair_kind(pair(dict(kind="right", hedged=True, openers=1), dict(kind="right"))) == "hedged"
    assert pair_kind(pair(dict(kind="refusal", openers=2), dict(kind="refusal"))) == "openers"
    assert pair_kind(pair(dict(kind="wrong"), dict(kind="wrong", error="slip"))) == "same parts"  # two wrong numbers


# ---------------------------------------------------------------- the shipped reward model
def rm_metrics():
    import json
    from rlllm_course.llm.model import SHIPPED_MODELS
    return json.loads((SHIPPED_MODELS["assistant-rm"] / "rm_metrics.json").read_text())


def test_the_shipped_reward_model_is_within_five_points_of_the_ceiling_and_learned_the_blatant_errors():
    m = rm_metrics()
    assert m["train_pairs"] == 20000 and m["test_pairs"] == 2000
    assert m["ceiling"] - 0.05 <= m["accuracy"] <= m["ceiling"]  # the target; above the ceiling is luck
    assert m["accuracy_by_pair"]["rude"]["accuracy"] > 0.85 and m["accuracy_by_pair"]["answer kind"]["accuracy"] > 0.8
    probes = m["probes"]
    # it catches the errors of its data (first digit) far better than the base's slips (a lower column)
    assert min(probes["right beats wrong"].values()) > 0.8
    assert probes["right beats a slip"]["4"] < 0.8
    assert abs(m["normalization"]["mean"]) < 50 and m["normalization"]["std"] > 0


def test_the_shipped_reward_model_reproduces_its_figures_and_normalization():
    from rlllm_course.rlhf.preferences import load_preferences
    from rlllm_course.llm.model import DATA_DIR
    rm, tokenizer = rmod.load_reward_model("assistant-rm")
    m = rm_metrics()
    assert rm.config.reward_mean == pytest.approx(m["normalization"]["mean"])
    assert rm.config.reward_std == pytest.approx(m["normalization"]["std"])
    test = load_preferences(DATA_DIR / "assistant-preferences", "test")
    chosen, rejected = rmod.pair_rewards(rm, tokenizer, test)
    # floats differ between CPUs; a pair whose two rewards nearly tie may flip, not a share of them
    assert rmod.pairwise_accuracy(chosen, rejected) == pytest.approx(m["accuracy"], abs=0.005)
