"""Pretraining the course's tiny model: a weak but promising base for R1-Zero.

The base model should be like a small pretrained LM before RL: it has seen the
right reasoning (column-by-column addition with carries) but also a popular
wrong one (the same columns, carries forgotten), and it mostly answers without
the R1-Zero format. So greedy pass@1 is low, the format is rare, yet correct
well-formatted answers appear among samples (pass@8 well above pass@1): the
situation in which rule-based RL works. Response formats, per example:

| share | response (after the prompt "Q:478+356\\nA:") |
|---|---|
| 25% | ``<think>8+6=14,7+5+1=13,4+3+1=8</think><answer>834</answer>`` |
| 5%  | ``<think>...</think>834`` |
| 45% | ``<answer>834</answer>`` |
| 25% | ``834`` |

and, independently, half the examples use the forgot-the-carry trace and its
answer. Every response ends with ``<eos>``. The first token is then <answer>
with probability 0.45 against 0.30 for <think>: a margin wider than the model's
estimation error (with 0.40 against 0.35 the trained model put <think> first
and its greedy path was the chain of thought, right half of the time), so the
base's greedy path is the answer-only one, which is almost always wrong
(a sum without its column-by-column steps is hard for this model). The shipped
base: greedy pass@1 5.4%, format 0.8%, sampled pass@8 78% (base_metrics.json).
The loss is next-token cross-entropy on the response tokens only (the prompt
is given, not learned).
"""

import random
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .model import new_model
from .sft import lr_at as sft_lr_at, make_optimizer, response_batch
from .tasks import TINY_TEMPLATE, addition_problems, make_prompt
from .tokenizer import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN

FORMATS = ("think_answer", "think_bare", "answer", "bare")


@dataclass
class PretrainConfig:
    seed: int = 0
    steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-3
    warmup_steps: int = 100  # linear warm-up, then cosine decay to 10% of lr
    weight_decay: float = 0.01
    buggy_fraction: float = 0.5  # share of examples with the forgot-the-carry trace
    format_mix: tuple = (0.25, 0.05, 0.45, 0.25)  # shares of FORMATS, in order
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 512
    num_threads: int = 1  # one thread is fastest for a model this small


def format_response(problem, fmt, buggy):
    """The response text for `problem` in format `fmt` (one of FORMATS), buggy or not."""
    think = problem["think_buggy"] if buggy else problem["think"]
    answer = problem["buggy_answer"] if buggy else problem["answer"]
    return {
        "think_answer": f"{THINK_OPEN}{think}{THINK_CLOSE}{ANSWER_OPEN}{answer}{ANSWER_CLOSE}",
        "think_bare": f"{THINK_OPEN}{think}{THINK_CLOSE}{answer}",
        "answer": f"{ANSWER_OPEN}{answer}{ANSWER_CLOSE}",
        "bare": answer,
    }[fmt]


def make_batch(problems, tokenizer, rng, config):
    """Tokenized (prompt + response + eos) batch with labels on the response only.

    Each problem gets a format drawn from ``config.format_mix`` and, with probability
    ``config.buggy_fraction``, the forgot-the-carry trace. Returns input_ids,
    attention_mask, labels: (B, L) long, right-padded, labels -100 on the prompt
    and on padding (``sft.response_batch``).
    """
    responses = []
    for problem in problems:
        fmt = rng.choices(FORMATS, weights=config.format_mix)[0]
        responses.append(format_response(problem, fmt, rng.random() < config.buggy_fraction))
    return response_batch([make_prompt(p, TINY_TEMPLATE) for p in problems], responses, tokenizer)


def lr_at(step, config):
    """Learning rate at `step`: linear warm-up, cosine decay to 10% of ``config.lr``."""
    return sft_lr_at(step, config.steps, config.lr, config.warmup_steps)


def pretrain(tokenizer, config=PretrainConfig(), progress=True):
    """Train a tiny Llama from scratch on the addition mixture; return it in eval mode.

    Reproducible from ``config.seed`` (weights, data order, formats) on one CPU thread.
    Training problems come from the train split only (``tasks.addition_problems``).
    """
    torch.set_num_threads(config.num_threads)
    rng = random.Random(config.seed)
    model = new_model(tokenizer, config)
    problems = addition_problems(config.steps * config.batch_size, seed=config.seed, split="train")
    optimizer = make_optimizer(model, config.lr, config.weight_decay)
    model.train()
    bar = tqdm(range(config.steps), desc="pretrain", disable=not progress)
    for step in bar:
        batch = problems[step * config.batch_size:(step + 1) * config.batch_size]
        input_ids, attention_mask, labels = make_batch(batch, tokenizer, rng, config)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return model.eval()
