"""Reinforcement learning for language models: the tiny model, tasks, rewards, rollouts, losses.

- ``tokenizer``: the character-level tokenizer with the R1-Zero tags;
- ``tasks``: addition and Countdown problems, held-out split, prompt templates, answer checks;
- ``rewards``: R1-Zero's accuracy and format rewards, R1's consistency, Kimi k1.5's length penalty;
- ``model``: ``load_policy`` for the shipped tiny model or a local causal LM;
- ``rollout``: sampling G completions per prompt, per-token log-probs, pass@k;
- ``losses``: advantages and policy losses (RLOO, GRPO and its variants, KL, DPO);
- ``evaluate``: greedy pass@1, format rate, sampled pass@k;
- ``grpo``: the GRPO / RLOO / Dr. GRPO training loop (config, logging, checkpoints);
- ``dpo``: the DPO training loop on prompt/chosen/rejected pairs (frozen reference, checkpoints);
- ``pretrain``: how the tiny model was made (``scripts/build_tiny_model.py``).
"""
