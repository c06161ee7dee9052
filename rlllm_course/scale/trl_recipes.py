"""The course's recipes through TRL's trainers: one table per trainer, configs built from it, short runs.

TRL (Hugging Face; the tables name TRL 1.16's arguments) trains the same algorithms as the course's
loops, on one CPU or many GPUs (accelerate, DeepSpeed, vLLM for sampling). Each trainer gets a table of rows

    (course field, TRL argument, value, note)

read by ``build_trl_config``: the value is ``COPY`` (the course field's value as it is), a
function of the course config, or a constant (a setting the course's loop hard-codes, such as its
optimizer or schedule, where TRL's default differs). A row without a TRL argument is a course
field with no counterpart; its note says what takes its place. The tables are the only place the
mapping lives: the builders read them, the tests check every argument against TRL's dataclasses,
and ``markdown_table`` renders them for the notebook.

The runners take a few steps of each trainer on the shipped models, on a CPU:
``run_sft`` (R1's cold start on the reasoning base), ``run_grpo`` (R1-Zero's rule rewards on the
tiny model; ``run_rloo`` the same with TRL's RLOO), ``run_reward_model`` and ``run_dpo`` (the
assistant base on labelled preference pairs); ``max_steps`` stops any of them early. Models load
with the course's loaders from the shipped folders (nothing is downloaded), and every runner
returns (model, history): the trained model and TRL's log of each step.
"""

import copy
import tempfile

import torch

from ..llm.dpo import DPOConfig
from ..llm.grpo import TASKS, GRPOConfig
from ..llm.model import load_policy
from ..llm.rewards import accuracy_reward, consistency_reward, format_reward
from ..llm.sft import SFTConfig
from ..llm.tasks import make_prompt
from ..rlhf.reward_model import RewardConfig, load_reward_model

COPY = "same"  # the row's value is the course field's, unchanged
SCALE_REWARDS = {"grpo": "group", "dr_grpo": "none"}  # course advantage -> TRL scale_rewards

# Settings every course loop hard-codes: float32 on a CPU, a log entry per step.
_RUNTIME = [
    (None, "bf16", False, "TRL's default is bf16 autocast, on a CPU too; the course trains in float32"),
    (None, "activation_checkpointing", False, "TRL's default (gradient_checkpointing=True, renamed in transformers "
                                              "5) recomputes activations; the tiny models need no saving"),
    (None, "logging_steps", 1, "one log entry per step, as the course's history (TRL's default: 10)"),
]

# llm.sft's loop, which the reward model and DPO share: epochs of shuffled batches, warm-up + cosine.
_EPOCHS = [
    ("seed", "seed", COPY, ""),
    ("epochs", "num_train_epochs", COPY, "TRL takes ceil(epochs * ceil(N / batch_size)) steps (a short last "
                                         "batch each epoch), the course ceil(epochs * N / batch_size)"),
    ("lr", "learning_rate", COPY, ""),
    ("warmup_steps", "warmup_steps", COPY, "warm-up lr * t / w in TRL (its first step has lr 0), "
                                           "lr * (t + 1) / w in the course"),
    ("weight_decay", "weight_decay", COPY, "both leave norms and biases undecayed"),
    ("max_grad_norm", "max_grad_norm", COPY, ""),
    ("checkpoint_dir", "save_strategy", lambda c: "steps" if c.checkpoint_dir else "no",
     "'steps' if checkpoint_dir else 'no'; TRL saves in output_dir, train(resume_from_checkpoint=True) resumes"),
    ("checkpoint_every", "save_steps", COPY, ""),
    ("num_threads", None, None, "no argument: torch.set_num_threads before training"),
]
_EPOCHS_FIXED = [
    (None, "lr_scheduler_type", "cosine_with_min_lr", "llm.sft.lr_at: cosine decay to 10% of lr after the warm-up "
                                                      "(TRL's default decays linearly to 0)"),
    (None, "lr_scheduler_kwargs", {"min_lr_rate": 0.1}, "the 10% floor"),
    (None, "adam_beta2", 0.98, "llm.sft.make_optimizer's AdamW betas (0.9, 0.98); TRL's default 0.999"),
    (None, "max_length", None, "the course never truncates; TRL cuts rows at 1024 tokens by default"),
] + _RUNTIME

SFT_ARGS = _EPOCHS + [
    ("batch_size", "per_device_train_batch_size", COPY, "one device, no gradient accumulation"),
] + _EPOCHS_FIXED + [
    (None, "completion_only_loss", True, "the loss on the response and its eos only (llm.sft.response_batch); "
                                         "TRL's default does so for prompt/completion rows too"),
]

REWARD_ARGS = _EPOCHS + [
    ("batch_size", "per_device_train_batch_size", COPY, "pairs per step in both (2 * batch_size rows)"),
    ("center_coefficient", "center_rewards_coefficient", lambda c: c.center_coefficient or None,
     "center_coefficient or None: TRL's None is the course's 0"),
    ("eval_every", None, None, "TRL evaluates on an eval_dataset (eval_strategy, eval_steps)"),
] + _EPOCHS_FIXED

DPO_ARGS = _EPOCHS + [
    ("batch_size", "per_device_train_batch_size", COPY, "pairs per step in both"),
    ("beta", "beta", COPY, ""),
    ("sft_weight", "loss_type", lambda c: ["sigmoid", "sft"] if c.sft_weight else ["sigmoid"],
     "['sigmoid'], + 'sft' when sft_weight > 0: the chosen responses' NLL per token (RPO)"),
    ("sft_weight", "loss_weights", lambda c: [1.0, c.sft_weight] if c.sft_weight else None,
     "[1, sft_weight] when sft_weight > 0, else None"),
    ("device", "use_cpu", lambda c: c.device == "cpu", "device == 'cpu'"),
] + _EPOCHS_FIXED + [
    (None, "precompute_ref_log_probs", True, "the course scores the reference once, up front: the same values"),
]

# GRPO and RLOO read the same course config (llm.grpo.GRPOConfig) and sample the same way.
_SAMPLING = [
    ("seed", "seed", COPY, ""),
    ("steps, updates_per_batch", "max_steps", lambda c: c.steps * c.updates_per_batch,
     "steps * updates_per_batch: TRL counts optimizer steps, and samples every num_iterations of them"),
    ("prompts_per_step, group_size", "per_device_train_batch_size", lambda c: c.prompts_per_step * c.group_size,
     "prompts_per_step * group_size: TRL's batch counts completions; one device, no gradient accumulation"),
    ("group_size", "num_generations", COPY, ""),
    ("lr", "learning_rate", COPY, "TRL's default is 1e-6"),
    ("clip_eps", "epsilon", COPY, "epsilon_high (DAPO's clip-higher) defaults to it, as clip_eps_high does"),
    ("updates_per_batch", "num_iterations", COPY, "gradient steps on one batch against the same old log-probs"),
    ("format_weight, consistency_weight", "reward_weights",
     lambda c: [1.0, c.format_weight] + ([c.consistency_weight] if c.consistency_weight else []),
     "[1, format_weight] (+ [consistency_weight] if set): one reward function each for accuracy, format "
     "(and consistency), summed with these weights"),
    ("temperature", "temperature", COPY, "both sample with top_k = 0, top_p = 1 and score at this temperature"),
    ("max_new_tokens", "max_completion_length", COPY, "also dr_grpo's constant normaliser in both"),
    ("max_grad_norm", "max_grad_norm", COPY, ""),
    ("sampling", "shuffle_dataset", False, "must be 'sequential' (a fixed order); Kimi's curriculum and "
                                           "prioritized samplers have no TRL argument"),
    ("device", "use_cpu", lambda c: c.device == "cpu", "device == 'cpu'"),
    ("checkpoint_dir", "save_strategy", lambda c: "steps" if c.checkpoint_dir else "no",
     "'steps' if checkpoint_dir else 'no'; TRL saves in output_dir, train(resume_from_checkpoint=True) resumes"),
    ("checkpoint_every", "save_steps", lambda c: c.checkpoint_every * c.updates_per_batch,
     "checkpoint_every * updates_per_batch (optimizer steps)"),
    ("model", None, None, "the trainer's model argument (loaded with llm.model.load_policy)"),
    ("task, template", None, None, "the train_dataset: a 'prompt' column of templated problems"),
    ("log_kl", None, None, "TRL logs the KL only when beta != 0"),
    ("length_weight, length_warmup", None, None, "must be 0: Kimi's length reward has no argument (a reward "
                                                 "function sees the batch's completion_ids and could compute it)"),
    ("pool_size, curriculum_warmup, baseline_decay", None, None, "no counterpart"),
    ("eval_every, n_eval, eval_seed", None, None, "TRL evaluates on an eval_dataset (eval_strategy, eval_steps)"),
    ("num_threads", None, None, "no argument: torch.set_num_threads before training"),
]
_SAMPLING_FIXED = [
    (None, "lr_scheduler_type", "constant", "the course keeps lr constant; TRL's default decays it linearly to 0"),
    (None, "adam_beta2", 0.99, "llm.grpo's AdamW betas (0.9, 0.99); TRL's default 0.999"),
] + _RUNTIME

GRPO_ARGS = _SAMPLING + [
    ("advantage", "scale_rewards", lambda c: SCALE_REWARDS[c.advantage],
     "grpo: 'group', (r - mean) / (std + 1e-4), Bessel's std in both; dr_grpo: 'none'; rloo: RLOOTrainer"),
    ("aggregation", "loss_type", COPY, "the same four names (grpo, bnpo, dr_grpo, dapo); TRL's default is dapo"),
    ("beta", "beta", COPY, "k3 to the initial model in the per-token loss; TRL loads the reference only when "
                           "beta != 0"),
] + _SAMPLING_FIXED + [
    (None, "use_bias_correction_kl", False, "TRL's default multiplies k3 by the ratio (policy_loss's "
                                            "kl_ratio_correction=True); the course's loop does not"),
]

RLOO_ARGS = _SAMPLING + [
    ("advantage", "normalize_advantages", False, "must be 'rloo'; TRL could also whiten the advantages over "
                                                 "the batch"),
    ("aggregation", None, None, "TRL's RLOO loss is per sequence: ratio = exp(sum of the token log-ratios), "
                                "clipped, mean over sequences; at ratio 1 its gradient is reinforce_loss's"),
    ("beta", "beta", COPY, "semantics differ: TRL subtracts beta * sum_t (logp - logp_ref) (k1) from the "
                           "reward; the course adds beta * k3 to the loss; TRL's default is 0.05"),
] + _SAMPLING_FIXED

# trainer -> (TRL trainer class, TRL config class, course config class, table)
TABLES = {"sft": ("SFTTrainer", "SFTConfig", SFTConfig, SFT_ARGS),
          "grpo": ("GRPOTrainer", "GRPOConfig", GRPOConfig, GRPO_ARGS),
          "rloo": ("RLOOTrainer", "RLOOConfig", GRPOConfig, RLOO_ARGS),
          "reward": ("RewardTrainer", "RewardConfig", RewardConfig, REWARD_ARGS),
          "dpo": ("DPOTrainer", "DPOConfig", DPOConfig, DPO_ARGS)}


def _trl():
    try:
        import trl  # imported here: importing TRL takes seconds, and only this module needs it
    except ImportError as error:
        raise ImportError("TRL is needed for rlllm_course.scale.trl_recipes: pip install 'trl>=1.16,<1.17'") from error
    return trl


def _table(trainer):
    if trainer not in TABLES:
        raise ValueError(f"trainer must be one of {sorted(TABLES)}, got {trainer!r}")
    return TABLES[trainer]


def row_value(row, config):
    """The TRL value of one table row for the course `config` (see the module's docstring)."""
    course, _, value, _ = row
    if value is COPY:
        return getattr(config, course)
    return value(config) if callable(value) else copy.deepcopy(value)


def check_supported(trainer, config):
    """Fail, naming the field, on a course setting the TRL recipe cannot express."""
    if trainer == "grpo" and config.advantage not in SCALE_REWARDS:
        raise ValueError(f"advantage must be one of {sorted(SCALE_REWARDS)} for GRPOTrainer "
                         f"('rloo' runs through RLOOTrainer), got {config.advantage!r}")
    if trainer == "rloo" and config.advantage != "rloo":
        raise ValueError(f"advantage must be 'rloo' for RLOOTrainer, got {config.advantage!r}")
    if trainer in ("grpo", "rloo"):
        for name, default in (("length_weight", 0.0), ("sampling", "sequential")):
            if getattr(config, name) != default:
                raise ValueError(f"{name} has no TRL counterpart; must be {default!r}, got {getattr(config, name)!r}")
        if config.task not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}, got {config.task!r}")


def build_trl_config(trainer, config, output_dir, **overrides):
    """The TRL config of `trainer` ("sft", "grpo", "rloo", "reward", "dpo") from the course `config`.

    Every row of ``TABLES[trainer]`` with a TRL argument sets it; `output_dir` is where TRL
    writes (checkpoints only if the course config asks for them); `overrides` (TRL argument
    names) win over the table. Returns the ``trl.<Name>Config``.
    """
    _, name, course_class, rows = _table(trainer)
    if not isinstance(config, course_class):
        raise ValueError(f"config must be a {course_class.__module__}.{course_class.__name__} for {trainer!r}, "
                         f"got {type(config).__name__}")
    check_supported(trainer, config)
    args = {"output_dir": str(output_dir), "use_cpu": True, "report_to": "none", "disable_tqdm": True}
    args.update({row[1]: row_value(row, config) for row in rows if row[1] is not None})
    args.update(overrides)
    return getattr(_trl(), name)(**args)


def markdown_table(trainer):
    """The table of `trainer` as markdown: course field | TRL argument | value | note."""
    _, name, course_class, rows = _table(trainer)
    lines = [f"| course `{course_class.__name__}` | `trl.{name}` | value | note |", "|---|---|---|---|"]
    for course, arg, value, note in rows:
        shown = ("" if arg is None else "computed" if callable(value) else value if value is COPY
                 else f"`{value!r}`")
        lines.append(f"| {course or '(hard-coded)'} | {f'`{arg}`' if arg else '—'} | {shown} | {note} |")
    return "\n".join(lines)


def quiet(trainer):
    """`trainer` without its PrinterCallback, which prints every log dict when tqdm is off.

    ``trainer.state.log_history`` keeps them all.
    """
    from transformers import PrinterCallback
    trainer.remove_callback(PrinterCallback)
    return trainer


def _run(trainer, config, output_dir, max_steps, **kwargs):
    """Build the TRL config and the trainer (in `output_dir` or a temporary folder), train: (model, history)."""
    if max_steps is not None and not (isinstance(max_steps, int) and max_steps >= 1):
        raise ValueError(f"max_steps must be a positive integer or None, got {max_steps!r}")
    torch.set_num_threads(config.num_threads)
    with tempfile.TemporaryDirectory() as scratch:
        overrides = {} if max_steps is None else {"max_steps": max_steps}
        args = build_trl_config(trainer, config, output_dir or scratch, **overrides)
        run = quiet(getattr(_trl(), TABLES[trainer][0])(args=args, **kwargs))
        run.train()
    history = [entry for entry in run.state.log_history if "loss" in entry]  # not the run's summary
    return run.model.eval(), history


def run_sft(config=SFTConfig(), model="reasoning", n_examples=None, max_steps=None, output_dir=None):
    """``SFTTrainer`` on R1's cold-start data (``reasoning.r1_pipeline.cold_start_data``); (model, history).

    n_examples: size of the curated set (default: one step's batch per epoch, ``config.batch_size``).
    """
    from datasets import Dataset
    from ..reasoning.r1_pipeline import cold_start_data  # imported here: it imports the reasoning track
    n = config.batch_size if n_examples is None else n_examples
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"n_examples must be a positive integer, got {n_examples!r}")
    policy, tokenizer = load_policy(model)
    _, prompts, responses = cold_start_data(n)
    data = Dataset.from_dict({"prompt": prompts, "completion": responses})
    return _run("sft", config, output_dir, max_steps, model=policy, train_dataset=data,
                processing_class=tokenizer)


def rule_reward_functions(tokenizer, problems, config):
    """TRL reward functions for R1-Zero's rewards: accuracy, format (and consistency if weighted).

    problems: the course's problem dicts; each function finds a row's problem by its templated
    prompt. TRL decodes completions with ``skip_special_tokens=True``, which drops the course
    tokenizer's <think> and <answer> tags; the functions decode ``completion_ids`` themselves,
    tags kept (as ``llm.rollout.decode_completions`` does), eos and padding dropped.
    """
    by_prompt = {make_prompt(p, config.template): p for p in problems}
    drop = {tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id}

    def texts(completion_ids):
        return [tokenizer.decode([i for i in ids if i not in drop], skip_special_tokens=False)
                for ids in completion_ids]

    def accuracy(prompts, completion_ids, **kwargs):
        return accuracy_reward(texts(completion_ids), [by_prompt[p] for p in prompts]).tolist()

    def format_(prompts, completion_ids, **kwargs):
        return format_reward(texts(completion_ids)).tolist()

    format_.__name__ = "format"  # TRL names the metric after the function: rewards/format/mean

    def consistency(prompts, completion_ids, **kwargs):
        return consistency_reward(texts(completion_ids)).tolist()

    return [accuracy, format_] + ([consistency] if config.consistency_weight else [])


def _run_sampling(trainer, config, max_steps, output_dir):
    """GRPO or RLOO on ``config.steps * prompts_per_step`` problems of ``config.task``, rule rewards."""
    from datasets import Dataset
    check_supported(trainer, config)
    policy, tokenizer = load_policy(config.model)
    problems = TASKS[config.task](config.steps * config.prompts_per_step, seed=config.seed, split="train")
    data = Dataset.from_dict({"prompt": [make_prompt(p, config.template) for p in problems]})
    return _run(trainer, config, output_dir, max_steps, model=policy, train_dataset=data,
                processing_class=tokenizer, reward_funcs=rule_reward_functions(tokenizer, problems, config))


def run_grpo(config=GRPOConfig(), max_steps=None, output_dir=None):
    """``GRPOTrainer`` with R1-Zero's rule rewards on ``config.model`` and ``config.task``; (model, history).

    The same problems in the same order as ``llm.grpo.train_grpo`` (no shuffling), one batch of
    ``prompts_per_step`` prompts x ``group_size`` samples per course step.
    """
    return _run_sampling("grpo", config, max_steps, output_dir)


def run_rloo(config=GRPOConfig(advantage="rloo"), max_steps=None, output_dir=None):
    """``RLOOTrainer`` with R1-Zero's rule rewards (``config.advantage`` must be "rloo"); (model, history)."""
    return _run_sampling("rloo", config, max_steps, output_dir)


def _pairs(n_pairs, seed):
    """A Dataset of `n_pairs` labelled pairs (prompt, chosen, rejected), by the labeller of the shipped set."""
    from datasets import Dataset
    from ..rlhf.preferences import preference_pairs
    if not (isinstance(n_pairs, int) and n_pairs >= 1):
        raise ValueError(f"n_pairs must be a positive integer, got {n_pairs!r}")
    pairs = preference_pairs(n_pairs, seed, split="train")
    return Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])


def run_reward_model(config=RewardConfig(), model="assistant", n_pairs=None, max_steps=None, output_dir=None):
    """``RewardTrainer`` on the assistant base with a fresh score head; (reward model, history).

    n_pairs: labelled pairs (``rlhf.preferences.preference_pairs``, seeded by ``config.seed``;
    default one step's batch per epoch).
    """
    data = _pairs(config.batch_size if n_pairs is None else n_pairs, config.seed)
    rm, tokenizer = load_reward_model(model, seed=config.seed)
    return _run("reward", config, output_dir, max_steps, model=rm, train_dataset=data,
                processing_class=tokenizer)


def run_dpo(config=DPOConfig(), model="assistant", n_pairs=None, max_steps=None, output_dir=None):
    """``DPOTrainer`` on `model` and labelled pairs (as ``run_reward_model``); (policy, history).

    The reference is `model` as it is at the start: TRL scores it once, before training.
    """
    data = _pairs(config.batch_size if n_pairs is None else n_pairs, config.seed)
    policy, tokenizer = load_policy(model, device=config.device)
    return _run("dpo", config, output_dir, max_steps, model=policy, train_dataset=data,
                processing_class=tokenizer)

