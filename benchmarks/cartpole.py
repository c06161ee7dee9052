"""CartPole-v1 performance targets of the policy-gradient reference code, measured side by side.

Two definitions of "solved":
  (A) the first deterministic (greedy) 10-episode evaluation with mean return >= 475,
      evaluated at the first update boundary after every EVAL_EVERY env steps;
  (B) the mean return of the last 100 *training* episodes (sampled actions) >= 475.
Training time excludes evaluation (and all other callback) time.

Targets:
  PPO        (A) in 3/3 seeds and a final evaluation still >= 475; (B) within 150k steps
             in 3/3 seeds; median steps and wall-clock to (A) and to (B) each <= those of
             stable-baselines3 PPO with the rl-zoo CartPole-v1 hyperparameters.
  REINFORCE  with the value baseline: (B) within 300k env steps in >= 9 of 10 seeds.
  Variance   reduction factor of the value baseline on the REINFORCE gradient, at the
             random initial policy and at a partly trained one.

Run:  python benchmarks/cartpole.py [--part ppo|reinforce|variance|all] [--seeds N]
(stable-baselines3 is needed for the PPO part: pip install stable-baselines3)
"""

import argparse
import dataclasses
import statistics
import time

import numpy as np
import torch

from rlllm_course.agents import ActorCritic
from rlllm_course.pg import ReinforceConfig, train_reinforce
from rlllm_course.pg_variance import fit_critic, policy_gradient_variance
from rlllm_course.ppo import PPOConfig, train_ppo
from rlllm_course.training import evaluate_agent, seed_everything

EVAL_EVERY = 1024  # env steps between deterministic evaluations, both implementations
SOLVED = 475.0


class Solved:
    """Tracks (A) and (B) for one run; both implementations report to it the same way."""

    def __init__(self):
        self.next_eval, self.a, self.b, self.returns = EVAL_EVERY, None, None, []

    def maybe_evaluate(self, step, train_time, policy):
        if self.a is None and step >= self.next_eval:
            self.next_eval = step + EVAL_EVERY
            if evaluate_agent(policy).mean() >= SOLVED:
                self.a = (step, train_time)

    def episode(self, ret, step, train_time):
        self.returns.append(ret)
        if self.b is None and len(self.returns) >= 100 and np.mean(self.returns[-100:]) >= SOLVED:
            self.b = (step, train_time)


def run_ours(seed, config):
    tracker, seen = Solved(), [0]

    def callback(agent, history):
        update_time = history["time"][-1]
        for ret, step in zip(history["episode/return"][seen[0]:], history["episode/step"][seen[0]:]):
            tracker.episode(ret, step, update_time)  # time at the end of the update (conservative)
        seen[0] = len(history["episode/return"])
        tracker.maybe_evaluate(history["step"][-1], update_time, agent)
        return False

    agent, history = train_ppo(PPOConfig(**{**config, "seed": seed, "progress": False}), callback)
    return tracker, evaluate_agent(agent).mean(), history["time"][-1], history["step"][-1]


def run_sb3(seed):
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    tracker = Solved()

    class Track(BaseCallback):
        """Evaluates after each training phase (rollout start), like ours after each update."""

        def _on_training_start(self):
            self.start, self.excluded = time.perf_counter(), 0.0

        def train_time(self):
            return time.perf_counter() - self.start - self.excluded

        def _on_rollout_start(self):
            paused = time.perf_counter()
            predict = lambda obs: self.model.predict(obs, deterministic=True)[0]
            tracker.maybe_evaluate(self.num_timesteps, self.train_time(), predict)
            self.excluded += time.perf_counter() - paused

        def _on_step(self):
            for info in self.locals["infos"]:
                if "episode" in info:
                    tracker.episode(info["episode"]["r"], self.num_timesteps, self.train_time())
            return True

    linear = lambda start: (lambda progress_remaining: progress_remaining * start)
    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
                ent_coef=0.0, learning_rate=linear(1e-3), clip_range=linear(0.2), seed=seed, device="cpu")
    callback = Track()
    model.learn(total_timesteps=100_000, callback=callback)
    predict = lambda obs: model.predict(obs, deterministic=True)[0]
    return tracker, evaluate_agent(predict).mean(), callback.train_time(), model.num_timesteps


def fmt(x, unit=""):
    if x is None:
        return "   never"
    return f"{x:8.0f}" if unit == "" else f"{x:7.1f}s"


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def part_ppo(n_seeds):
    print(f"== PPO on CartPole-v1: ours (PPOConfig defaults) vs stable-baselines3 rl-zoo, "
          f"{n_seeds} seeds, eval every {EVAL_EVERY} steps ==")
    print(f"ours: {PPOConfig()}")
    print("sb3:  PPO('MlpPolicy', n_envs=8, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, "
          "ent_coef=0.0, learning_rate=lin_0.001, clip_range=lin_0.2), 100k steps")
    rows = {"ours": [], "sb3": []}
    for seed in range(1, n_seeds + 1):
        for name in ("ours", "sb3"):  # interleaved, so both see the same machine load
            seed_everything(seed)
            tracker, final, train_time, steps = run_ours(seed, {}) if name == "ours" else run_sb3(seed)
            a_step, a_time = tracker.a or (None, None)
            b_step, b_time = tracker.b or (None, None)
            rows[name].append(dict(a_step=a_step, a_time=a_time, b_step=b_step, b_time=b_time, final=final))
            print(f"{name:4s} seed {seed}:  A at {fmt(a_step)} steps {fmt(a_time, 's')}   "
                  f"B at {fmt(b_step)} steps {fmt(b_time, 's')}   final eval {final:5.1f}   "
                  f"run {steps} steps {train_time:.1f}s", flush=True)
    print()
    medians = {name: {k: median_or_none([r[k] for r in rows[name]]) for k in ("a_step", "a_time", "b_step", "b_time")}
               for name in rows}
    ok = True
    for key, label in (("a_step", "steps to A"), ("a_time", "time to A"), ("b_step", "steps to B"),
                       ("b_time", "time to B")):
        ours, sb3 = medians["ours"][key], medians["sb3"][key]
        good = ours is not None and (sb3 is None or ours <= sb3)
        ok &= good
        ratio = ours / sb3 if ours is not None and sb3 else float("nan")
        nan = float("nan")
        print(f"median {label:11s}: ours {nan if ours is None else ours:10.1f}   "
              f"sb3 {nan if sb3 is None else sb3:10.1f}   ours/sb3 {ratio:5.2f}   {'PASS' if good else 'FAIL'}")
    ours_rows = rows["ours"]
    a_all = all(r["a_step"] is not None and r["final"] >= SOLVED for r in ours_rows)
    b_all = all(r["b_step"] is not None and r["b_step"] <= 150_000 for r in ours_rows)
    print(f"ours (A) in every seed and final eval >= {SOLVED:.0f}: {'PASS' if a_all else 'FAIL'}")
    print(f"ours (B) within 150k steps in every seed: {'PASS' if b_all else 'FAIL'}")
    return ok and a_all and b_all


def reinforce_to_b(config):
    """Env steps and training seconds until (B), or (None, None) within the budget."""
    tracker, seen = Solved(), [0]

    def callback(agent, history):
        for ret, step in zip(history["episode/return"][seen[0]:], history["episode/step"][seen[0]:]):
            tracker.episode(ret, step, history["time"][-1])
        seen[0] = len(history["episode/return"])
        return tracker.b is not None  # (B) reached: nothing more to measure

    train_reinforce(config, callback)
    return tracker.b or (None, None)


def part_reinforce(n_seeds):
    config = ReinforceConfig(progress=False)
    print(f"== REINFORCE with value baseline, {n_seeds} seeds, budget {config.total_steps} steps ==")
    print(f"config: {config}")
    reached = 0
    for seed in range(1, n_seeds + 1):
        b_step, b_time = reinforce_to_b(dataclasses.replace(config, seed=seed))
        reached += b_step is not None
        print(f"seed {seed:2d}: B at {fmt(b_step)} steps {fmt(b_time, 's')}", flush=True)
    good = reached >= int(np.ceil(0.9 * n_seeds))
    print(f"(B) within {config.total_steps} steps in {reached}/{n_seeds} seeds: {'PASS' if good else 'FAIL'}")
    print("for comparison (no target), seeds 1-3:")
    for baseline in ("constant", "none"):
        results = [reinforce_to_b(dataclasses.replace(config, seed=seed, baseline=baseline)) for seed in (1, 2, 3)]
        print(f"  baseline={baseline:8s}: B at " + ", ".join(fmt(step).strip() for step, _ in results) + " steps",
              flush=True)
    return good


def part_variance(partial_steps=20_000, n_batches=200):
    print(f"== Gradient variance of REINFORCE (reward-to-go), {n_batches} batches of 8 episodes each ==")
    seed_everything(0)
    initial = ActorCritic(4, 2)
    partial, history = train_reinforce(ReinforceConfig(total_steps=partial_steps, progress=False))
    ok = True
    for name, agent in (("random initial policy", initial), (f"after {history['step'][-1]} steps", partial)):
        mean_return = evaluate_agent(agent, episodes=20, greedy=False).mean()
        ev = fit_critic(agent)
        var = policy_gradient_variance(agent, baselines=("none", "constant", "value"), n_batches=n_batches)
        print(f"{name:24s}: mean return {mean_return:6.1f}, critic explained variance {ev:5.2f}; "
              f"total variance none {var['none']:.3g}, constant {var['constant']:.3g}, value {var['value']:.3g}; "
              f"reduction none/value {var['none'] / var['value']:5.1f}x, none/constant "
              f"{var['none'] / var['constant']:5.1f}x", flush=True)
        if name.startswith("after"):
            ok = var["none"] / var["value"] > 5
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["ppo", "reinforce", "variance", "all"], default="all")
    parser.add_argument("--seeds", type=int, default=None, help="seeds for PPO (3) and REINFORCE (10)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # fastest for these small networks; 2 threads can be much slower
    start, results = time.perf_counter(), {}
    if args.part in ("ppo", "all"):
        results["ppo"] = part_ppo(args.seeds or 3)
        print()
    if args.part in ("reinforce", "all"):
        results["reinforce"] = part_reinforce(args.seeds or 10)
        print()
    if args.part in ("variance", "all"):
        results["variance"] = part_variance()
        print()
    print("summary:", ", ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in results.items()),
          f"(benchmark took {time.perf_counter() - start:.0f}s)")


if __name__ == "__main__":
    main()
