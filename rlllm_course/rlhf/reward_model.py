"""The reward model: the assistant base with a scalar head, read at the last real token (module 12).

r(x, y) is a language model whose last hidden state at the response's final
token goes through a linear head to one number: transformers'
``LlamaForSequenceClassification`` with ``num_labels=1``, the model TRL's
``RewardTrainer`` trains. The body starts from the assistant base (it already
reads sums), the head from small random weights. The text it scores is
prompt + response + eos, right-padded, as TRL tokenizes it: the eos marks
"the response is over", so its hidden state has seen everything.

It is fitted to preference pairs with the Bradley-Terry loss
(``llm.losses.bradley_terry_loss``):

    L = - mean over pairs of log sigmoid(r(x, y_chosen) - r(x, y_rejected))

Pooling. The last real token is found from the attention mask
(``last_token_index``): that works for left and right padding, and when the pad
token is the eos (then transformers' own pooling, the last token that is not
the pad, stops one token early). Positions count real tokens only
(``cumsum - 1``), so left padding does not shift them: a text gets the same
reward however it is padded.

Normalisation. The loss sees only differences, so the rewards' level is
arbitrary; RL wants them centred and on a known scale. ``fit_normalization``
stores the mean and std of the rewards of the base policy's own samples in the
model's config (``reward_mean``, ``reward_std``, saved with it), and ``score``
returns (r - mean) / std: zero mean, unit std under the reference policy.
"""

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import transformers
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification

from ..llm.losses import bradley_terry_loss
from ..llm.model import load_tokenizer, resolve_model_path
from ..llm.sft import batch_order, lr_at, make_optimizer
from ..training import checkpoint_due, load_state, save_checkpoint


def load_reward_model(name_or_path="assistant", seed=0):
    """A reward model and its tokenizer (right padding) from a causal LM's or a reward model's folder.

    From a causal LM (the assistant base) the body's weights are loaded and the
    score head is drawn fresh (normal, std ``initializer_range``) under `seed`;
    from a saved reward model everything is loaded, its normalisation too.
    """
    path = resolve_model_path(name_or_path)
    tokenizer = load_tokenizer(path, padding_side="right")
    torch.manual_seed(seed)  # the score head, when it is new
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # "score.weight newly initialised" is the point, not news
    try:
        rm = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
    finally:
        transformers.logging.set_verbosity(verbosity)
    rm.config.pad_token_id = tokenizer.pad_token_id
    return rm.eval(), tokenizer


def last_token_index(attention_mask):
    """(B,) column of the last 1 in each row of a (B, T) 0/1 mask, padded on either side."""
    if attention_mask.ndim != 2:
        raise ValueError(f"attention_mask must have shape (B, T), got {tuple(attention_mask.shape)}")
    if not attention_mask.any(-1).all():
        raise ValueError("every row of attention_mask needs at least one real token")
    T = attention_mask.shape[1]
    return T - 1 - attention_mask.long().flip(-1).argmax(-1)  # the first 1 from the right


def sequence_rewards(rm, input_ids, attention_mask):
    """(B,) raw rewards: the score head on the hidden state of each row's last real token.

    Gradients flow. Positions are ``attention_mask.cumsum(-1) - 1``, so left
    and right padding give the same reward.
    """
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # (B, T)
    body = getattr(rm, rm.base_model_prefix)  # the transformer under the head ("model" for Llama and Qwen2)
    hidden = body(input_ids=input_ids, attention_mask=attention_mask,
                  position_ids=position_ids).last_hidden_state  # (B, T, H)
    last = hidden[torch.arange(len(hidden)), last_token_index(attention_mask)]  # (B, H)
    return rm.score(last).squeeze(-1)  # (B,)


def reward_inputs(tokenizer, prompts, responses):
    """Token ids and mask of prompt + response + eos for each pair, padded on the tokenizer's side."""
    if len(prompts) != len(responses):
        raise ValueError(f"prompts and responses must have the same length, got {len(prompts)} and {len(responses)}")
    texts = [p + r + tokenizer.eos_token for p, r in zip(prompts, responses)]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    return enc["input_ids"], enc["attention_mask"]


@torch.no_grad()
def score(rm, tokenizer, prompts, responses, batch_size=64, normalized=True):
    """(B,) rewards of the responses to their prompts; normalised with the model's stored mean and std.

    Batches of 64 rows: on one CPU thread they were faster than 256 and took half the memory.
    """
    out = []
    for i in range(0, len(prompts), batch_size):
        input_ids, attention_mask = reward_inputs(tokenizer, prompts[i:i + batch_size], responses[i:i + batch_size])
        out.append(sequence_rewards(rm, input_ids, attention_mask))
    rewards = torch.cat(out) if out else torch.zeros(0)
    if normalized:
        rewards = (rewards - getattr(rm.config, "reward_mean", 0.0)) / getattr(rm.config, "reward_std", 1.0)
    return rewards


def fit_normalization(rm, tokenizer, prompts, responses):
    """Store the mean and std of the raw rewards of (prompt, response) samples in ``rm.config``.

    Give it the reference policy's own samples: ``score`` then has zero mean
    and unit std under that policy. Returns (mean, std).
    """
    raw = score(rm, tokenizer, prompts, responses, normalized=False)
    if len(raw) < 2:
        raise ValueError(f"need at least two samples to fit a normalisation, got {len(raw)}")
    mean, std = raw.mean().item(), raw.std().item()
    rm.config.reward_mean, rm.config.reward_std = mean, max(std, 1e-6)
    return mean, std


def pairwise_accuracy(chosen, rejected):
    """Share of pairs whose chosen response gets the higher reward; a tie counts half.

    chosen, rejected: (B,) rewards. Half a point for a tie keeps a constant
    reward model at 50%, as a coin would be, instead of 0% or 100%. (The
    training loss's ``rm/accuracy`` counts a tie as 0, as TRL's metric does; with
    float rewards of a trained model ties do not happen.)
    """
    if chosen.ndim != 1 or chosen.shape != rejected.shape or not len(chosen):
        raise ValueError(f"chosen and rejected must both have shape (B,) with B > 0, got "
                         f"{tuple(chosen.shape)} and {tuple(rejected.shape)}")
    return ((chosen > rejected).float() + 0.5 * (chosen == rejected).float()).mean().item()


def pair_rewards(rm, tokenizer, pairs, batch_size=64):
    """(chosen, rejected): the raw rewards of both sides of every pair, two (N,) tensors."""
    prompts = [p["prompt"] for p in pairs]
    return (score(rm, tokenizer, prompts, [p["chosen"] for p in pairs], batch_size, normalized=False),
            score(rm, tokenizer, prompts, [p["rejected"] for p in pairs], batch_size, normalized=False))


@dataclass
class RewardConfig:
    seed: int = 0
    epochs: float = 1.0  # passes over the pairs; steps = ceil(epochs * N / batch_size)
    batch_size: int = 32  # pairs per step: 2 * batch_size sequences through the model
    lr: float = 3e-4
    warmup_steps: int = 10  # linear warm-up, then cosine decay to 10% of lr (llm.sft.lr_at)
    weight_decay: float = 0.0
    center_coefficient: float = 0.0  # TRL's center_rewards_coefficient (None there = 0 here)
    max_grad_norm: float = 1.0
    checkpoint_dir: str = ""  # "" disables checkpoints; otherwise resumes from the last one
    checkpoint_every: int = 50
    eval_every: int = 0  # steps between held-out accuracies (0: none); the last step is always evaluated
    num_threads: int = 2


def train_reward_model(rm, tokenizer, pairs, config=RewardConfig(), progress=True, eval_pairs=None):
    """Fit `rm` in place to `pairs` with the Bradley-Terry loss; return the per-step history.

    pairs: list of {"prompt", "chosen", "rejected"} dicts (a "margin" key, if
    every pair has one, enters the loss as in TRL). Each step runs the chosen
    and the rejected responses of ``batch_size`` pairs through the model as one
    batch of 2B rows (rows 0..B-1 chosen), and takes one clipped AdamW step.
    With `eval_pairs` and ``eval_every`` set, every ``eval_every`` steps and
    at the end the entry also holds "eval/accuracy" (``pairwise_accuracy`` on them).
    Returns a list of {"step", "loss", "rm/accuracy", "rm/margin", "lr", "seconds"}.
    """
    if not pairs or any(k not in p for p in pairs for k in ("prompt", "chosen", "rejected")):
        raise ValueError("pairs must be a non-empty list of dicts with 'prompt', 'chosen' and 'rejected'")
    torch.set_num_threads(config.num_threads)
    n, B = len(pairs), config.batch_size
    steps = max(1, math.ceil(config.epochs * n / B))
    order = batch_order(n, steps, B, config.seed)
    margins = torch.tensor([float(p["margin"]) for p in pairs]) if all("margin" in p for p in pairs) else None
    optimizer = make_optimizer(rm, config.lr, config.weight_decay)
    start, history = 0, []
    path = Path(config.checkpoint_dir) / "reward_model.pt" if config.checkpoint_dir else None
    state = load_state(path)
    if state is not None:
        rm.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history = state["step"], state["history"]
    rm.train()
    clock = time.time() - (history[-1]["seconds"] if history else 0.0)
    bar = tqdm(range(start, steps), desc="reward model", disable=not progress, initial=start, total=steps)
    for step in bar:
        idx = order[step * B:(step + 1) * B]
        lr = lr_at(step, steps, config.lr, config.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        prompts = [pairs[i]["prompt"] for i in idx]
        input_ids, attention_mask = reward_inputs(
            tokenizer, prompts * 2, [pairs[i]["chosen"] for i in idx] + [pairs[i]["rejected"] for i in idx])
        rewards = sequence_rewards(rm, input_ids, attention_mask)  # (2B,)
        loss, metrics = bradley_terry_loss(rewards[:len(idx)], rewards[len(idx):],
                                           margin=margins[idx] if margins is not None else 0.0,
                                           center_coefficient=config.center_coefficient)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(rm.parameters(), config.max_grad_norm)
        optimizer.step()
        history.append({"step": step, "loss": loss.item(), "rm/accuracy": metrics["rm/accuracy"],
                        "rm/margin": metrics["rm/margin"], "lr": lr, "seconds": time.time() - clock})
        if eval_pairs and config.eval_every and ((step + 1) % config.eval_every == 0 or step + 1 == steps):
            rm.eval()
            history[-1]["eval/accuracy"] = pairwise_accuracy(*pair_rewards(rm, tokenizer, eval_pairs))
            rm.train()
        bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{metrics['rm/accuracy']:.2f}")
        if path is not None and checkpoint_due(step, config.checkpoint_every, steps):
            save_checkpoint(path, {"model": rm.state_dict(), "optimizer": optimizer.state_dict(),
                                   "step": step + 1, "history": history, "config": asdict(config)})
    rm.eval()
    return history
