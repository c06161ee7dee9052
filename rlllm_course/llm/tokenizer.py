"""A character-level tokenizer for the course's tiny language model.

One token per character, plus whole-word special tokens:

- ``<think> </think> <answer> </answer>``: the R1-Zero tags, one token each, so
  that "the model opened a think block" is a single action;
- ``<pad>`` (padding, never trained on), ``<bos>`` (in the vocabulary for models
  that want it; the tiny model does not use it), ``<eos>`` (ends every
  response), ``<unk>`` (any character outside the alphabet).

It is built as a Hugging Face ``tokenizers`` object wrapped in a
``PreTrainedTokenizerFast``, so ``save_pretrained`` / ``from_pretrained``, padding,
batching and ``model.generate`` work exactly as for a real model. Load a saved
copy with ``PreTrainedTokenizerFast.from_pretrained`` (or ``load_policy``), not
``AutoTokenizer`` on a config whose model type brings its own tokenizer class.
"""

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK]
TAG_TOKENS = [THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE]

# Digits and operators for arithmetic and Countdown, the separators of the
# chain of thought, and the two letters of the tiny prompt template "Q:...\nA:".
ALPHABET = list("0123456789") + list("+-*/=()<>,: ?\n") + ["Q", "A"]


def build_tokenizer(alphabet=None):
    """Return a ``PreTrainedTokenizerFast`` with one token per character of `alphabet`.

    alphabet: list of single characters (default ``ALPHABET``).
    Token ids: the 4 special tokens first (``<pad>`` = 0), then the 4 tags,
    then the alphabet in order. Padding is on the left, as generation needs
    (the last position of every row is then a real token).
    """
    alphabet = list(ALPHABET if alphabet is None else alphabet)
    for ch in alphabet:
        if len(ch) != 1:
            raise ValueError(f"alphabet must hold single characters, got {ch!r}")
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + TAG_TOKENS + alphabet)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    # Each character is its own piece; "[\s\S]" (not ".") so newlines split too.
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()  # join pieces with no separator
    # Registered as special so "<think>" is matched whole before character splitting.
    core.add_special_tokens(SPECIAL_TOKENS + TAG_TOKENS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        additional_special_tokens=TAG_TOKENS,
        padding_side="left",
        model_max_length=256,
    )
    return tokenizer
