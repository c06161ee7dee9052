"""The shipped RLHF runs of modules 13 and 14: RLHF-PPO at three KL coefficients and GRPO on one reward
model, DPO on the pairs that reward model was fitted to, and best-of-n on the same questions.

Every run optimises the shipped reward model (``assistant-rm``) from the assistant
base with ``rlhf_ppo.train_rlhf`` and differs from the others in one thing only:
- "ppo-beta-0.01", "ppo-beta-0.05", "ppo-beta-0.2": PPO with the critic, the KL
  penalty in the per-token reward at beta = 0.01, 0.05, 0.2;
- "grpo": critic-free (module 08): 8 prompts x 4 responses a step, so a step reads
  as many samples as PPO's 32 prompts x 1, with the k3 KL in the loss at beta = 0.05.
"dpo" (module 14) trains the base with ``llm.dpo.train_dpo`` on the first ``DPO_PAIRS``
preference pairs, the reward model's own training data, in an order drawn from the seed.
Each run is held out every ``EVAL_EVERY`` steps (DPO: ``DPO_EVAL_EVERY``) on the same
``N_EVAL`` questions with the same random numbers (``rlhf_ppo.evaluate_policy``);
``start_figures`` are the base's on them, ``best_of_n_figures`` best-of-n's. The runs are
shipped as trimmed histories, built by ``scripts/build_rlhf_runs.py`` over ``SEEDS``
(``load_runs``); nothing here needs their weights.
"""

import json
import resource
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from ..llm.dpo import DPOConfig, batch_logps, train_dpo
from ..llm.model import DATA_DIR, load_policy
from ..llm.rollout import generate
from .assistant_task import assistant_problems, gold_reward, make_prompt
from .best_of_n import best_of_n_curve
from .evaluate import MAX_NEW_TOKENS
from .preferences import load_preferences
from .reward_model import load_reward_model, score
from .rlhf_ppo import RLHFConfig, evaluate_policy, train_rlhf

STEPS = 50
EVAL_EVERY = 5
N_EVAL = 256
SEEDS = (0, 1, 2)
RUNS = {"ppo-beta-0.01": dict(beta=0.01), "ppo-beta-0.05": dict(beta=0.05), "ppo-beta-0.2": dict(beta=0.2),
        "grpo": dict(advantage="grpo", group_size=4, prompts_per_step=8, beta=0.05)}
DPO_PAIRS = 3200  # 200 steps of 16 pairs: about a minute on one core
DPO_EVAL_EVERY = 20
DPO_CONFIG = dict(epochs=1, batch_size=16, lr=6e-5, beta=0.1, warmup_steps=10)  # lr 3e-4 ran off within 50 steps
N_HELDOUT_PAIRS = 200  # held-out pairs whose chosen and rejected log-probs a DPO run follows
BON_SAMPLES = 32  # best-of-n: samples per held-out question, n up to this
NAMES = tuple(RUNS) + ("dpo",)
RUNS_DIR = DATA_DIR / "rlhf-runs"  # one .json per run and seed, start.json and best-of-n.json
KEPT = ("step", "score", "reward", "gold", "kl", "rlhf_reward", "length", "no_eos", "policy/entropy",
        "policy/clip_frac", "value/explained_variance", "seconds", "eval_seconds")  # what a saved run keeps
KEPT_COMPLETIONS = 64  # of each evaluation's held-out samples: the first ones, the same questions in every run


def run_config(name, seed=0, **overrides):
    """The ``RLHFConfig`` of run `name` (a key of ``RUNS``) and `seed`."""
    if name not in RUNS:
        raise ValueError(f"name must be one of {sorted(RUNS)}, got {name!r}")
    return RLHFConfig(**{"steps": STEPS, "seed": seed, "eval_every": EVAL_EVERY, "n_eval": N_EVAL,
                         **RUNS[name], **overrides})


def eval_set(n_eval=N_EVAL):
    """(config, problems): the evaluation settings every run shares and its `n_eval` held-out questions."""
    config = run_config("ppo-beta-0.05", n_eval=n_eval)
    return config, assistant_problems(config.n_eval, config.eval_seed, "eval")


def dpo_config(seed=0, **overrides):
    """The ``DPOConfig`` of the "dpo" run."""
    return DPOConfig(**{**DPO_CONFIG, "seed": seed, **overrides})


def trim(history):
    """The parts of a history the notebooks read: ``KEPT`` and DPO's ``dpo/`` figures per step, the ``eval/``
    figures, a few samples."""
    out = []
    for log in history:
        kept = {k: v for k, v in log.items()
                if k in KEPT or k.startswith("dpo/") or (k.startswith("eval/") and k != "eval/completions")}
        if "eval/completions" in log:
            kept["eval/completions"] = log["eval/completions"][:KEPT_COMPLETIONS]
        out.append(kept)
    return out


def models_in_memory(config):
    """{model: parameters} of what a run holds: policy, reference, reward model, and the critic with "gae"."""
    policy, _ = load_policy(config.policy)
    rm, _ = load_reward_model(config.reward_model)
    count = lambda model: sum(p.numel() for p in model.parameters())
    models = {"policy": count(policy), "reference": count(policy), "reward model": count(rm)}
    if config.advantage == "gae":
        models["critic"] = count(rm)
    return models


def train_run(name, seed=0, out=None, progress=True, **overrides):
    """Train one run; return {"name", "seed", "config", "history" (trimmed), "models", "peak_rss_mb"}.

    With `out` (a .json path) the run checkpoints beside it, resumes when interrupted and
    writes its result there. peak_rss_mb is the process's: run one per process to read it.
    """
    config = run_config(name, seed, **overrides)
    if out is not None:
        config = replace(config, checkpoint_dir=str(out) + ".checkpoint")
    _, _, history = train_rlhf(config, progress=progress)
    result = {"name": name, "seed": seed, "config": asdict(replace(config, checkpoint_dir="")),
              "history": trim(history), "models": models_in_memory(config),
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if out is not None:
        Path(out).write_text(json.dumps(result) + "\n")
        shutil.rmtree(config.checkpoint_dir, ignore_errors=True)
    return result


def dpo_evaluator(policy, tokenizer, reference, n_eval=N_EVAL, n_pairs=N_HELDOUT_PAIRS):
    """f(model) -> held-out figures of a DPO run: ``evaluate_policy`` with the KL to `reference`, and the
    mean log-probs of ``n_pairs`` held-out pairs' chosen and rejected responses (``logp_chosen``,
    ``logp_rejected``; their reference values as ``ref_logp_chosen``, ``ref_logp_rejected``)."""
    rm, rm_tokenizer = load_reward_model("assistant-rm")
    config, problems = eval_set(n_eval)
    pairs = load_preferences(DATA_DIR / "assistant-preferences", "test")[:n_pairs]
    prompts = [p["prompt"] for p in pairs]

    def logps(model, side):
        with torch.no_grad():
            return batch_logps(model, tokenizer, prompts, [p[side] for p in pairs]).mean().item()

    reference_logps = {f"ref_logp_{side}": logps(reference, side) for side in ("chosen", "rejected")}

    def evaluate(model):
        figures = evaluate_policy(model, tokenizer, rm, rm_tokenizer, problems, config, ref_policy=reference)
        return {**figures, "logp_chosen": logps(model, "chosen"), "logp_rejected": logps(model, "rejected"),
                **reference_logps}
    return evaluate


def train_dpo_run(seed=0, out=None, progress=True, n_pairs=DPO_PAIRS, n_eval=N_EVAL, n_heldout_pairs=N_HELDOUT_PAIRS,
                  **overrides):
    """Train the "dpo" run; return {"name", "seed", "config", "pairs", "history", "models", "peak_rss_mb"}.

    The base is trained on the first `n_pairs` training pairs (the reward model's data),
    evaluated every ``DPO_EVAL_EVERY`` steps; with `out`, checkpointed beside it and written there.
    """
    torch.set_num_threads(1)
    config = dpo_config(seed, **overrides)
    if out is not None:
        config = replace(config, checkpoint_dir=str(out) + ".checkpoint")
    policy, tokenizer = load_policy("assistant")
    reference = load_policy("assistant")[0].eval().requires_grad_(False)
    pairs = [{k: p[k] for k in ("prompt", "chosen", "rejected")}
             for p in load_preferences(DATA_DIR / "assistant-preferences", "train")[:n_pairs]]
    evaluator = dpo_evaluator(policy, tokenizer, reference, n_eval, n_heldout_pairs)
    started = time.time()
    history = train_dpo(policy, tokenizer, pairs, config, ref_model=reference, progress=progress,
                        evaluator=evaluator, eval_every=DPO_EVAL_EVERY)
    count = sum(p.numel() for p in policy.parameters())
    result = {"name": "dpo", "seed": seed, "config": asdict(replace(config, checkpoint_dir="")), "pairs": n_pairs,
              # the whole call, the reference's log-probs of the pairs included, evaluations excluded
              "train_seconds": time.time() - started - history[-1]["eval_seconds"],
              "history": trim(history), "models": {"policy": count, "reference": count},
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if out is not None:
        Path(out).write_text(json.dumps(result) + "\n")
        shutil.rmtree(config.checkpoint_dir, ignore_errors=True)
    return result


def best_of_n_figures(n_eval=N_EVAL, samples=BON_SAMPLES, seed=0):
    """Best-of-n on the held-out questions: ``best_of_n.best_of_n_curve`` of the base's `samples` per question
    (n = 1, 2, 4, ... up to `samples`), with the seconds it took to sample and score them."""
    torch.set_num_threads(1)
    started = time.time()
    policy, tokenizer = load_policy("assistant")
    rm, rm_tokenizer = load_reward_model("assistant-rm")
    config, problems = eval_set(n_eval)
    torch.manual_seed(seed)
    completions = []
    for i in range(0, len(problems), 8):  # 8 questions x `samples` rows a call
        completions += generate(policy, tokenizer, [make_prompt(p) for p in problems[i:i + 8]], group_size=samples,
                                max_new_tokens=MAX_NEW_TOKENS).completions  # as evaluate_policy
    rows = [p for p in problems for _ in range(samples)]
    proxy = score(rm, rm_tokenizer, [make_prompt(p) for p in rows], completions).view(len(problems), samples)
    gold = torch.tensor([gold_reward(p, c) for p, c in zip(rows, completions)]).view(len(problems), samples)
    ns = [2 ** k for k in range(samples.bit_length()) if 2 ** k <= samples]
    return {**best_of_n_curve(proxy, gold, ns), "samples": samples, "questions": len(problems),
            "seconds": time.time() - started}


def start_figures(n_eval=N_EVAL):
    """The base's held-out figures, as ``evaluate_policy`` gives them at every evaluation of a run."""
    config, problems = eval_set(n_eval)
    torch.set_num_threads(config.num_threads)
    policy, tokenizer = load_policy(config.policy)
    rm, rm_tokenizer = load_reward_model(config.reward_model)
    figures = evaluate_policy(policy, tokenizer, rm, rm_tokenizer, problems, config)
    figures["completions"] = figures["completions"][:KEPT_COMPLETIONS]
    return figures


def run_path(name, seed):
    return RUNS_DIR / f"{name}-{seed}.json"  # name: a key of RUNS, or "dpo"


def load_best_of_n():
    """Best-of-n on the held-out questions (``best_of_n_figures``, shipped)."""
    return json.loads((RUNS_DIR / "best-of-n.json").read_text())


def load_runs(names=NAMES, seeds=SEEDS):
    """The shipped runs: {name: [result of each seed]} (``train_run``'s dicts)."""
    runs = {}
    for name in names:
        for seed in seeds:
            path = run_path(name, seed)
            if not path.exists():
                raise FileNotFoundError(f"{path} is missing; build it with `python scripts/build_rlhf_runs.py`")
            runs.setdefault(name, []).append(json.loads(path.read_text()))
    return runs


def load_start():
    """The base's held-out figures the runs start from (``start_figures``, shipped)."""
    return json.loads((RUNS_DIR / "start.json").read_text())


def kl_at_evals(history):
    """(steps done, KL) at each evaluation of a run: the batch KL to the reference averaged over
    the steps since the previous evaluation (the evaluation samples fresh texts; the batches
    of those steps are the policy's own samples around it)."""
    steps, kls, window = [], [], []
    for log in history:
        window.append(log["kl"])
        if "eval/gold" in log:
            steps.append(log["step"] + 1)
            kls.append(sum(window) / len(window))
            window = []
    return steps, kls
