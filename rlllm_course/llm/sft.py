"""Supervised fine-tuning: next-token cross-entropy on the response tokens only.

The loss of R1's cold start, of rejection-sampling fine-tuning and of
distillation (lecture §3.1), and of the course's pretraining. One example is a
(prompt, response) pair of strings; the model reads ``prompt + response + <eos>``
and is trained to predict the response and its end, never the prompt (which is
given, not generated) nor the padding:

    L = - sum_{t in response} log pi(y_t | prompt, y_<t) / |response tokens|

averaged over every response token of the batch (each token weighs the same;
the eos counts, since stopping is learned too).
"""

import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..training import checkpoint_due, load_state, save_checkpoint


def response_batch(prompts, responses, tokenizer):
    """Tokenize (prompt, response + eos) pairs, right-padded, labels on the response only.

    prompts, responses: lists of N strings. Returns input_ids, attention_mask,
    labels: (N, L) long; labels are the input ids on the response and its eos,
    -100 on the prompt and on padding (Hugging Face's "ignore" label). Right
    padding starts every row at position 0, so no position ids are needed.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"prompts and responses must have the same length, got "
                         f"{len(prompts)} and {len(responses)}")
    rows = []
    for prompt, response in zip(prompts, responses):
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        response_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append((prompt_ids, response_ids))
    L = max(len(p) + len(r) for p, r in rows)
    input_ids = torch.full((len(rows), L), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), L), -100, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), L), dtype=torch.long)
    for i, (p, r) in enumerate(rows):
        input_ids[i, :len(p) + len(r)] = torch.tensor(p + r)
        labels[i, len(p):len(p) + len(r)] = torch.tensor(r)
        attention_mask[i, :len(p) + len(r)] = 1
    return input_ids, attention_mask, labels


def sft_loss(logits, labels, reduction="mean"):
    """Cross-entropy of the labelled tokens: the response-only SFT loss.

    logits: (N, L, V) the model's outputs on input_ids; labels: (N, L) long, -100
    where no loss is taken. The logit at position t predicts the token at t + 1,
    so logits[:, :-1] are scored against labels[:, 1:]. reduction: "mean" over the
    labelled tokens (the loss) or "sum" (for accumulating over micro-batches).
    """
    if logits.shape[:2] != labels.shape:
        raise ValueError(f"labels must have shape (N, L) = {tuple(logits.shape[:2])}, "
                         f"got {tuple(labels.shape)}")
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                           ignore_index=-100, reduction=reduction)


def length_split(lengths):
    """Split rows sorted by length in two groups that minimize the padded area.

    A batch of many short rows and a few long ones costs the long length on every
    row; two micro-batches cost far less, with the same gradient. Returns
    (short_rows, long_rows) as index lists (long_rows may be empty).
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n, top = len(order), lengths[order[-1]]
    cost = [k * lengths[order[k - 1]] + (n - k) * top if k else n * top for k in range(n)]
    k = min(range(n), key=cost.__getitem__)
    return order[:k], order[k:]


@dataclass
class SFTConfig:
    seed: int = 0
    epochs: float = 3.0  # passes over the data (fractions allowed); steps = epochs * N / batch_size
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 20  # linear warm-up, then cosine decay to 10% of lr
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    checkpoint_dir: str = ""  # "" disables checkpoints; otherwise resumes from the last one
    checkpoint_every: int = 100
    num_threads: int = 1


def lr_at(step, total_steps, lr, warmup_steps):
    """Learning rate at `step`: linear warm-up, then cosine decay to 10% of `lr`."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def batch_order(n, steps, batch_size, seed):
    """The example indices of every step, concatenated: epochs of a fresh shuffle each, from `seed`.

    Step t reads ``order[t * batch_size:(t + 1) * batch_size]``; the order is a
    function of the seed only, so a resumed run reads the same batches.
    """
    order, rng = [], random.Random(seed)
    while len(order) < steps * batch_size:
        epoch = list(range(n))
        rng.shuffle(epoch)
        order += epoch
    return order


def make_optimizer(model, lr, weight_decay):
    """AdamW with weight decay on matrices only (norm weights and biases are not decayed)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.98))


def train_sft(model, tokenizer, prompts, responses, config=SFTConfig(), progress=True, desc="sft"):
    """Fine-tune `model` in place on (prompt, response) pairs; return the per-step losses.

    The pairs are shuffled once per epoch from ``config.seed``. With
    ``checkpoint_dir`` set the run saves every ``checkpoint_every`` steps and, run
    again, resumes from the last save with the same data order (it is derived from
    the seed and the step). Returns a list of {"step", "loss", "lr", "seconds"}.
    """
    if len(prompts) != len(responses) or not prompts:
        raise ValueError(f"prompts and responses must be non-empty lists of the same length, got "
                         f"{len(prompts)} and {len(responses)}")
    torch.set_num_threads(config.num_threads)
    n, B = len(prompts), config.batch_size
    steps = max(1, math.ceil(config.epochs * n / B))
    order = batch_order(n, steps, B, config.seed)
    optimizer = make_optimizer(model, config.lr, config.weight_decay)
    start, history = 0, []
    path = Path(config.checkpoint_dir) / "sft.pt" if config.checkpoint_dir else None
    state = load_state(path)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history = state["step"], state["history"]
    torch.manual_seed(config.seed)
    model.train()
    clock = time.time() - (history[-1]["seconds"] if history else 0.0)
    bar = tqdm(range(start, steps), desc=desc, disable=not progress, initial=start, total=steps)
    for step in bar:
        idx = order[step * B:(step + 1) * B]
        input_ids, attention_mask, labels = response_batch(
            [prompts[i] for i in idx], [responses[i] for i in idx], tokenizer)
        lr = lr_at(step, steps, config.lr, config.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        n_tokens, loss = (labels[:, 1:] != -100).sum(), 0.0
        for rows in length_split(attention_mask.sum(-1).tolist()):
            if not rows:
                continue
            width = int(attention_mask[rows].sum(-1).max())  # right-padded: trim to the longest
            part = sft_loss(model(input_ids=input_ids[rows, :width],
                                  attention_mask=attention_mask[rows, :width]).logits,
                            labels[rows, :width], reduction="sum") / n_tokens
            part.backward()  # the sum over both parts is the batch's mean loss
            loss += part.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        history.append({"step": step, "loss": loss, "lr": lr, "seconds": time.time() - clock})
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss:.3f}")
        if path is not None and checkpoint_due(step, config.checkpoint_every, steps):
            save_checkpoint(path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "step": step + 1, "history": history, "config": asdict(config)})
    model.eval()
    return history


def pretrain_sft(model, tokenizer, prompts, responses, config, progress=True, checkpoint_dir=""):
    """One epoch of ``train_sft`` over a pretraining mixture, with a pretraining config's settings.

    config: a base's pretraining config (``seed``, ``batch_size``, ``lr``,
    ``warmup_steps``, ``weight_decay``, ``num_threads``); the mixture holds
    exactly ``steps * batch_size`` examples, so one epoch is ``steps`` steps.
    """
    sft = SFTConfig(seed=config.seed, epochs=1.0, batch_size=config.batch_size, lr=config.lr,
                    warmup_steps=config.warmup_steps, weight_decay=config.weight_decay,
                    num_threads=config.num_threads, checkpoint_dir=str(checkpoint_dir))
    return train_sft(model, tokenizer, prompts, responses, sft, progress=progress, desc="pretrain")
