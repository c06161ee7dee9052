"""The reasoning track (modules 09-11): R1-Zero, the R1 pipeline, Kimi k1.5, on the reasoning base.

- ``tasks``: addition at four difficulty levels, and how a chain of thought is written
  (slips, re-checks, two notations);
- ``pretrain``: the pretraining mixture of the shipped reasoning base
  (``scripts/build_reasoning_model.py``);
- ``rewards``: the reflection detector, the notation of a CoT, a naive (hackable) checker;
- ``evaluate``: held-out figures per level (pass@1, pass@k, length, reflection, mixing);
- ``r1_zero``: the R1-Zero run (GRPO from the base) and its measurements.
"""
