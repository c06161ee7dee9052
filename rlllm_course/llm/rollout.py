"""The language model as a policy: sample G completions per prompt, score their tokens.

Shapes: N prompts, G samples per prompt (``group_size``), B = N * G rows ordered
prompt by prompt (rows i*G .. i*G+G-1 answer prompt i), P prompt tokens
(left-padded), T completion tokens (right-padded after the end-of-sequence).

Left padding puts every prompt's last token in column P-1, so the completion
starts at column P in every row; the position of a token is the number of real
tokens before it (``attention_mask.cumsum(-1) - 1``), so padding does not shift it.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .decode import fast_generate_ids, supports_fast_decode


@dataclass
class Rollout:
    """A batch of sampled completions (tensors on the model's device).

    prompt_ids, prompt_mask: (B, P) long, left-padded prompts and their 0/1 mask.
    completion_ids: (B, T) long, the sampled tokens, padding after the eos.
    completion_mask: (B, T) long, 1 for the tokens the policy chose, up to and
        including the first eos (stopping is an action too); 0 after it.
    completions: list of B strings, the decoded completions (tags kept, eos and
        padding removed), ready for the reward functions.
    prompt_index: (B,) long, which of the N prompts each row answers.
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    completions: list
    prompt_index: torch.Tensor

    @property
    def input_ids(self):
        return torch.cat([self.prompt_ids, self.completion_ids], dim=1)  # (B, P + T)

    @property
    def attention_mask(self):
        return torch.cat([self.prompt_mask, self.completion_mask], dim=1)  # (B, P + T)


def completion_mask_from_ids(completion_ids, eos_token_id):
    """(B, T) 0/1 mask: 1 up to and including the first `eos_token_id` of each row, 0 after.

    A row without an eos (cut at ``max_new_tokens``) is kept whole.
    """
    is_eos = completion_ids == eos_token_id  # (B, T)
    T = completion_ids.shape[1]
    first_eos = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1), T)  # (B,)
    positions = torch.arange(T, device=completion_ids.device)[None, :]  # (1, T)
    return (positions <= first_eos[:, None]).long()  # (B, T)


def decode_completions(tokenizer, completion_ids, completion_mask):
    """Decode each row's masked tokens, keeping tags and dropping eos, bos and padding."""
    drop = {tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id}
    texts = []
    for ids, mask in zip(completion_ids.tolist(), completion_mask.tolist()):
        kept = [i for i, m in zip(ids, mask) if m and i not in drop]
        texts.append(tokenizer.decode(kept, skip_special_tokens=False))
    return texts


@torch.no_grad()
def hf_generate_ids(model, prompt_ids, prompt_mask, max_new_tokens, eos_token_id, pad_token_id,
                    temperature=1.0, top_p=1.0, greedy=False):
    """The new tokens of HF's ``model.generate``: (B, T) long, padding after each row's eos.

    prompt_ids, prompt_mask: (B, P) left-padded. Sampling at `temperature` with
    nucleus `top_p` (top-k off), or the argmax with ``greedy=True``.
    """
    sampling = {} if greedy else {"temperature": temperature, "top_p": top_p, "top_k": 0}
    out = model.generate(input_ids=prompt_ids, attention_mask=prompt_mask, max_new_tokens=max_new_tokens,
                         do_sample=not greedy, pad_token_id=pad_token_id, eos_token_id=eos_token_id, **sampling)
    return out[:, prompt_ids.shape[1]:]  # (B, T)


@torch.no_grad()
def generate(model, tokenizer, prompts, group_size=1, max_new_tokens=48, temperature=1.0,
             top_p=1.0, greedy=False):
    """Sample `group_size` completions for each prompt, batched, with the KV cache.

    prompts: list of N strings (already templated). Returns a ``Rollout`` with
    B = N * group_size rows, prompt by prompt. ``greedy=True`` takes the argmax
    (then group_size copies are identical; use 1). Seed with ``torch.manual_seed``
    before calling for a reproducible sample.
    """
    if isinstance(prompts, str):
        raise ValueError("prompts must be a list of strings, got a single string")
    if tokenizer.padding_side != "left":
        raise ValueError("tokenizer.padding_side must be 'left' for generation")
    if not greedy and not (temperature > 0 and 0 < top_p <= 1):
        raise ValueError(f"need temperature > 0 and 0 < top_p <= 1 to sample, got {temperature!r}, {top_p!r}")
    device = next(model.parameters()).device
    repeated = [p for p in prompts for _ in range(group_size)]
    enc = tokenizer(repeated, return_tensors="pt", padding=True, add_special_tokens=False)
    prompt_ids, prompt_mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
    # The course's Llama models decode in a loop of our own (decode.py: the same samples, finished
    # rows dropped, a static cache); any other model goes through HF's generate.
    new_ids = fast_generate_ids if supports_fast_decode(model) else hf_generate_ids
    completion_ids = new_ids(model, prompt_ids, prompt_mask, max_new_tokens, tokenizer.eos_token_id,
                             tokenizer.pad_token_id, temperature, top_p, greedy)  # (B, T)
    completion_mask = completion_mask_from_ids(completion_ids, tokenizer.eos_token_id)
    completion_ids = completion_ids.masked_fill(completion_mask == 0, tokenizer.pad_token_id)
    index = torch.arange(len(prompts), device=device).repeat_interleave(group_size)  # (B,)
    return Rollout(prompt_ids, prompt_mask, completion_ids, completion_mask,
                   decode_completions(tokenizer, completion_ids, completion_mask), index)


def sequence_logprobs(model, prompt_ids, prompt_mask, completion_ids, completion_mask,
                      temperature=1.0):
    """Per-token log-probabilities of the completion tokens under `model`.

    prompt_ids, prompt_mask: (B, P), left-padded; completion_ids, completion_mask: (B, T).
    Returns logp: (B, T) float, logp[b, t] = log pi(c_t | prompt, c_<t) with the
    logits divided by `temperature` (the sampling distribution), and 0 where
    completion_mask is 0 (prompt and padding never enter the loss).
    Gradients flow; wrap in ``torch.no_grad()`` for old / reference log-probs.
    The sequence log-probability is ``logp.sum(-1)``.
    """
    if prompt_ids.shape != prompt_mask.shape:
        raise ValueError(f"prompt_mask must have the shape of prompt_ids {tuple(prompt_ids.shape)}")
    if completion_ids.shape != completion_mask.shape:
        raise ValueError(f"completion_mask must have the shape of completion_ids "
                         f"{tuple(completion_ids.shape)}")
    T = completion_ids.shape[1]
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)  # (B, P + T)
    attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)  # (B, P + T)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # (B, P + T)
    # The logit at column j predicts the token at column j + 1: keep the T + 1 last.
    logits = model(input_ids=input_ids, attention_mask=attention_mask,
                   position_ids=position_ids, logits_to_keep=T + 1).logits
    logits = logits[:, :-1].float() / temperature  # (B, T, V): predictions of c_0 .. c_{T-1}
    logp = torch.gather(F.log_softmax(logits, dim=-1), 2, completion_ids[..., None])[..., 0]  # (B, T)
    return logp * completion_mask


def pass_at_k(n, c, k):
    """Unbiased pass@k from n samples of which c are correct (Chen et al., 2021).

    pass@k = 1 - C(n - c, k) / C(n, k): the probability that k samples drawn
    without replacement from the n contain at least one correct one. Computed
    as 1 - prod_{i=n-c+1}^{n} (1 - k / i) to avoid huge binomials.
    """
    if not (isinstance(n, int) and isinstance(c, int) and isinstance(k, int)):
        raise ValueError(f"n, c, k must be integers, got {n!r}, {c!r}, {k!r}")
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:  # every k-subset contains a correct sample
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))
