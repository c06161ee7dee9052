"""The reasoning track (modules 09-11): R1-Zero, the R1 pipeline, Kimi k1.5, on the reasoning base.

- ``tasks``: addition at four difficulty levels, and how a chain of thought is written
  (slips, re-checks, two notations);
- ``pretrain``: the pretraining mixture of the shipped reasoning base
  (``scripts/build_reasoning_model.py``);
- ``rewards``: the reflection detector, the notation of a CoT, a naive (hackable) checker;
- ``evaluate``: held-out figures per level (pass@1, pass@k, length, reflection, mixing);
- ``reflection_study``: the forms of a chain of thought and what a re-check buys;
- ``r1_zero``: the R1-Zero run (GRPO from the base) and its measurements;
- ``r1_pipeline``: R1's cold start, rejection filter and distillation data;
- ``pipeline_study``: the pipeline's comparisons per seed (cold start vs R1-Zero, distillation vs RL);
- ``sampling``: Kimi k1.5's curriculum and prioritized sampling of problems (``ProblemSampler``
  draws each GRPO step's problems by them);
- ``kimi_sampling``: uniform vs curriculum vs prioritized runs on three seeds, and their readers;
- ``long2short``: Kimi's model merging, shortest rejection sampling and DPO pairs;
- ``long_cot``: the long-CoT model that overthinks (its data and SFT, ``kimi-long``);
- ``kimi_long2short``: the four long2short methods from it, measured alike;
- ``partial_rollout``: Kimi's partial rollouts (token budget, replay buffer, loss mask);
- ``partial_rollout_engine``: the rollout phase run with the model, full vs partial, tokens/s and idle;
- ``partial_grpo``: GRPO on partial rollouts, stale segments trained on or excluded.
"""
