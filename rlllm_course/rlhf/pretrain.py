"""How the assistant base was made: a small assistant whose answers are right where it can add.

Like an instruction-tuned model before RLHF, the base has read conversations in
the mix of ``assistant_task.sample_response``, but with every number right
(``PRETRAIN_KINDS``: right answers 85%, refusals 15%): a hedge on 30% of the
numbers, a rude remark on 20% of the responses, and 0, 1, 2 or 3 openers
(``PRETRAIN_OPENERS``: 35/35/20/10%, where the preference pairs stop at two).
Its wrong answers are its own: a tiny transformer adds short numbers in one go
and guesses at long ones, so on long sums its confident answers are often wrong
and a hedge is the honest choice. (Wrong and rounded answers in the data would
make the sums harder to learn: with them, the same model still guessed the last
digit of a two-digit sum at chance after 2300 steps; without them it gets it
right after 1000.) The base never writes "about": rounding is left to the
preference pairs. The loss is ``llm.sft``'s response-only cross-entropy on a
from-scratch Llama (the tokenizer has one token per character).
"""

import random
from dataclasses import dataclass

from ..llm.model import new_model
from ..llm.sft import pretrain_sft
from ..llm.tokenizer import build_tokenizer
from .assistant_task import assistant_problems, make_prompt, sample_response

ASSISTANT_ALPHABET = list("abcdefghijklmnopqrstuvwxyz0123456789 .,!?'+:\n")
PRETRAIN_KINDS = (85, 0, 0, 15)  # right, about, wrong, refusal: the sums must be seen right to be learnt
PRETRAIN_OPENERS = (35, 35, 20, 10)  # weights of 0-3 openers; the preference pairs never hold three
MAX_POSITIONS = 256  # a prompt of ~30 characters and responses up to ~110 (and room for RL to ramble)


@dataclass
class AssistantPretrainConfig:
    seed: int = 0
    steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 512
    num_threads: int = 1  # one thread is fastest for a model this small


def build_assistant_tokenizer():
    """``llm.tokenizer``'s character tokenizer over lowercase letters, digits and punctuation."""
    return build_tokenizer(ASSISTANT_ALPHABET)


def pretraining_examples(n, seed):
    """`n` (prompt, response) pairs of the mixture, on training questions, reproducible from `seed`."""
    rng = random.Random(seed)
    problems = assistant_problems(n, seed=seed, split="train")
    prompts = [make_prompt(p) for p in problems]
    return prompts, [sample_response(p, rng, PRETRAIN_OPENERS, PRETRAIN_KINDS)[0] for p in problems]


def pretrain_assistant(tokenizer, config=AssistantPretrainConfig(), progress=True, checkpoint_dir=""):
    """Train the assistant base from scratch on the mixture; return (model, sft history).

    checkpoint_dir: where to save and resume (``llm.sft.train_sft``); "" for none.
    """
    prompts, responses = pretraining_examples(config.steps * config.batch_size, config.seed)
    model = new_model(tokenizer, config, MAX_POSITIONS)
    return model, pretrain_sft(model, tokenizer, prompts, responses, config, progress, checkpoint_dir)
