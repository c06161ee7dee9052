"""Direct Preference Optimization: the training loop on (prompt, chosen, rejected) pairs.

DPO (Rafailov et al., 2023) solves the KL-regularised RLHF objective without a
reward model or sampling: the policy's own log-ratio to a frozen reference is
an implicit reward, r(y) = beta * (log pi(y | x) - log pi_ref(y | x)), fitted to
the preferences by the Bradley-Terry loss (``losses.dpo_loss``):

    L = - mean over pairs of log sigmoid(r(y_chosen) - r(y_rejected))

One pair is a dict {"prompt", "chosen", "rejected"} of strings (TRL's schema, as
``reasoning.long2short.dpo_pairs`` builds them): the templated prompt and two
completions without the eos. log pi(y | x) is the sum over the completion's
tokens and its eos (stopping is part of the response), never the prompt's.
The pieces of the batch (tokenizing, micro-batches, the learning-rate schedule,
the optimizer) are those of ``sft``.

When chosen and rejected share most of their tokens, DPO can raise the margin by
lowering both log-probs and hand the freed probability to answers in neither (the
chosen log-prob falls; Pal et al. 2024, Pang et al. 2024). ``sft_weight`` adds the
chosen responses' negative log-likelihood per token, as TRL does with
``loss_type=["sigmoid", "sft"]`` and ``loss_weights=[1, sft_weight]`` (RPO):

    L = L_DPO + sft_weight * (- sum of log pi(chosen tokens) / number of chosen tokens)
"""

import copy
import json
import math
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .losses import dpo_loss
from .sft import batch_order, length_split, lr_at, make_optimizer, response_batch
from ..training import checkpoint_due, load_state, save_checkpoint

PAIR_KEYS = ("prompt", "chosen", "rejected")


@dataclass
class DPOConfig:
    seed: int = 0
    epochs: float = 2.0  # passes over the pairs; steps = ceil(epochs * N / batch_size)
    batch_size: int = 16  # pairs per step (2 * batch_size sequences through the policy)
    lr: float = 3e-4  # the tiny models move little at 1e-4 and overshoot past 1e-3
    warmup_steps: int = 5  # linear warm-up, then cosine decay to 10% of lr (sft.lr_at)
    weight_decay: float = 0.0  # DPO's anchor is the reference, not zero weights
    beta: float = 0.1  # scale of the implicit reward: small beta lets the policy drift further
    sft_weight: float = 0.0  # weight of the chosen responses' per-token NLL (TRL's "sft" loss term)
    max_grad_norm: float = 1.0
    checkpoint_dir: str = ""  # "" disables checkpoints; otherwise resumes from the last one
    checkpoint_every: int = 50
    num_threads: int = 1  # one thread is fastest for the tiny models on a CPU
    device: str = "cpu"


def sequence_logps_from_logits(logits, labels):
    """Sequence log-probabilities sum_t log pi(y_t | x, y_<t) from a model's logits.

    logits: (N, L, V) of a causal LM on (N, L) rows; labels: (N, L) long, -100 on the
    prompt and on padding, the token ids on the response and its eos. The logit at
    position t predicts the token at t + 1, so position 0 is never scored (labels[:, 0]
    must be -100). Log-softmax in float32 at least. Returns (N,), with gradients.
    """
    if logits.ndim != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(f"logits must have shape (N, L, V) and labels (N, L), got {tuple(logits.shape)} and "
                         f"{tuple(labels.shape)}")
    if (labels[:, 0] != -100).any():
        raise ValueError("labels[:, 0] must be -100: no logit predicts the first token of a row")
    dtype = torch.promote_types(logits.dtype, torch.float32)
    logp = F.log_softmax(logits[:, :-1].to(dtype), dim=-1)  # (N, L-1, V): predictions of tokens 1 .. L-1
    targets = labels[:, 1:]  # (N, L-1)
    mask = targets != -100
    token_logp = torch.gather(logp, 2, targets.clamp(min=0)[..., None])[..., 0]  # (N, L-1)
    return (token_logp * mask).sum(-1)  # (N,)


def sequence_logps(model, input_ids, attention_mask, labels):
    """Sequence log-probabilities log pi(y | x) = sum_t log pi(y_t | x, y_<t) of the labelled tokens.

    input_ids, attention_mask, labels: (N, L) long, right-padded as
    ``sft.response_batch`` returns them; labels are -100 on the prompt and on
    padding, the token ids on the response and its eos (``sequence_logps_from_logits``).
    Returns (N,) float, with gradients (wrap in ``torch.no_grad()`` for a reference).
    Right padding starts every row at position 0, so no position ids are needed,
    and the padding after a row cannot change its log-probs (attention is causal).
    """
    if not (input_ids.ndim == 2 and input_ids.shape == attention_mask.shape == labels.shape):
        raise ValueError(f"input_ids, attention_mask and labels must all have shape (N, L), got "
                         f"{tuple(input_ids.shape)}, {tuple(attention_mask.shape)}, {tuple(labels.shape)}")
    if (labels[:, 0] != -100).any():
        raise ValueError("labels[:, 0] must be -100: no logit predicts the first token of a row")
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    return sequence_logps_from_logits(logits, labels)  # (N,)


def batch_logps(model, tokenizer, prompts, responses):
    """(N,) log pi(response + eos | prompt) of N (prompt, response) strings, on the model's device.

    Rows go through in the two length-sorted micro-batches of ``sft.length_split``
    (less padding, same values), and come back in the input order.
    """
    device = next(model.parameters()).device
    input_ids, attention_mask, labels = response_batch(prompts, responses, tokenizer)
    rows_seen, parts = [], []
    for rows in length_split(attention_mask.sum(-1).tolist()):
        if not rows:
            continue
        width = int(attention_mask[rows].sum(-1).max())  # right-padded: trim to the longest
        parts.append(sequence_logps(model, input_ids[rows, :width].to(device),
                                    attention_mask[rows, :width].to(device), labels[rows, :width].to(device)))
        rows_seen += rows
    inverse = torch.tensor(rows_seen, device=device).argsort()  # (N,) undoes the sort by length
    return torch.cat(parts)[inverse]  # (N,)


def check_pairs(pairs):
    """Fail with the offending pair's index unless `pairs` is a non-empty list of valid DPO pairs."""
    if not isinstance(pairs, (list, tuple)) or not pairs:
        got = f"an empty {type(pairs).__name__}" if isinstance(pairs, (list, tuple)) else type(pairs).__name__
        raise ValueError(f"pairs must be a non-empty list of {{'prompt', 'chosen', 'rejected'}} dicts, got {got}")
    for i, pair in enumerate(pairs):
        if not isinstance(pair, dict) or any(key not in pair for key in PAIR_KEYS):
            raise ValueError(f"pairs[{i}] must be a dict with keys {PAIR_KEYS}, got {pair!r}")
        if not all(isinstance(pair[key], str) for key in PAIR_KEYS):
            raise ValueError(f"pairs[{i}]: prompt, chosen and rejected must be strings, got {pair!r}")
        if not pair["prompt"]:
            raise ValueError(f"pairs[{i}]: prompt must be non-empty "
                             "(its last token predicts the response's first)")
        if pair["chosen"] == pair["rejected"]:
            raise ValueError(f"pairs[{i}]: chosen and rejected are the same text {pair['chosen']!r}; "
                             "the pair carries no preference")


def check_config(config):
    """Fail with the field's name on a DPOConfig that cannot train (beta <= 0, no pairs per step, ...)."""
    if not config.beta > 0:
        raise ValueError(f"beta must be > 0 (the implicit reward is beta * log-ratio), got {config.beta}")
    if not (isinstance(config.batch_size, int) and config.batch_size >= 1):
        raise ValueError(f"batch_size must be a positive integer (pairs per step), got {config.batch_size!r}")
    if not config.sft_weight >= 0:
        raise ValueError(f"sft_weight must be >= 0 (the weight of the chosen responses' NLL), got {config.sft_weight}")
    if not config.epochs > 0:
        raise ValueError(f"epochs must be > 0, got {config.epochs}")
    if not (config.lr >= 0 and config.max_grad_norm > 0 and config.weight_decay >= 0):
        raise ValueError(f"need lr >= 0, max_grad_norm > 0 and weight_decay >= 0, got lr={config.lr}, "
                         f"max_grad_norm={config.max_grad_norm}, weight_decay={config.weight_decay}")
    if not (isinstance(config.checkpoint_every, int) and config.checkpoint_every >= 1):
        raise ValueError(f"checkpoint_every must be a positive integer, got {config.checkpoint_every!r}")


def train_dpo(model, tokenizer, pairs, config=DPOConfig(), ref_model=None, progress=True, evaluator=None,
              eval_every=0):
    """Train `model` in place with DPO on `pairs`; return the per-step history.

    pairs: list of {"prompt", "chosen", "rejected"} string dicts (completions
    without the eos). ref_model: the frozen pi_ref; default a deep copy of `model`
    as it is at the call. The reference log-probs of every pair are computed once,
    up front, under no_grad: the reference never changes, so recomputing them each
    step would cost a forward for nothing, and the reference model is then not
    needed during training (nor kept in memory). They are saved in the checkpoint,
    so a resumed run scores against the *original* reference even when it is
    handed the partly trained model again (a checkpoint made on other pairs is refused).
    `model` is moved to ``config.device``; a given ref_model is run where it is.
    Each step takes ``batch_size`` pairs (shuffled per epoch from ``seed``), runs
    chosen and rejected through the policy together, and takes one clipped AdamW
    step on ``losses.dpo_loss`` (+ ``sft_weight`` times the chosen NLL) with the
    ``sft.lr_at`` schedule.
    Returns a list of {"step", "loss" (the one minimised), "dpo/loss", "dpo/sft_nll"
    (per chosen token, logged whatever the weight), "dpo/reward_chosen",
    "dpo/reward_rejected", "dpo/accuracy", "dpo/margin", "dpo/logp_chosen",
    "dpo/logp_rejected" (mean policy log-probs), "lr", "grad_norm" (before
    clipping), "seconds", "eval_seconds" (the part of them spent evaluating)}, and every
    ``eval_every`` steps (and after the last) ``evaluator(model)``'s dict of figures under
    ``eval/`` keys (model in eval mode, then back to training).
    """
    check_pairs(pairs)
    check_config(config)
    torch.set_num_threads(config.num_threads)
    model.to(config.device)
    n, B = len(pairs), config.batch_size
    steps = max(1, math.ceil(config.epochs * n / B))
    order = batch_order(n, steps, B, config.seed)
    prompts, chosen, rejected = ([p[key] for p in pairs] for key in PAIR_KEYS)
    chosen_tokens = (response_batch(prompts, chosen, tokenizer)[2] != -100).sum(-1).to(config.device)  # (N,) eos in
    # identifies the data a checkpoint's reference log-probs belong to
    fingerprint = zlib.crc32(json.dumps([prompts, chosen, rejected]).encode())
    optimizer = make_optimizer(model, config.lr, config.weight_decay)
    start, history = 0, []
    path = Path(config.checkpoint_dir) / "dpo.pt" if config.checkpoint_dir else None
    state = load_state(path)
    if state is not None:
        if state["fingerprint"] != fingerprint:
            raise ValueError(f"the checkpoint in {config.checkpoint_dir} was trained on other pairs")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history = state["step"], state["history"]
        ref_chosen, ref_rejected = state["ref_chosen"], state["ref_rejected"]
    else:
        ref = ref_model if ref_model is not None else copy.deepcopy(model)
        ref.eval()
        with torch.no_grad():
            ref_chosen, ref_rejected = [], []
            for i in range(0, n, B):  # B pairs = 2B sequences per forward, as in training
                logps = batch_logps(ref, tokenizer, prompts[i:i + B] * 2, chosen[i:i + B] + rejected[i:i + B])
                ref_chosen.append(logps[:len(logps) // 2])
                ref_rejected.append(logps[len(logps) // 2:])
        ref_chosen = torch.cat(ref_chosen).cpu()  # (N,)
        ref_rejected = torch.cat(ref_rejected).cpu()  # (N,)
        del ref  # a deep copy is freed here; a given ref_model is only read
    ref_chosen, ref_rejected = ref_chosen.to(config.device), ref_rejected.to(config.device)

    model.train()
    clock = time.time() - (history[-1]["seconds"] if history else 0.0)
    eval_seconds = history[-1].get("eval_seconds", 0.0) if history else 0.0
    bar = tqdm(range(start, steps), desc="dpo", disable=not progress, initial=start, total=steps)
    for step in bar:
        torch.manual_seed(config.seed * 1_000_003 + step)  # dropout, if any, reproducible on resume
        idx = order[step * B:(step + 1) * B]
        lr = lr_at(step, steps, config.lr, config.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        # chosen and rejected in one batch of 2B rows: rows 0..B-1 chosen, B..2B-1 rejected
        logps = batch_logps(model, tokenizer, [prompts[i] for i in idx] * 2,
                            [chosen[i] for i in idx] + [rejected[i] for i in idx])  # (2B,)
        policy_chosen, policy_rejected = logps[:len(idx)], logps[len(idx):]  # (B,), (B,)
        loss, metrics = dpo_loss(policy_chosen, policy_rejected, ref_chosen[idx], ref_rejected[idx],
                                 beta=config.beta)
        nll = -policy_chosen.sum() / chosen_tokens[idx].sum()  # per chosen token, over the batch
        if config.sft_weight:
            loss = loss + config.sft_weight * nll
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        log = {"step": step, **metrics, "loss": loss.item(), "dpo/sft_nll": nll.item(),
               "dpo/logp_chosen": policy_chosen.mean().item(),
               "dpo/logp_rejected": policy_rejected.mean().item(), "lr": lr,
               "grad_norm": grad_norm.item()}
        if evaluator is not None and eval_every and ((step + 1) % eval_every == 0 or step + 1 == steps):
            started = time.time()
            model.eval()
            log.update({f"eval/{k}": v for k, v in evaluator(model).items()})
            model.train()
            eval_seconds += time.time() - started
        log["seconds"], log["eval_seconds"] = time.time() - clock, eval_seconds
        history.append(log)
        bar.set_postfix(loss=f"{log['dpo/loss']:.3f}", acc=f"{log['dpo/accuracy']:.2f}",
                        margin=f"{log['dpo/margin']:.3f}")
        if path is not None and checkpoint_due(step, config.checkpoint_every, steps):
            save_checkpoint(path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "step": step + 1, "history": history, "config": asdict(config),
                                   "ref_chosen": ref_chosen.cpu(), "ref_rejected": ref_rejected.cpu(),
                                   "fingerprint": fingerprint})
    model.eval()
    return history
