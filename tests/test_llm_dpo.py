import math

import pytest
import torch

import rlllm_course.llm.dpo as dpo
from rlllm_course.llm.dpo import DPOConfig, batch_logps, sequence_logps, train_dpo
from rlllm_course.llm.model import load_policy
from rlllm_course.llm.rollout import sequence_logprobs
from rlllm_course.llm.sft import response_batch
from rlllm_course.llm.tasks import TINY_TEMPLATE, make_prompt
from rlllm_course.reasoning.tasks import reasoning_problems

torch.set_num_threads(1)
PROBLEMS = reasoning_problems(8, seed=0)
PROMPTS = [make_prompt(p, TINY_TEMPLATE) for p in PROBLEMS]
# long2short pairs: the short correct answer over the same answer after a long trace
PAIRS = [{"prompt": prompt, "chosen": f"<answer>{p['answer']}</answer>",
          "rejected": f"<think>{p['think']}</think><answer>{p['answer']}</answer>"}
         for prompt, p in zip(PROMPTS, PROBLEMS)]
TOY = DPOConfig(epochs=4, batch_size=4)  # 8 steps at the default lr


def policy():
    return load_policy("reasoning-small")


def logps_of(model, tokenizer, pairs, key):
    with torch.no_grad():
        return batch_logps(model, tokenizer, [p["prompt"] for p in pairs], [p[key] for p in pairs])


def test_sequence_logps_is_the_rollout_sum_with_eos_and_without_prompt():
    model, tok = policy()
    completions = [f"<answer>{PROBLEMS[0]['answer']}</answer>",
                   "<think>12 wait 5+1=6</think><answer>146</answer>", "146"]
    prompts = PROMPTS[:3]
    # rollout's layout: prompts left-padded, completions (+ eos) right-padded
    enc = tok(prompts, padding=True, return_tensors="pt", add_special_tokens=False)
    ids = [tok(c, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for c in completions]
    T = max(map(len, ids))
    completion_ids = torch.tensor([i + [tok.pad_token_id] * (T - len(i)) for i in ids])
    completion_mask = torch.tensor([[1] * len(i) + [0] * (T - len(i)) for i in ids])
    with torch.no_grad():
        per_token = sequence_logprobs(model, enc["input_ids"], enc["attention_mask"],
                                      completion_ids, completion_mask)  # (3, T)
        ours = sequence_logps(model, *response_batch(prompts, completions, tok))  # (3,)
    assert torch.allclose(ours, per_token.sum(-1), atol=1e-4, rtol=0)
    # "146" without tags makes the eos unlikely: dropping it would change the sum by nats, not 1e-4
    eos_logp = per_token[2, len(ids[2]) - 1]
    assert eos_logp < -1.0


def test_step_zero_loss_is_log2_and_gradient_is_the_closed_form():
    # At pi = pi_ref the margin is 0, so L = log 2 and
    # grad L = -beta * sigmoid(0) * (grad log pi(y_c) - grad log pi(y_r)) = -beta/2 * (g_c - g_r).
    model, tok = policy()
    pair, beta = PAIRS[0], 0.3
    params = list(model.parameters())
    grads = {}
    for key in ("chosen", "rejected"):
        logp = sequence_logps(model, *response_batch([pair["prompt"]], [pair[key]], tok))[0]
        grads[key] = torch.autograd.grad(logp, params)
    expected = [-beta / 2 * (c - r) for c, r in zip(grads["chosen"], grads["rejected"])]
    # lr 0: the step leaves the weights alone and the gradient in .grad; the huge clip never scales it
    config = DPOConfig(epochs=1, batch_size=1, lr=0.0, beta=beta, max_grad_norm=1e9)
    history = train_dpo(model, tok, [pair], config, progress=False)
    assert len(history) == 1
    assert history[0]["dpo/loss"] == pytest.approx(math.log(2), abs=1e-6)
    for p, e in zip(params, expected):  # float32 noise is ~1e-6 of each tensor's norm; beta vs beta/2 is 1
        assert ((p.grad - e).norm() / e.norm()).item() < 1e-5
    norm = torch.sqrt(sum((e ** 2).sum() for e in expected)).item()
    assert history[0]["grad_norm"] == pytest.approx(norm, rel=1e-4)  # beta instead of beta/2 would double it


def test_a_few_steps_raise_the_margin_and_the_chosen_logp():
    model, tok = policy()
    ref, _ = policy()
    history = train_dpo(model, tok, PAIRS, TOY, progress=False)
    assert len(history) == 8 and [h["step"] for h in history] == list(range(8))
    assert history[-1]["dpo/margin"] > 1.0 and history[-1]["dpo/accuracy"] == 1.0
    assert history[-1]["dpo/loss"] < 0.3 < math.log(2)
    # measured afresh on the trained model (trained in place) against the untouched one
    chosen = logps_of(model, tok, PAIRS, "chosen") - logps_of(ref, tok, PAIRS, "chosen")  # (8,)
    rejected = logps_of(model, tok, PAIRS, "rejected") - logps_of(ref, tok, PAIRS, "rejected")  # (8,)
    assert (chosen > rejected).all()
    # on this toy set the chosen answer gains probability (DPO may also lower both: module 14)
    assert chosen.mean() > 0.1
    assert history[-1]["dpo/reward_chosen"] > 0


def test_sft_weight_adds_the_chosen_nll_per_token():
    model, tok = policy()
    with torch.no_grad():
        ids, mask, labels = response_batch([p["prompt"] for p in PAIRS], [p["chosen"] for p in PAIRS], tok)
        want = -sequence_logps(model, ids, mask, labels).sum() / (labels != -100).sum()  # before any step
    one = DPOConfig(epochs=1, batch_size=len(PAIRS), lr=0.0)  # one step over every pair, no update
    plain = train_dpo(model, tok, PAIRS, one, progress=False)[0]
    weighted = train_dpo(policy()[0], tok, PAIRS, DPOConfig(**{**one.__dict__, "sft_weight": 0.5}), progress=False)[0]
    assert plain["dpo/sft_nll"] == pytest.approx(want.item(), rel=1e-5)  # logged at weight 0 too
    assert plain["loss"] == pytest.approx(plain["dpo/loss"]) == pytest.approx(math.log(2), abs=1e-6)
    assert weighted["loss"] == pytest.approx(weighted["dpo/loss"] + 0.5 * want.item(), rel=1e-5)
    # in training, the term keeps the chosen answers likely while the margin grows
    base, nll = policy()[0], policy()[0]
    train_dpo(base, tok, PAIRS, TOY, progress=False)
    train_dpo(nll, tok, PAIRS, DPOConfig(**{**TOY.__dict__, "sft_weight": 1.0}), progress=False)
    assert logps_of(nll, tok, PAIRS, "chosen").mean() > logps_of(base, tok, PAIRS, "chosen").mean()


def test_reference_is_frozen_and_not_optimized(monkeypatch):
    model, tok = policy()
    ref, _ = policy()
    before = {k: v.clone() for k, v in ref.state_dict().items()}
    optimized = []
    real = dpo.make_optimizer

    def recording(m, lr, weight_decay):
        optimizer = real(m, lr, weight_decay)
        optimized.extend(p for g in optimizer.param_groups for p in g["params"])
        return optimizer
    monkeypatch.setattr(dpo, "make_optimizer", recording)
    train_dpo(model, tok, PAIRS, DPOConfig(epochs=1, batch_size=4, lr=1e-3), ref_model=ref, progress=False)
    ids = {id(p) for p in optimized}
    assert ids == {id(p) for p in model.parameters()}
    assert not ids & {id(p) for p in ref.parameters()}
    for k, v in ref.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the policy did move


class Stop(Exception):
    pass


def test_resume_gives_the_uninterrupted_history(tmp_path, monkeypatch):
    straight, tok = policy()
    full = train_dpo(straight, tok, PAIRS, TOY, progress=False)
    saving = DPOConfig(**{**TOY.__dict__, "checkpoint_dir": str(tmp_path), "checkpoint_every": 3})
    calls, real = {"n": 0}, dpo.dpo_loss

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # during step 5; the last save was after step 2
            raise Stop
        return real(*args, **kwargs)
    monkeypatch.setattr(dpo, "dpo_loss", dying)
    interrupted, _ = policy()
    with pytest.raises(Stop):
        train_dpo(interrupted, tok, PAIRS, saving, progress=False)
    # resumed with the same, now five-steps-trained object (a notebook cell run again): the
    # reference log-probs must still be the original model's, taken from the checkpoint
    calls["n"] = -100
    resumed = train_dpo(interrupted, tok, PAIRS, saving, progress=False)
    assert calls["n"] == -100 + 5  # steps 3..7 only
    assert len(resumed) == len(full)
    for a, b in zip(full, resumed):
        assert a.keys() == b.keys()
        for key in a:
            if key != "seconds":
                assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-6), (a["step"], key)
    for a, b in zip(straight.parameters(), interrupted.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    other = [{**p, "rejected": p["rejected"] + " "} for p in PAIRS]
    with pytest.raises(ValueError, match="other pairs"):  # saved reference log-probs belong to PAIRS
        train_dpo(interrupted, tok, other, saving, progress=False)


PAIR = PAIRS[0]


@pytest.mark.parametrize("pairs, config, match", [
    ([], DPOConfig(), "non-empty list"),
    (PAIR, DPOConfig(), "non-empty list"),  # one dict, not a list of them
    ([{"prompt": PAIR["prompt"], "chosen": PAIR["chosen"]}], DPOConfig(), r"pairs\[0\] must be a dict"),
    ([PAIR, {**PAIR, "chosen": PAIR["rejected"]}], DPOConfig(), r"pairs\[1\]: chosen and rejected are"),
    ([{**PAIR, "chosen": 146}], DPOConfig(), "must be strings"),
    ([{**PAIR, "prompt": ""}], DPOConfig(), "prompt must be non-empty"),
    ([PAIR], DPOConfig(beta=0.0), "beta must be > 0"),
    ([PAIR], DPOConfig(beta=-0.1), "beta must be > 0"),
    ([PAIR], DPOConfig(batch_size=0), "batch_size"),
    ([PAIR], DPOConfig(epochs=0), "epochs"),
    ([PAIR], DPOConfig(max_grad_norm=0), "max_grad_norm"),
    ([PAIR], DPOConfig(sft_weight=-1.0), "sft_weight must be >= 0"),
])
def test_argument_errors(pairs, config, match):
    model, tok = policy()
    with pytest.raises(ValueError, match=match):
        train_dpo(model, tok, pairs, config, progress=False)


def test_sequence_logps_argument_errors():
    model, tok = policy()
    ids, mask, labels = response_batch(PROMPTS[:2], ["<answer>1</answer>", "2"], tok)
    with pytest.raises(ValueError, match=r"shape \(N, L\)"):
        sequence_logps(model, ids, mask[:, :-1], labels)
    with pytest.raises(ValueError, match=r"labels\[:, 0\] must be -100"):
        sequence_logps(model, ids, mask, ids)  # labels on the prompt's first token cannot be scored


def test_the_evaluator_runs_every_eval_every_steps_and_after_the_last_in_eval_mode():
    model, tok = policy()
    seen = []

    def evaluator(m):
        seen.append(m.training)
        return {"marker": len(seen)}

    config = DPOConfig(**{**TOY.__dict__})
    history = train_dpo(model, tok, PAIRS, config, progress=False, evaluator=evaluator, eval_every=2)
    steps = len(history)
    expected = [s for s in range(steps) if (s + 1) % 2 == 0 or s + 1 == steps]
    assert [log["step"] for log in history if "eval/marker" in log] == expected
    assert seen == [False] * len(expected)  # evaluated in eval mode ...
    assert all(log["eval_seconds"] <= log["seconds"] for log in history)
    plain = train_dpo(policy()[0], tok, PAIRS, config, progress=False)  # ... and training is not changed by it
    assert [log["dpo/loss"] for log in plain] == [log["dpo/loss"] for log in history]


def test_sequence_logps_from_logits_shifts_by_one_and_sums_the_labelled_tokens():
    from rlllm_course.llm.dpo import sequence_logps_from_logits
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[-100, -100, 3, 6, -100], [-100, 1, 2, 0, 4]])
    got = sequence_logps_from_logits(logits, labels)
    logp = torch.log_softmax(logits.detach(), -1)
    want = torch.stack([logp[0, 1, 3] + logp[0, 2, 6], logp[1, 0, 1] + logp[1, 1, 2] + logp[1, 2, 0] + logp[1, 3, 4]])
    torch.testing.assert_close(got.detach(), want)
    assert got.dtype == torch.float64  # float64 kept; float16/bfloat16 would be lifted to float32
    got.sum().backward()
    assert logits.grad[0, 4].abs().sum() == 0 and logits.grad[0, 0].abs().sum() == 0  # unscored positions
    with pytest.raises(ValueError, match="labels\\[:, 0\\] must be -100"):
        sequence_logps_from_logits(logits, torch.ones(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        sequence_logps_from_logits(logits, labels[:, :4])
