"""The RLHF track (modules 12-14): reward model, RLHF-PPO and DPO on the assistant base.

- ``assistant_task``: the questions, responses built along the 3H axes and verbosity, the gold reward;
- ``preferences``: the noisy Bradley-Terry labeller, the preference pairs, a loader for local sets;
- ``pretrain``: the pretraining mixture of the shipped assistant base (``scripts/build_assistant_model.py``);
- ``evaluate``: the gold reward and the parts of what an assistant writes.
"""
