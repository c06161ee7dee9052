"""A real model on a GPU box: module 08's GRPO steps on a local causal LM, timed (module 15).

    rlllm-course gpu-grpo --model ~/models/Qwen2.5-0.5B-Instruct --steps 5

Each step is ``train_grpo``'s (``llm.grpo``): draw ``prompts_per_step`` training problems,
sample ``group_size`` completions each with ``rollout.generate``, score them with the R1-Zero
rule rewards (accuracy + format), then ``grpo_update`` (group advantages, the reference's
log-probs, one clipped-surrogate step with the k3 KL). The two halves are timed apart
(``scale.throughput.measured_grpo_step``), and every step prints generated tokens per second,
trained tokens per second, seconds and peak memory; the run ends with the totals.

Prompts: an instruct model reads its prompt through its own chat template, with the same user
message as the verl dataset (``scale.verl_data.verl_row``: the R1-Zero instruction, then the
question in words), so this run and ``scripts/verl_grpo.sh`` show the model the same text. A
tokenizer without a chat template gets that message as plain "User: ... Assistant:" text.

Precision: the weights stay float32, the master copy that AdamW updates (at lr = 1e-6 most
updates of a bf16 weight would round away); on a GPU with bf16 both phases run under
``torch.autocast`` in bf16. That is mixed precision, 16 bytes a trained parameter with Adam's
moments, as ``scale.cost`` counts it.

Memory: the update takes the whole batch at once (module 08 has no micro-batches), and its
float32 logits alone take B (T + 1) V * 4 bytes (B = prompts x G rows, T completion tokens,
V the vocabulary): 10 GB for 8 x 8 rows of 256 tokens with Qwen2.5's 151,936 tokens. The run
prints that figure first; lower ``--prompts`` or ``--max-new-tokens`` when memory runs out,
or add ``--gradient-checkpointing`` (transformers' own) to drop the layers' activations.
"""

import copy
from dataclasses import replace
from pathlib import Path

import torch

from .throughput import measured_grpo_step, peak_memory, reset_peak_memory
from .verl_data import verl_row
from ..llm.grpo import TASKS
from ..llm.model import load_policy

GIB = 2 ** 30


def check_model_folder(model):
    """The local folder `model` (str) as a Path; an error naming --model if it is not one."""
    path = Path(model).expanduser()
    if not path.is_dir() or not (path / "config.json").exists():
        raise ValueError(f"model (--model) must be a local folder holding a causal LM saved with save_pretrained "
                         f"(config.json, weights, tokenizer files), got {model!r}; nothing is downloaded")
    return path


def check_device(device):
    """`device` (str), or "cuda" when available and "cpu" otherwise for None; an error naming --device."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device (--device) is {device!r} but CUDA is not available "
                         f"(torch {torch.__version__}, CUDA build: {torch.version.cuda})")
    return device


def chat_prompt(tokenizer, problem):
    """The prompt string for `problem`: verl's user message through the tokenizer's chat template."""
    messages = verl_row(problem, 0, "train")["prompt"]  # [{"role": "user", "content": ...}]
    if tokenizer.chat_template is None:  # a base model: the same message as plain text
        return f"User: {messages[0]['content']}\nAssistant:"
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def gpu_grpo(config, bf16=None, gradient_checkpointing=False, out=print):
    """Run ``config.steps`` timed GRPO steps of ``config.model`` (a local folder) on ``config.device``.

    config: a ``GRPOConfig`` (model, device, task, seed, steps, prompts_per_step, group_size,
    max_new_tokens, lr, beta, log_kl and the loss's settings); its template is not used
    (``chat_prompt``). bf16: autocast in bf16 (None: where the GPU supports it).
    out: where the lines go (print). Returns (model, report) with report = {"steps": a dict per
    step, "total": the same keys over the run, "memory": what peak memory measures}; per step:
    generated_tokens (sum of the completion masks), generation_seconds, generated_per_second,
    trained_tokens, update_seconds, trained_per_second, seconds, peak_memory_bytes,
    generation_flops (achieved FLOP/s), update_flops, reward, accuracy, format.
    """
    check_model_folder(config.model)
    device = check_device(config.device)
    if config.task not in TASKS:
        raise ValueError(f"task (--task) must be one of {sorted(TASKS)}, got {config.task!r}")
    if bf16 is None:
        bf16 = torch.device(device).type == "cuda" and torch.cuda.is_bf16_supported()
    config = replace(config, device=device)
    torch.manual_seed(config.seed)
    model, tokenizer = load_policy(config.model, device=device, dtype=torch.float32)  # float32 master weights
    if gradient_checkpointing:  # transformers' own; renamed "activation checkpointing" in its later 5.x
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable()
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    ref_model = copy.deepcopy(model).eval().requires_grad_(False) if config.beta or config.log_kl else None
    if ref_model is not None and bf16:  # frozen: no master copy needed, 2 bytes a parameter as scale.cost counts
        ref_model.to(torch.bfloat16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.99), weight_decay=0.0)
    problems = TASKS[config.task](config.steps * config.prompts_per_step, seed=config.seed, split="train")
    n_params = sum(p.numel() for p in model.parameters())

    rows = config.prompts_per_step * config.group_size
    logits_bytes = rows * (config.max_new_tokens + 1) * model.config.vocab_size * 4
    name = torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else "CPU"
    out(f"{config.model}: {n_params / 1e6:.1f}M parameters on {device} ({name}), float32 weights, "
        f"bf16 autocast {'on' if bf16 else 'off'}; {config.task}, {config.prompts_per_step} prompts x "
        f"{config.group_size} = {rows} rows of <= {config.max_new_tokens} new tokens; "
        f"the update's float32 logits alone: {logits_bytes / GIB:.1f} GiB")

    steps = []
    for step in range(config.steps):
        torch.manual_seed(config.seed * 1_000_003 + step)  # as train_grpo: the step's samples, reproducible
        batch = problems[step * config.prompts_per_step:(step + 1) * config.prompts_per_step]
        prompts = [chat_prompt(tokenizer, p) for p in batch]
        reset_peak_memory(device)
        precision = torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16)
        log, measured = measured_grpo_step(model, ref_model, optimizer, batch, prompts, tokenizer, config, precision)
        generation_flops, update_flops = measured.achieved_flops_per_second(n_params)
        record = {"step": step + 1, "generated_tokens": measured.generated_tokens,
                  "generation_seconds": measured.generation_seconds,
                  "generated_per_second": measured.generated_per_second,
                  "trained_tokens": measured.trained_tokens, "update_seconds": measured.update_seconds,
                  "trained_per_second": measured.trained_per_second, "seconds": measured.seconds,
                  "peak_memory_bytes": peak_memory(device)[0], "generation_flops": generation_flops,
                  "update_flops": update_flops, "prompt_tokens": measured.prompt_tokens,
                  "reward": log["reward"], "accuracy": log["accuracy"], "format": log["format"]}
        steps.append(record)
        out(_line(f"step {step + 1}/{config.steps}", record)
            + f" | reward {log['reward']:.2f} (accuracy {log['accuracy']:.2f}, format {log['format']:.2f})")

    total = _total(steps, n_params)
    memory = peak_memory(device)[1]
    out(_line(f"total ({config.steps} steps)", total) + f"  [{memory}]")
    return model, {"steps": steps, "total": total, "memory": memory}


def _total(steps, n_params):
    """The run's totals: token and second sums, rates as total tokens / total seconds, the highest peak."""
    total = {key: sum(s[key] for s in steps) for key in
             ("generated_tokens", "generation_seconds", "trained_tokens", "update_seconds", "seconds",
              "prompt_tokens")}
    total["generated_per_second"] = total["generated_tokens"] / total["generation_seconds"]
    total["trained_per_second"] = total["trained_tokens"] / total["update_seconds"]
    total["peak_memory_bytes"] = max(s["peak_memory_bytes"] for s in steps)
    # FLOPs are linear in tokens: the run's FLOPs over its seconds, phase by phase
    total["generation_flops"] = sum(s["generation_flops"] * s["generation_seconds"] for s in steps) / \
        total["generation_seconds"]
    total["update_flops"] = sum(s["update_flops"] * s["update_seconds"] for s in steps) / total["update_seconds"]
    return total


def _line(head, r):
    return (f"{head}: generated {r['generated_tokens']} tokens in {r['generation_seconds']:.2f} s = "
            f"{r['generated_per_second']:.0f} tok/s ({r['generation_flops'] / 1e12:.3g} TFLOP/s), "
            f"trained {r['trained_tokens']} in {r['update_seconds']:.2f} s = {r['trained_per_second']:.0f} tok/s "
            f"({r['update_flops'] / 1e12:.3g} TFLOP/s), {r['seconds']:.2f} s, "
            f"peak memory {r['peak_memory_bytes'] / GIB:.2f} GiB")

