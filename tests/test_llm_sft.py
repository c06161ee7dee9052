import pytest
import torch
from transformers import LlamaForCausalLM

import rlllm_course.llm.sft as sft
from rlllm_course.llm.model import tiny_config
from rlllm_course.llm.sft import SFTConfig, length_split, response_batch, sft_loss, train_sft
from rlllm_course.llm.tokenizer import build_tokenizer

TOK = build_tokenizer()


def small_model(seed=0):
    torch.manual_seed(seed)
    return LlamaForCausalLM(tiny_config(len(TOK), TOK.pad_token_id, TOK.eos_token_id, hidden_size=32,
                                        num_layers=1, num_heads=2, intermediate_size=64))


def test_labels_cover_the_response_and_eos_only():
    ids, mask, labels = response_batch(["Q:1+2\nA:", "Q:10+20\nA:"], ["3", "<answer>30</answer>"], TOK)
    assert ids.shape == mask.shape == labels.shape
    first = TOK("Q:1+2\nA:", add_special_tokens=False)["input_ids"]
    assert labels[0, :len(first)].eq(-100).all()
    assert labels[0, len(first):len(first) + 2].tolist() == [TOK.convert_tokens_to_ids("3"), TOK.eos_token_id]
    assert labels[0, len(first) + 2:].eq(-100).all() and mask[0, len(first) + 2:].eq(0).all()
    assert (labels[1] != -100).sum().item() == 4 + 1  # <answer> 3 0 </answer>, then eos
    assert mask[1].all()  # the longest row is not padded


def test_sft_loss_matches_hugging_face_and_ignores_the_prompt():
    model = small_model()
    ids, mask, labels = response_batch(["Q:1+2\nA:", "Q:10+20\nA:"], ["3", "30"], TOK)
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    assert torch.allclose(sft_loss(out.logits, labels), out.loss, atol=1e-6)
    # changing the prompt's labels to real ids would change the loss: they must stay ignored
    leaky = torch.where(mask.bool(), ids, torch.full_like(ids, -100))
    assert not torch.allclose(sft_loss(out.logits, leaky), out.loss)


class Stop(Exception):
    pass


def test_train_sft_learns_and_resumes(tmp_path, monkeypatch):
    prompts, responses = ["Q:1+2\nA:", "Q:2+2\nA:"] * 8, ["3", "4"] * 8
    config = SFTConfig(epochs=6, batch_size=4, lr=1e-2, warmup_steps=2)
    straight = small_model()
    history = train_sft(straight, TOK, prompts, responses, config, progress=False)
    assert len(history) == 24 and history[-1]["loss"] < history[0]["loss"] / 3
    # interrupted at step 12 (last save after step 10), then run again: same weights as straight
    saving = SFTConfig(**{**config.__dict__, "checkpoint_dir": str(tmp_path), "checkpoint_every": 10})
    calls, real = {"n": 0}, sft.response_batch

    def interrupted(*args):
        calls["n"] += 1
        if calls["n"] == 13:
            raise Stop
        return real(*args)
    monkeypatch.setattr(sft, "response_batch", interrupted)
    with pytest.raises(Stop):
        train_sft(small_model(), TOK, prompts, responses, saving, progress=False)
    monkeypatch.setattr(sft, "response_batch", real)
    again = small_model(seed=1)  # different init: everything must come from the checkpoint
    history = train_sft(again, TOK, prompts, responses, saving, progress=False)
    assert [h["step"] for h in history] == list(range(24))
    assert calls["n"] == 13  # no step before the checkpoint was redone with the patched batcher
    for a, b in zip(straight.parameters(), again.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_length_split_minimizes_padding():
    assert length_split([3, 3, 3, 3]) == ([], [0, 1, 2, 3])
    short, long = length_split([5, 80, 6, 5, 7, 79])
    assert sorted(short) == [0, 2, 3, 4] and sorted(long) == [1, 5]


def test_micro_batches_give_the_full_batch_gradient():
    prompts = ["Q:1+2\nA:", "Q:12+34\nA:", "Q:5+5\nA:"]
    responses = ["3", "<think>2+4=6,1+3=4</think><answer>46</answer>", "10"]
    ids, mask, labels = response_batch(prompts, responses, TOK)
    full = small_model()
    sft_loss(full(input_ids=ids, attention_mask=mask).logits, labels).backward()
    split = small_model()
    config = SFTConfig(epochs=1, batch_size=3, lr=0.0, warmup_steps=1)  # lr 0: only the gradient moves
    grads = {}
    hook = [p.register_hook(lambda g, n=n: grads.__setitem__(n, grads.get(n, 0) + g))
            for n, p in split.named_parameters()]
    train_sft(split, TOK, prompts, responses, config, progress=False)
    for h in hook:
        h.remove()
    for n, p in full.named_parameters():
        assert torch.allclose(p.grad, grads[n], atol=1e-6), n
