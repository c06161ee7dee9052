"""Evaluation of a policy on held-out problems: greedy pass@1, format rate, pass@k.

Greedy pass@1 is the accuracy of the argmax completion; sampled pass@k uses n
samples per problem at the sampling temperature and the unbiased estimator
``rollout.pass_at_k``. Both count an answer only inside ``<answer>`` tags.
"""

import torch

from .rewards import accuracy_reward, format_reward
from .rollout import generate, pass_at_k
from .tasks import TINY_TEMPLATE, make_prompt


@torch.no_grad()
def evaluate(model, tokenizer, problems, template=TINY_TEMPLATE, n_samples=0, k=8,
             temperature=1.0, max_new_tokens=48, batch_size=100):
    """Greedy pass@1, format rate and mean completion length; sampled pass@k if n_samples.

    problems: list of problem dicts; n_samples: samples per problem for pass@k
    (0 skips it; needs n_samples >= k). Returns a dict of floats:
    ``pass@1`` (greedy accuracy), ``format`` (greedy format rate), ``length``
    (mean greedy completion tokens, eos included) and, when sampled,
    ``pass@{k}`` and ``sample_accuracy`` (mean accuracy of the samples).
    Restores the model's train/eval mode.
    """
    was_training = model.training
    model.eval()
    correct, formatted, lengths, passk, sampled = [], [], [], [], []
    for start in range(0, len(problems), batch_size):
        chunk = problems[start:start + batch_size]
        prompts = [make_prompt(p, template) for p in chunk]
        out = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, greedy=True)
        correct.append(accuracy_reward(out.completions, chunk))
        formatted.append(format_reward(out.completions))
        lengths.append(out.completion_mask.sum(-1).float().cpu())
        if n_samples:
            group = max(1, batch_size // n_samples)  # keep B = problems * samples near batch_size
            for s in range(0, len(chunk), group):
                sub = chunk[s:s + group]
                out = generate(model, tokenizer, prompts[s:s + group], group_size=n_samples,
                               max_new_tokens=max_new_tokens, temperature=temperature)
                acc = accuracy_reward(out.completions, [p for p in sub for _ in range(n_samples)])
                sampled.append(acc)
                for c in acc.view(len(sub), n_samples).sum(-1).long().tolist():  # (N,)
                    passk.append(pass_at_k(n_samples, c, k))
    model.train(was_training)
    result = {"pass@1": torch.cat(correct).mean().item(),
              "format": torch.cat(formatted).mean().item(),
              "length": torch.cat(lengths).mean().item()}
    if n_samples:
        result[f"pass@{k}"] = sum(passk) / len(passk)
        result["sample_accuracy"] = torch.cat(sampled).mean().item()
    return result
