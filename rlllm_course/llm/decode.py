"""A lean decode loop for the course's small Llama models, sampling exactly as HF's ``generate``.

Why a loop of our own: on one CPU thread the tiny model's decode step is short
(a 1M-parameter forward), so what surrounds the matrix products decides the
speed. HF's ``generate`` pays, per step, a ``DynamicCache`` that grows by
``torch.cat`` (every step copies the whole cache), the masks and module calls of
a general forward, and the forward of rows that already emitted their eos (they
keep decoding padding until the longest row ends). Here:

- each distinct prompt is prefilled once by the model's own HF forward (the
  G samples of a prompt share its keys and values), then copied into a
  preallocated (static) cache that each step writes in place;
- a decode step uses the same weights, norms, rotary embedding and attention
  kernel as HF's ``LlamaForCausalLM``, as plain tensor ops (q, k, v in one
  product, gate and up in another);
- finished rows leave the forward: once fewer than `compact_below` of the
  cached rows still run, the cache is copied without the finished ones (a
  copy per finished row would cost more than their forward).

Samples stay those of HF's sampler: the logits go through the same warpers
(``TemperatureLogitsWarper`` then ``TopPLogitsWarper``, each skipped at 1.0 as
HF skips it), and the draw is ``torch.multinomial`` on the full (B, V) matrix,
finished rows included with a fixed distribution: the multinomial draws the
same random numbers for row b whatever the other rows hold, and the same amount
of them per step as HF's call, so every later step sees the generator in the
same state. (Tiny float differences from batch-size-dependent kernels could in
principle flip a sample that sits on a boundary; the tests compare the two.)

Shapes: B rows, P prompt columns (left-padded), T new tokens, L cache columns
(P + T), n rows still running, H heads (Hkv for keys and values), D head size.
"""

import torch
import torch.nn.functional as F
from transformers import LlamaForCausalLM

# generation-config fields that would add a logits processor this loop does not have
_PROCESSOR_FIELDS = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "bad_words_ids": None,
                     "min_length": 0, "min_new_tokens": None, "forced_bos_token_id": None,
                     "forced_eos_token_id": None, "suppress_tokens": None, "begin_suppress_tokens": None,
                     "sequence_bias": None, "encoder_repetition_penalty": 1.0, "exponential_decay_length_penalty": None,
                     "min_p": None, "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0,
                     "renormalize_logits": False, "guidance_scale": None}


def supports_fast_decode(model):
    """True for a ``LlamaForCausalLM`` without dropout, with default rotary embeddings and no extra logits processors.

    Anything else (Qwen2, GPT-2, a Llama with rope scaling or a repetition
    penalty in its generation config) goes through HF's ``generate``.
    """
    config, gen = model.config, model.generation_config
    rope = getattr(config, "rope_parameters", None) or {}
    return (type(model) is LlamaForCausalLM and (not model.training or config.attention_dropout == 0)
            and rope.get("rope_type", "default") == "default"
            and config._attn_implementation == "sdpa"  # the kernel HF's forward uses: the same numbers
            and all(getattr(gen, k, v) in (v, None) for k, v in _PROCESSOR_FIELDS.items()))


def warp_scores(logits, temperature=1.0, top_p=1.0):
    """HF's TemperatureLogitsWarper then TopPLogitsWarper on (B, V) float32 logits, the same ops in the same order.

    Top-p keeps the smallest set of most likely tokens whose probability reaches
    `top_p` (at least one); the others get -inf.
    """
    scores = logits / temperature if temperature != 1.0 else logits
    if top_p < 1.0:
        sorted_logits, sorted_indices = torch.sort(scores, descending=False)
        cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)  # (B, V)
        sorted_remove = cumulative_probs <= (1 - top_p)
        sorted_remove[..., -1:] = 0  # min_tokens_to_keep = 1
        remove = sorted_remove.scatter(1, sorted_indices, sorted_remove)  # (B, V), back in vocabulary order
        scores = scores.masked_fill(remove, -float("inf"))
    return scores


def _rms_norm(x, norm):
    # LlamaRMSNorm.forward, without the module call
    x32 = x.float()
    return norm.weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)).to(x.dtype)


def _rotate(x, cos, sin):
    # apply_rotary_pos_emb on one tensor: x * cos + rotate_half(x) * sin
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


def _layer_weights(model):
    """Per layer: (input norm, fused q/k/v weight, o weight, post norm, fused gate/up weight, down weight, act)."""
    # One matrix product for q, k, v and one for gate, up: the same numbers (each output column is
    # its own dot product), fewer, larger products, which small batches run faster.
    return [(layer.input_layernorm,
             torch.cat([layer.self_attn.q_proj.weight, layer.self_attn.k_proj.weight, layer.self_attn.v_proj.weight]),
             layer.self_attn.o_proj.weight, layer.post_attention_layernorm,
             torch.cat([layer.mlp.gate_proj.weight, layer.mlp.up_proj.weight]), layer.mlp.down_proj.weight,
             layer.mlp.act_fn) for layer in model.model.layers]


def _decode_step(model, weights, tokens, cos, sin, kv, mask, column):
    """Logits (n, V) of the next token for n rows whose last token is `tokens` (n,).

    weights: ``_layer_weights(model)``; cos, sin: (n, 1, 1, D) rotary factors at
    each row's position; kv: (layers, 2, n, Hkv, L, D) keys and values, this
    step's written at `column`; mask: (n, 1, 1, L) bool, True where a key may be
    attended to.
    """
    config = model.config
    n, D = tokens.shape[0], kv.shape[-1]
    H, Hkv = config.num_attention_heads, config.num_key_value_heads
    h = F.embedding(tokens, model.model.embed_tokens.weight)  # (n, hidden)
    for i, (norm1, w_qkv, w_o, norm2, w_gate_up, w_down, act) in enumerate(weights):
        qkv = F.linear(_rms_norm(h, norm1), w_qkv).view(n, H + 2 * Hkv, 1, D)
        qk = _rotate(qkv[:, :H + Hkv], cos, sin)  # (n, H + Hkv, 1, D): queries and keys rotated at once
        kv[i, 0, :, :, column:column + 1] = qk[:, H:]
        kv[i, 1, :, :, column:column + 1] = qkv[:, H + Hkv:]
        out = F.scaled_dot_product_attention(
            qk[:, :H], kv[i, 0, :, :, :column + 1], kv[i, 1, :, :, :column + 1],
            attn_mask=mask[..., :column + 1], scale=D ** -0.5, enable_gqa=Hkv != H)  # (n, H, 1, D)
        h = h + F.linear(out.view(n, H * D), w_o)
        gate, up = F.linear(_rms_norm(h, norm2), w_gate_up).chunk(2, dim=-1)  # (n, intermediate) each
        h = h + F.linear(act(gate) * up, w_down)
    return F.linear(_rms_norm(h, model.model.norm), model.lm_head.weight)  # (n, V)


COMPACT_BELOW = 0.75  # drop the finished rows once fewer than this share of the cached rows still run


@torch.no_grad()
def fast_generate_ids(model, prompt_ids, prompt_mask, max_new_tokens, eos_token_id, pad_token_id,
                      temperature=1.0, top_p=1.0, greedy=False, compact_below=COMPACT_BELOW):
    """The new tokens HF's ``model.generate`` would return: (B, S) long, pad after each row's eos.

    prompt_ids, prompt_mask: (B, P) left-padded. S <= max_new_tokens: the loop
    stops when every row has emitted `eos_token_id`. Sampling follows HF's
    (see the module docstring); ``greedy=True`` takes the argmax.
    """
    B, P = prompt_ids.shape
    device = prompt_ids.device
    # Prefill with HF's own forward (positions from the mask, as generate derives them).
    # A prompt repeated group_size times is prefilled once: its keys, values and logits are shared.
    unique_ids, inverse = torch.unique(torch.cat([prompt_ids, prompt_mask], 1), dim=0, return_inverse=True)
    unique_ids, unique_mask = unique_ids[:, :P], unique_ids[:, P:]  # (U, P) each
    positions = (unique_mask.cumsum(-1) - 1).clamp(min=0)  # (U, P)
    out = model(input_ids=unique_ids, attention_mask=unique_mask, position_ids=positions,
                use_cache=True, logits_to_keep=1)
    cache = out["cache"] if "cache" in out else out["past_key_values"]  # renamed in transformers 5.24
    prefill = [torch.stack([k, v]) for k, v, *_ in cache]  # per layer (2, U, Hkv, P, D)
    L = P + max_new_tokens - 1  # the last new token is never fed back
    kv = prefill[0].new_empty(len(prefill), 2, B, prefill[0].shape[2], L, prefill[0].shape[4])
    kv[..., :P, :] = torch.stack(prefill)[:, :, inverse]  # (layers, 2, B, Hkv, L, D)
    mask = torch.ones(B, 1, 1, L, dtype=torch.bool, device=device)
    mask[:, 0, 0, :P] = prompt_mask.bool()
    # cos, sin of every position a new token can take: the model's own rotary embedding
    all_positions = torch.arange(P + max_new_tokens, device=device)[None]  # (1, P + T)
    cos_table, sin_table = model.model.rotary_emb(model.model.embed_tokens.weight, all_positions)  # (1, P + T, D)
    next_position = prompt_mask.sum(-1)  # (B,)
    weights = _layer_weights(model)

    logits = out.logits[inverse, -1].float()  # (B, V)
    rows = torch.arange(B, device=device)  # the cached rows' indices into the B rows
    unfinished = torch.ones(B, dtype=torch.bool, device=device)
    fixed = torch.zeros(1, logits.shape[1], device=device)
    fixed[0, pad_token_id] = 1.0  # a finished row's distribution: it draws padding
    new_tokens = []
    for t in range(max_new_tokens):
        running = unfinished[rows]  # (n,) finished rows may stay cached until the next compaction
        if greedy:
            tokens = logits.argmax(-1).new_full((B,), pad_token_id)
            tokens[rows[running]] = logits[running].argmax(-1)
        else:
            probs = fixed.expand(B, -1).clone()  # (B, V)
            probs[rows[running]] = F.softmax(warp_scores(logits[running], temperature, top_p), dim=-1)
            tokens = torch.multinomial(probs, num_samples=1).squeeze(1)  # (B,)
        new_tokens.append(tokens)
        unfinished &= tokens != eos_token_id
        if t == max_new_tokens - 1 or not unfinished.any():
            break
        running = unfinished[rows]
        if running.sum() < compact_below * len(rows):  # copy the running rows' cache, drop the rest
            rows, kv, mask = rows[running], kv[:, :, running], mask[running]
        pos = next_position[rows] + t  # (n,)
        cos, sin = cos_table[0, pos][:, None, None], sin_table[0, pos][:, None, None]  # (n, 1, 1, D)
        logits = _decode_step(model, weights, tokens[rows], cos, sin, kv, mask, P + t).float()
    return torch.stack(new_tokens, dim=1)  # (B, S)
