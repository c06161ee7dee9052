"""Partial rollouts for real: the rollout phase of Kimi k1.5 (§2.6.2) run with the model.

``partial_rollout`` keeps the books (segments, buffer, loss mask); this file fills
them with tokens. ``generate_segments`` continues a batch of trajectories by at
most `budget` tokens each, in one batched ``model.generate`` call; on top of it
two rollout phases over the same problems, to compare their throughput:

- ``full_rollouts``, the synchronous baseline: batches of `batch_size` prompts,
  each generated until its longest response ends (or `max_length`);
- ``partial_rollouts``: every iteration fills `slots` rows, the buffered
  trajectories first, then new prompts, and generates at most `budget` tokens.

Layout of a continuation: the row is prompt ids + response ids so far, left-padded
into one batch, so every row's next token is predicted at the last column. HF
``generate``, given the attention mask, derives the positions as
``attention_mask.cumsum(-1) - 1`` (padding at 0), the convention of
``rollout.sequence_logprobs``: padding shifts no position, and a continued
trajectory gets exactly the tokens it would get from generating from the joint
text (the tests check it with greedy decoding). (RoPE sees only relative
positions, so on this Llama it is the attention mask that does the work; the
positions matter for absolute position embeddings.) We work with ids throughout:
decoding and re-tokenizing a response need not give back the same ids.

Idle row-steps. A ``generate`` call over R rows that lasts S decode steps (S new
columns, the first predicted by the prefill) costs R * S row-steps. A row-step is
busy when it produces a token the row keeps (its segment, eos included); it is
idle when the row already emitted its eos and waits for the others, or went past
its own cap (max_length minus its length) and the token is discarded. Over a phase,

    idle = 1 - tokens / sum over calls of (R * S),

the same definition for both phases. The cost of partial rollouts it does not
count: a continued trajectory is prefilled again (prompt + response) each
iteration, since no KV cache survives between iterations (the weights change in
between); that time is in ``seconds`` and so in ``tokens_per_second``.

The prefill. One left-padded forward over R rows costs R x (longest row)
positions, padding included, and on a CPU the prefill is compute-bound: a new
prompt of a dozen tokens next to a trajectory continued for the third time would
be padded to its length. ``prefill_by_length`` prefills rows of similar length
together and hands ``generate`` the merged KV cache, as an inference engine
without padding (vLLM's) would spend only the rows' own positions.
"""

import inspect
import time
from dataclasses import replace

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from ..llm.tasks import TINY_TEMPLATE, make_prompt
from .partial_rollout import PartialRolloutBuffer, Trajectory, add_segment, end_iteration, plan_iteration


def pad_ids(sequences, pad_value, side="left", dtype=torch.long):
    """Pad lists of values to one tensor: (values (B, L), mask (B, L) long, 1 on the real entries).

    side="left" puts every row's last entry in column L-1 (generation, prompts);
    "right" starts every row in column 0 (completions). L is the longest row (0 if none).
    """
    width = max((len(s) for s in sequences), default=0)
    values = torch.full((len(sequences), width), pad_value, dtype=dtype)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for b, s in enumerate(sequences):
        if s:
            cols = slice(width - len(s), width) if side == "left" else slice(0, len(s))
            values[b, cols] = torch.as_tensor(list(s), dtype=dtype)
            mask[b, cols] = 1
    return values, mask  # (B, L), (B, L)


def prompt_token_ids(tokenizer, trajectories, template=TINY_TEMPLATE):
    """Each trajectory's prompt (a problem dict) under `template`, as a list of ids (no special tokens)."""
    texts = [make_prompt(t.prompt, template) for t in trajectories]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


PREFILL_BUCKET = 16  # rows whose lengths lie within this many tokens are prefilled in one forward


def _cache_kwarg(model):
    # transformers 5.24 renamed ``past_key_values`` to ``cache``; the course allows any 5.x
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.no_grad()
def prefill_by_length(model, rows, pad_value, bucket=PREFILL_BUCKET):
    """The KV cache of every row but its last id, rows of similar length prefilled together.

    rows: R lists of ids (each at least one). The rows, sorted by length, are cut
    into groups whose lengths lie within `bucket` of the group's shortest; each
    group is one left-padded forward at its own width (positions counted from each
    row's first id, as ``generate`` counts them), and the keys and values are
    left-padded to the widest group's, where the attention mask hides them as it
    hides the padding of one forward. Returns a ``DynamicCache`` of R rows and
    (longest row - 1) positions, in the order of `rows`, or None when that is 0.
    """
    width = max(map(len, rows)) - 1
    if width == 0:
        return None
    device, kwarg = next(model.parameters()).device, _cache_kwarg(model)
    order = sorted(range(len(rows)), key=lambda b: len(rows[b]))
    groups = []
    for b in order:
        if groups and len(rows[b]) <= len(rows[groups[-1][0]]) + bucket:
            groups[-1].append(b)
        else:
            groups.append([b])
    layers = []  # per layer [keys, values], each (R, heads, width, head_dim), zero where the mask hides them
    for group in groups:
        ids, mask = pad_ids([rows[b][:-1] for b in group], pad_value)  # (n, w)
        if ids.shape[1] == 0:
            continue  # rows of one id: nothing comes before their last one
        cache = DynamicCache()
        model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=True,
              position_ids=(mask.cumsum(-1) - 1).clamp(min=0).to(device), **{kwarg: cache})
        at = torch.tensor(group, device=device)
        for layer, (keys, values, *_) in enumerate(cache):  # (n, heads, w, head_dim)
            if layer == len(layers):
                layers.append([keys.new_zeros(len(rows), keys.shape[1], width, keys.shape[3]) for _ in range(2)])
            layers[layer][0][at, :, width - keys.shape[2]:] = keys  # left-padded to the widest group
            layers[layer][1][at, :, width - keys.shape[2]:] = values
    return DynamicCache(ddp_cache_data=[tuple(kv) for kv in layers])


def _check_int(name, value, low=1):
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_temperature(temperature):
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (log-probs are taken at it, even greedy), got {temperature!r}")


@torch.no_grad()
def generate_segments(model, tokenizer, trajectories, iteration, budget, max_length, temperature=1.0,
                      greedy=False, template=TINY_TEMPLATE):
    """Continue each unfinished trajectory by one segment: (new trajectories, decode_steps).

    trajectories: list of R unfinished ``Trajectory`` whose ``prompt`` is a problem dict;
    iteration: the iteration the segments belong to; budget: tokens per trajectory in
    this iteration; max_length: cap on a whole response (tokens, eos included).
    Row b continues from prompt ids + its response ids and keeps its first
    ``limit_b = min(budget, max_length - len(response_b))`` new tokens, up to and
    including its first eos. ``prefill_by_length`` caches every row but its last
    id, then one ``model.generate`` call with max_new_tokens =
    max_b limit_b = min(budget, max_length - shortest response), sampling at
    `temperature` (top-k and top-p off), or the argmax with ``greedy=True``.
    Each segment stores the sampler's log-probs of its tokens,
    log softmax(logits / temperature)[token] (also when greedy, for comparison).
    The trajectories come back through ``partial_rollout.add_segment``, in order;
    decode_steps = S, the new columns the call generated (it stops when every
    row has its eos). Seed torch before calling for a reproducible sample.
    """
    _check_int("iteration", iteration, low=0)
    _check_int("budget", budget)
    _check_int("max_length", max_length)
    _check_temperature(temperature)
    for t in trajectories:
        if t.finished or t.response_length >= max_length:
            raise ValueError(f"trajectories must be unfinished with a response shorter than max_length="
                             f"{max_length}, got one finished={t.finished} of {t.response_length} tokens")
    if not trajectories:
        return [], 0
    device = next(model.parameters()).device
    eos = tokenizer.eos_token_id
    rows = [p + t.response for p, t in zip(prompt_token_ids(tokenizer, trajectories, template), trajectories)]
    limits = [min(budget, max_length - t.response_length) for t in trajectories]  # (R,)
    input_ids, attention_mask = pad_ids(rows, tokenizer.pad_token_id, side="left")  # (R, C)
    options = {} if greedy else {"temperature": temperature, "top_p": 1.0, "top_k": 0}
    cache = prefill_by_length(model, rows, tokenizer.pad_token_id)  # C - 1 positions: generate starts at the last
    if cache is not None:
        options[_cache_kwarg(model)] = cache
    out = model.generate(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                         max_new_tokens=max(limits), do_sample=not greedy, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=eos, return_dict_in_generate=True, output_logits=True, **options)
    new_ids = out.sequences[:, input_ids.shape[1]:]  # (R, S)
    # output_logits are the raw logits, before the temperature warper: scale them ourselves.
    logits = torch.stack(out.logits, dim=1).float() / temperature  # (R, S, V)
    logp = torch.gather(F.log_softmax(logits, dim=-1), 2, new_ids[..., None])[..., 0]  # (R, S)
    result = []
    for b, t in enumerate(trajectories):
        tokens = new_ids[b, :limits[b]].tolist()
        if eos in tokens:
            tokens = tokens[:tokens.index(eos) + 1]  # stopping is the last action; padding follows it
        t = add_segment(t, tokens, iteration, budget, eos, max_length)
        last = replace(t.segments[-1], logprobs=tuple(logp[b, :len(tokens)].tolist()))
        result.append(replace(t, segments=t.segments[:-1] + (last,)))
    return result, new_ids.shape[1]


def _record(iteration, batch, continued, finished, steps, started):
    tokens = sum(len(t.segments[-1].tokens) for t in batch)
    return {"iteration": iteration, "rows": len(batch), "continued": continued, "new": len(batch) - continued,
            "finished": len(finished), "tokens": tokens, "decode_steps": steps,
            "row_steps": len(batch) * steps, "seconds": time.time() - started}


def _summary(trajectories, records, seconds):
    tokens, row_steps = sum(r["tokens"] for r in records), sum(r["row_steps"] for r in records)
    return {"tokens": tokens, "seconds": seconds, "tokens_per_second": tokens / max(seconds, 1e-9),
            "decode_steps": sum(r["decode_steps"] for r in records),
            "idle": 1.0 - tokens / row_steps if row_steps else 0.0,
            "iterations": records, "trajectories": trajectories}


def _check_phase(problems, rows_name, rows, max_length, temperature):
    if not isinstance(problems, (list, tuple)) or not problems:
        raise ValueError(f"problems must be a non-empty list of problem dicts, got {type(problems).__name__}")
    _check_int(rows_name, rows)
    _check_int("max_length", max_length)
    _check_temperature(temperature)


def full_rollouts(model, tokenizer, problems, batch_size, max_length, temperature=1.0, greedy=False,
                  template=TINY_TEMPLATE):
    """The synchronous rollout phase: batches of `batch_size` problems, each run to its longest response.

    problems: list of n problem dicts, one response each; every batch is one
    ``generate_segments`` call with budget = max_length (nothing is ever cut), so
    it lasts as long as its longest response. Returns a dict: ``tokens``
    (generated, eos included), ``seconds`` (wall), ``tokens_per_second``,
    ``decode_steps`` (summed over calls), ``idle`` (share of idle row-steps, see
    the module docstring), ``iterations`` (one record per batch: rows,
    continued (always 0), new, finished, tokens, decode_steps, row_steps, seconds
    since the start) and ``trajectories`` (the n finished ones, in problem order).
    """
    _check_phase(problems, "batch_size", batch_size, max_length, temperature)
    started, finished, records = time.time(), [], []
    for iteration, first in enumerate(range(0, len(problems), batch_size)):
        batch = [Trajectory(p) for p in problems[first:first + batch_size]]
        batch, steps = generate_segments(model, tokenizer, batch, iteration, max_length, max_length,
                                         temperature, greedy, template)
        finished += batch  # budget = max_length: every trajectory ends here
        records.append(_record(iteration, batch, 0, batch, steps, started))
    return _summary(finished, records, time.time() - started)


def partial_rollouts(model, tokenizer, problems, slots, budget, max_length, temperature=1.0, greedy=False,
                     template=TINY_TEMPLATE):
    """Kimi's rollout phase: at most `budget` tokens per trajectory per iteration, `slots` rows in flight.

    Each iteration ``plan_iteration`` takes every buffered trajectory and then new
    problems (in order) up to `slots` rows; ``generate_segments`` continues them
    by one segment; ``end_iteration`` buffers the unfinished. It runs until every
    problem's response is finished. Same return dict as ``full_rollouts`` (one
    record per iteration, ``continued`` = rows taken from the buffer), with the
    trajectories in the order they finished. With budget >= max_length nothing is
    buffered and it is ``full_rollouts`` with batch_size = slots.
    """
    _check_phase(problems, "slots", slots, max_length, temperature)
    _check_int("budget", budget)
    started, buffer, queue, finished, records = time.time(), PartialRolloutBuffer(), list(problems), [], []
    iteration = 0
    while queue or len(buffer):
        continued = len(buffer)  # <= slots: the buffer holds part of the last batch only
        new, queue = queue[:slots - continued], queue[slots - continued:]
        batch = plan_iteration(new, buffer)
        batch, steps = generate_segments(model, tokenizer, batch, iteration, budget, max_length,
                                         temperature, greedy, template)
        done = end_iteration(batch, buffer)
        finished += done
        records.append(_record(iteration, batch, continued, done, steps, started))
        iteration += 1
    return _summary(finished, records, time.time() - started)
