"""The actor-critic network shared by REINFORCE (§2.1-2.2) and PPO (§2.4).

Two separate MLPs read the same observation: the actor outputs logits of a
categorical policy pi(a | s), the critic a state value V(s). Nothing is shared
between them, so fitting V can never disturb the policy (and REINFORCE without
a baseline simply ignores the critic).
"""

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    """Orthogonal weights with gain `std`, constant bias (the CleanRL/SB3 default).

    Why: orthogonal init keeps activations at a steady scale through tanh layers,
    and a small gain on the policy head (0.01) makes the initial policy nearly
    uniform, so early exploration is not decided by the random seed.
    """
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias_const)
    return layer


def mlp(sizes, output_std=1.0):
    """Linear layers with tanh between them: sizes = (in, hidden..., out)."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        layers.append(layer_init(nn.Linear(n_in, n_out), std=output_std if last else np.sqrt(2)))
        if not last:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """A categorical policy and a state-value function for a discrete action space.

    obs_dim: size of the (flat) observation; n_actions: number of actions;
    hidden: widths of the hidden layers, the same for actor and critic.
    """

    def __init__(self, obs_dim, n_actions, hidden=(64, 64)):
        super().__init__()
        self.actor = mlp((obs_dim, *hidden, n_actions), output_std=0.01)
        self.critic = mlp((obs_dim, *hidden, 1), output_std=1.0)

    def get_value(self, obs):
        """V(s): obs (B, obs_dim) -> (B,)."""
        return self.critic(obs).squeeze(-1)  # (B,)

    def distribution(self, obs):
        """pi(. | s) as a torch Categorical over the actions; obs (B, obs_dim)."""
        # validate_args=False: the checks cost more than the network itself at this size
        return Categorical(logits=self.actor(obs), validate_args=False)

    def get_action_and_value(self, obs, action=None):
        """Sample an action (or score the given one) and evaluate the critic.

        obs: (B, obs_dim) float; action: optional (B,) long.
        Returns action (B,), log pi(action | s) (B,), entropy of pi(. | s) (B,),
        and V(s) (B,).
        """
        dist = self.distribution(obs)
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), self.get_value(obs)

    @torch.no_grad()
    def act(self, obs, greedy=False):
        """Actions for a numpy batch of observations (N, obs_dim) -> numpy (N,).

        greedy=True takes the most likely action (the deterministic policy used
        for evaluation); otherwise samples from pi, using torch's global RNG.
        """
        dist = self.distribution(torch.as_tensor(obs, dtype=torch.float32))
        action = dist.probs.argmax(-1) if greedy else dist.sample()
        return action.numpy()
