"""The policy: the shipped tiny model or any causal LM from a local folder.

``load_policy("tiny")`` loads the course's own model (``rlllm_course/data/tiny-arith``,
built by ``scripts/build_tiny_model.py``); ``load_policy("/path/to/Qwen2.5-0.5B-Instruct")``
loads a real model through the same transformers code path. Nothing is ever
downloaded: a name that is neither shipped nor a local folder is an error.
"""

import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SHIPPED_MODELS = {"tiny": DATA_DIR / "tiny-arith", "reasoning": DATA_DIR / "reasoning-base",
                  "reasoning-small": DATA_DIR / "reasoning-small",
                  # reference runs of the reasoning track (scripts/build_reasoning_runs.py)
                  "r1-zero": DATA_DIR / "r1-zero", "r1-zero-consistency": DATA_DIR / "r1-zero-consistency",
                  "r1-zero-small": DATA_DIR / "r1-zero-small", "r1-cold-start-rl": DATA_DIR / "r1-cold-start-rl",
                  # the R1 pipeline's SFT stages (scripts/build_r1_pipeline.py)
                  "r1-cold-start": DATA_DIR / "r1-cold-start", "r1-rs-sft": DATA_DIR / "r1-rs-sft",
                  "r1-distill-small": DATA_DIR / "r1-distill-small",
                  # Kimi k1.5's long-CoT model (scripts/build_kimi_runs.py)
                  "kimi-long": DATA_DIR / "kimi-long",
                  # the RLHF track's assistant base (scripts/build_assistant_model.py)
                  "assistant": DATA_DIR / "assistant-base",
                  # its reward model (scripts/build_reward_model.py): load with rlhf.reward_model.load_reward_model
                  "assistant-rm": DATA_DIR / "assistant-rm"}


def tiny_config(vocab_size, pad_token_id, eos_token_id, bos_token_id=None, hidden_size=128,
                num_layers=4, num_heads=4, intermediate_size=512, max_positions=128):
    """A small Llama configuration (about 1M parameters at the defaults).

    A Llama config, not Qwen2: with ``qwen2`` AutoTokenizer would swap the
    course's character tokenizer for Qwen's own. Word embeddings are tied to
    the output layer, which halves the parameters of a small-vocabulary model.
    """
    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads,
        num_key_value_heads=num_heads, max_position_embeddings=max_positions,
        tie_word_embeddings=True, pad_token_id=pad_token_id, eos_token_id=eos_token_id,
        bos_token_id=bos_token_id, rope_theta=10000.0,
    )


def new_model(tokenizer, config, max_positions=128):
    """A freshly initialised small Llama for `tokenizer`, seeded by ``config.seed``.

    config: any config with ``seed``, ``hidden_size``, ``num_layers``,
    ``num_heads`` and ``intermediate_size`` (the pretraining configs).
    """
    torch.manual_seed(config.seed)
    return LlamaForCausalLM(tiny_config(
        len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id,
        config.hidden_size, config.num_layers, config.num_heads, config.intermediate_size, max_positions))


def resolve_model_path(name_or_path):
    """The folder of a shipped model name ("tiny") or an existing local folder."""
    if name_or_path in SHIPPED_MODELS:
        path = SHIPPED_MODELS[name_or_path]
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"shipped model {name_or_path!r} is missing at {path}; "
                                    "build it with its script in scripts/ (build_*.py)")
        return path
    path = Path(name_or_path).expanduser()
    if not (path / "config.json").exists():
        raise FileNotFoundError(
            f"name_or_path must be one of {sorted(SHIPPED_MODELS)} or a local model folder "
            f"with a config.json, got {name_or_path!r} (nothing is downloaded)")
    return path


def load_tokenizer(path, padding_side="left"):
    """The tokenizer saved in `path`, padded on `padding_side`, with a pad token.

    A tokenizer saved as a plain ``tokenizers`` object (the course's own) is
    loaded as exactly that; anything else goes through AutoTokenizer. A model
    without a pad token pads with its end-of-sequence token (masked anyway).
    """
    path = Path(path)
    config_file = path / "tokenizer_config.json"
    saved_class = json.loads(config_file.read_text()).get("tokenizer_class") if config_file.exists() else None
    if saved_class in ("PreTrainedTokenizerFast", "TokenizersBackend"):
        tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
    else:
        tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side  # generation needs the prompt's last token at the end
    return tokenizer


def load_policy(name_or_path="tiny", device="cpu", dtype=None):
    """Load a causal LM and its tokenizer: ``model, tokenizer = load_policy("tiny")``.

    name_or_path: "tiny" (the shipped model) or a local folder saved with
    ``save_pretrained`` (config.json, weights, tokenizer files).
    device: "cpu", "cuda", ...; dtype: torch dtype of the weights (default:
    float32 on CPU, the checkpoint's own dtype elsewhere).
    Returns (model in eval mode on `device`, tokenizer padding on the left).
    The model's generation config gets the tokenizer's pad and eos ids.
    """
    path = resolve_model_path(name_or_path)
    if dtype is None and str(device).startswith("cpu"):
        dtype = torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype if dtype is not None else "auto")
    model.to(device).eval()
    tokenizer = load_tokenizer(path)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config.eos_token_id is None:
        model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, tokenizer
