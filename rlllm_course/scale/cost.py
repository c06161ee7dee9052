"""Cost on paper: the FLOPs and memory of a GRPO step, from a model's size (module 15).

A dense transformer with N parameters spends about 2N FLOPs per token in a forward pass
(one multiply and one add per weight) and about 6N in a forward and backward pass (the
backward costs twice the forward), as in Kaplan et al. 2020. The attention scores add
2 * n_layers * context * d_model per token, small next to 2N while the context is short
(here: a few hundred tokens); ``tests/test_cost.py`` checks 2N and 6N against torch's own
FLOP counter on the course's tiny model. A GRPO step (module 08) is then:

- generation: every one of the B = prompts * G rows reads its prompt once (prefill) and
  writes its response one token at a time: 2N per prompt and response token;
- log-probs under the old policy (when there is more than one update per batch) and
  under the reference: 2N per prompt and response token each;
- the update: 6N per prompt and response token of every row, per update.

Memory of full fine-tuning with AdamW in mixed precision (Rajbhandari et al. 2020, ZeRO):
16 bytes per trained parameter (bf16 weights 2, bf16 gradients 2, fp32 master weights 4,
Adam's two fp32 moments 8), 2 more per parameter of a frozen bf16 reference, plus the
rollout's KV cache: 2 (keys and values) * n_layers * n_kv_heads * head_dim * 2 bytes per
token of every row.
"""

from dataclasses import dataclass

TRAINED_BYTES_PER_PARAM = 16  # bf16 weights + bf16 grads + fp32 master + Adam m, v (ZeRO's 16 psi)
FROZEN_BYTES_PER_PARAM = 2  # a bf16 copy (the reference)
# The shapes that set the cost, from the Qwen2.5 models' config.json (parameters with tied or untied embeddings
# as shipped): n_params, n_layers, n_kv_heads, head_dim.
QWEN2_5 = {"0.5B": (494_032_768, 24, 2, 64), "1.5B": (1_543_714_304, 28, 2, 128),
           "3B": (3_085_938_688, 36, 2, 128), "7B": (7_615_616_512, 28, 4, 128)}


def forward_flops(n_params, tokens):
    """About 2 N FLOPs per token of a forward pass."""
    return 2 * n_params * tokens


def training_flops(n_params, tokens):
    """About 6 N FLOPs per token of a forward and backward pass."""
    return 6 * n_params * tokens


@dataclass
class StepCost:
    generation: float  # FLOPs
    logprobs: float
    update: float

    @property
    def total(self):
        return self.generation + self.logprobs + self.update


def grpo_step_flops(n_params, prompts, group_size, prompt_tokens, response_tokens, updates=1, reference=True):
    """The FLOPs of one GRPO step (module docstring); token counts are per row. Returns a ``StepCost``."""
    for name, value in (("n_params", n_params), ("prompts", prompts), ("group_size", group_size),
                        ("updates", updates)):
        if not value >= 1:
            raise ValueError(f"{name} must be >= 1, got {value!r}")
    if prompt_tokens < 0 or response_tokens < 1:
        raise ValueError(f"need prompt_tokens >= 0 and response_tokens >= 1, got {prompt_tokens}, {response_tokens}")
    rows = prompts * group_size
    tokens = rows * (prompt_tokens + response_tokens)  # every row's prompt and response
    passes = int(reference) + int(updates > 1)  # reference log-probs, old log-probs
    return StepCost(generation=forward_flops(n_params, tokens), logprobs=passes * forward_flops(n_params, tokens),
                    update=updates * training_flops(n_params, tokens))


def training_memory_bytes(n_params, reference=True, kv_tokens=0, n_layers=0, n_kv_heads=0, head_dim=0):
    """Bytes of a GRPO run's models, optimizer and KV cache (module docstring); kv_tokens: rows * tokens."""
    for name, value in (("n_params", n_params), ("kv_tokens", kv_tokens), ("n_layers", n_layers), ("n_kv_heads", n_kv_heads),
                        ("head_dim", head_dim)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}")
    weights = TRAINED_BYTES_PER_PARAM * n_params + (FROZEN_BYTES_PER_PARAM * n_params if reference else 0)
    kv_cache = 2 * n_layers * n_kv_heads * head_dim * 2 * kv_tokens
    return weights + kv_cache


def seconds(flops, flops_per_second, utilization=0.4):
    """Wall time of `flops` at a fraction `utilization` of a device's peak `flops_per_second`."""
    if not 0 < utilization <= 1:
        raise ValueError(f"utilization must be in (0, 1], got {utilization!r}")
    return flops / (flops_per_second * utilization)
