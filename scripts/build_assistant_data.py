"""Write the RLHF track's preference data into rlllm_course/data/assistant-preferences (a few seconds).

    python scripts/build_assistant_data.py

- ``train.jsonl`` (20000 pairs) and ``test.jsonl`` (2000 pairs, held-out questions):
  ``rlhf.preferences.preference_pairs`` in TRL's schema, with the gold rewards of both sides;
- ``hh-sample/train.jsonl``: 50 of the test pairs written as HH-RLHF writes its rows (whole
  dialogues in "chosen" and "rejected", no "prompt"), for the loader's other path.

Everything is drawn from fixed seeds; ``rlhf.preferences.load_preferences`` reads the files back.
"""

import json
from pathlib import Path

from rlllm_course.llm.model import DATA_DIR
from rlllm_course.rlhf.preferences import preference_pairs

OUT = DATA_DIR / "assistant-preferences"
SIZES = {"train": (20000, 0), "test": (2000, 1)}  # (pairs, seed)


def write_jsonl(path, rows):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def hh_dialogue(prompt, response):
    """Our one-turn prompt as an HH-RLHF dialogue: "\\n\\nHuman: <question>\\n\\nAssistant: <response>"."""
    question = prompt.removeprefix("user: ").removesuffix("\nassistant: ")
    return f"\n\nHuman: {question}\n\nAssistant: {response}"


def main():
    for split, (n, seed) in SIZES.items():
        pairs = preference_pairs(n, seed, split="train" if split == "train" else "eval")
        write_jsonl(OUT / f"{split}.jsonl", pairs)
        print(split, len(pairs), "pairs")
        if split == "test":
            write_jsonl(OUT / "hh-sample" / "train.jsonl",
                        [{"chosen": hh_dialogue(p["prompt"], p["chosen"]),
                          "rejected": hh_dialogue(p["prompt"], p["rejected"])} for p in pairs[:50]])


if __name__ == "__main__":
    main()
