"""The RLHF track (modules 12-14): reward model, RLHF-PPO and DPO on the assistant base.

- ``assistant_task``: the questions, responses built along the 3H axes and verbosity, the gold reward;
- ``preferences``: the noisy Bradley-Terry labeller, the preference pairs, a loader for local sets;
- ``pretrain``: the pretraining mixture of the shipped assistant base (``scripts/build_assistant_model.py``);
- ``evaluate``: the gold reward and the parts of what an assistant writes; the probe of what a scorer learned;
- ``reward_model``: the Bradley-Terry reward model (a scalar head at the last real token), its training and normalisation;
- ``best_of_n``: best-of-n selection, its KL, and the expected proxy and gold reward against n;
- ``ppo_math``: the per-token math of RLHF-PPO (KL-shaped rewards, masked GAE and whitening, the clipped value loss);
- ``rlhf_ppo``: RLHF with PPO on tokens, with a critic, the reward model and a frozen reference.
"""
