"""Kill a training run mid-way, resume it from its checkpoint, and run it straight through.

Shared by the REINFORCE and PPO tests: both trainers take a config with
``checkpoint``/``checkpoint_every`` and call ``callback(agent, history)`` after
each update, so one scaffold serves both.
"""

import dataclasses

import pytest


def interrupted_and_straight(train, config, path, crash_after, checkpoint_every):
    """Returns (resumed agent, resumed history, straight agent, straight history, resumable config).

    The interrupted run checkpoints every `checkpoint_every` updates and dies
    (KeyboardInterrupt) after update `crash_after`; the resumed run starts from its
    last checkpoint and redoes the updates after it.
    """
    agent_full, full = train(config)
    resumable = dataclasses.replace(config, checkpoint=str(path), checkpoint_every=checkpoint_every)

    def crash(agent, history):
        if len(history["step"]) == crash_after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(resumable, callback=crash)
    agent, resumed = train(resumable)
    return agent, resumed, agent_full, full, resumable
