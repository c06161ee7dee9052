"""Tests of decode.py: the lean decode loop samples exactly what HF's generate samples."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaForCausalLM
from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

from rlllm_course.llm.decode import fast_generate_ids, supports_fast_decode, warp_scores
from rlllm_course.llm.model import load_policy, tiny_config
from rlllm_course.llm.rollout import generate, hf_generate_ids
from rlllm_course.llm.tasks import addition_problems, make_prompt

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    return load_policy("tiny")


def encode(tok, n_prompts, group_size, seed=0):
    prompts = [make_prompt(p) for p in addition_problems(n_prompts, seed=seed)]
    enc = tok([p for p in prompts for _ in range(group_size)], return_tensors="pt", padding=True,
              add_special_tokens=False)
    return enc["input_ids"], enc["attention_mask"]


def both(model, tok, ids, mask, seed=0, max_new_tokens=48, **sampling):
    """(HF's new tokens, ours), each drawn after torch.manual_seed(seed)."""
    out = []
    for path in (hf_generate_ids, fast_generate_ids):
        torch.manual_seed(seed)
        out.append(path(model, ids, mask, max_new_tokens, tok.eos_token_id, tok.pad_token_id, **sampling))
    return out


def test_the_course_models_take_the_fast_path(tiny):
    assert supports_fast_decode(tiny[0])


def test_greedy_equals_hf_exactly(tiny):
    # prompts of different lengths: left padding, positions and the cache mask all matter
    ids, mask = encode(tiny[1], 16, 1)
    theirs, ours = both(*tiny, ids, mask, greedy=True)
    assert torch.equal(theirs, ours)


@pytest.mark.parametrize("n_prompts, group_size, sampling", [
    (4, 8, {}), (16, 8, {}), (3, 5, {"temperature": 0.7}), (8, 4, {"temperature": 1.3, "top_p": 0.9}),
])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sampling_equals_hf_for_a_seed(tiny, n_prompts, group_size, sampling, seed):
    # finished rows leave the forward, but the draw keeps all B rows: every active row sees
    # the random numbers HF's multinomial gives it, and later steps the same generator state
    ids, mask = encode(tiny[1], n_prompts, group_size, seed=seed)
    theirs, ours = both(*tiny, ids, mask, seed=seed, **sampling)
    assert theirs.shape == ours.shape and torch.equal(theirs, ours)


@pytest.mark.parametrize("compact_below", [0.0, 0.5, 1.0])
def test_when_finished_rows_leave_the_cache_does_not_change_the_samples(tiny, compact_below):
    # 0: finished rows stay in the forward to the end (like HF); 1: they leave at once
    ids, mask = encode(tiny[1], 8, 8)
    theirs, _ = both(*tiny, ids, mask)
    torch.manual_seed(0)
    ours = fast_generate_ids(tiny[0], ids, mask, 48, tiny[1].eos_token_id, tiny[1].pad_token_id,
                             compact_below=compact_below)
    assert torch.equal(theirs, ours)


def test_eos_and_padding_and_masks_as_before(tiny):
    # generate's Rollout: pad after the eos, mask 1 up to and including it (the old contract)
    model, tok = tiny
    torch.manual_seed(0)
    out = generate(model, tok, [make_prompt(p) for p in addition_problems(4, seed=0)], group_size=4)
    torch.manual_seed(0)
    ref = hf_generate_ids(model, out.prompt_ids, out.prompt_mask, 48, tok.eos_token_id, tok.pad_token_id)
    assert out.completion_ids.shape == ref.shape
    ends = (out.completion_ids == tok.eos_token_id).int().argmax(1)  # (B,) every row ends here
    for b, end in enumerate(ends.tolist()):
        assert out.completion_mask[b].tolist() == [1] * (end + 1) + [0] * (ref.shape[1] - end - 1)
        assert (out.completion_ids[b, end + 1:] == tok.pad_token_id).all()
    assert torch.equal(out.completion_ids, ref.masked_fill(out.completion_mask == 0, tok.pad_token_id))


def llama_with_forced_eos(tok, logit):
    """A small untied Llama whose eos logit is about 5.7 * `logit` after every token.

    Attention and MLP outputs are zeroed, so the residual stream is the token's
    embedding, whose unit 0 (100) dominates: the normed state's unit 0 is about
    sqrt(32); the head reads the eos from that unit alone.
    """
    torch.manual_seed(0)
    config = tiny_config(len(tok), tok.pad_token_id, tok.eos_token_id, hidden_size=32, num_layers=2,
                         num_heads=2, intermediate_size=64)
    config.tie_word_embeddings = False
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight[:, 0] = 100.0
        model.lm_head.weight[tok.eos_token_id] = 0.0
        model.lm_head.weight[tok.eos_token_id, 0] = logit
    return model


@pytest.mark.parametrize("greedy", [False, True])
def test_rows_that_all_finish_at_the_first_token(tiny, greedy):
    # every row's first token is its eos: one column, and no decode step at all
    tok = tiny[1]
    ids, mask = encode(tok, 4, 3)
    theirs, ours = both(llama_with_forced_eos(tok, 100.0), tok, ids, mask, greedy=greedy)
    assert ours.shape == (12, 1) and (ours == tok.eos_token_id).all() and torch.equal(theirs, ours)


@pytest.mark.parametrize("greedy", [False, True])
def test_max_new_tokens_reached_without_eos(tiny, greedy):
    # the eos is never drawn: every row runs to max_new_tokens, no row leaves the batch
    tok = tiny[1]
    ids, mask = encode(tok, 3, 2)
    theirs, ours = both(llama_with_forced_eos(tok, -100.0), tok, ids, mask, max_new_tokens=7, greedy=greedy)
    assert ours.shape == (6, 7) and not (ours == tok.eos_token_id).any() and torch.equal(theirs, ours)


def test_warp_scores_equals_hfs_warpers():
    torch.manual_seed(0)
    logits = torch.randn(64, 34) * 3
    for temperature, top_p in [(1.0, 1.0), (0.7, 1.0), (1.0, 0.8), (1.3, 0.5), (0.9, 0.05)]:
        expected = logits
        if temperature != 1.0:
            expected = TemperatureLogitsWarper(temperature)(None, expected)
        if top_p < 1.0:
            expected = TopPLogitsWarper(top_p)(None, expected)
        assert torch.equal(warp_scores(logits, temperature, top_p), expected)


def test_other_models_go_through_hf_generate(tiny, tmp_path):
    # a GPT-2 from a local folder (no download): generate still works, through HF's own loop
    tok = tiny[1]
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    GPT2LMHeadModel(config).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    model, tok = load_policy(str(tmp_path))
    assert not supports_fast_decode(model)
    prompts = [make_prompt(p) for p in addition_problems(3, seed=0)]
    torch.manual_seed(0)
    out = generate(model, tok, prompts, group_size=2, max_new_tokens=10)
    torch.manual_seed(0)
    ref = hf_generate_ids(model, out.prompt_ids, out.prompt_mask, 10, tok.eos_token_id, tok.pad_token_id)
    assert torch.equal(out.completion_ids, ref.masked_fill(out.completion_mask == 0, tok.pad_token_id))


def test_a_repetition_penalty_in_the_generation_config_falls_back_to_hf(tiny):
    # HF would apply it; the fast loop has no such processor, so the model must not take it
    model, _ = load_policy("tiny")
    model.generation_config.repetition_penalty = 1.2
    assert not supports_fast_decode(model)
    model.generation_config.repetition_penalty = 1.0
    model.train()  # no dropout in the course's Llama: train mode samples the same
    assert supports_fast_decode(model)


def test_generate_checks_the_sampling_arguments(tiny):
    with pytest.raises(ValueError, match="temperature"):
        generate(*tiny, ["Q:1+2\nA:"], temperature=0.0)
    with pytest.raises(ValueError, match="top_p"):
        generate(*tiny, ["Q:1+2\nA:"], top_p=0.0)
