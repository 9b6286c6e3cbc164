"""PPO (continuous actions) in PyTorch on a progress-bridge server's vector env, after CleanRL's
ppo_continuous_action.py: one file that reads top to bottom.

    npx pbridge serve                      # prints the token; or set PBRIDGE_TOKEN first
    python3 clients/python/examples/ppo_torch.py --url ws://127.0.0.1:8787/ws --token $PBRIDGE_TOKEN \
        --task reach --reward oracle --num-envs 8

--smoke runs two tiny updates (a few seconds) to check that everything is wired. Needs numpy, msgpack, torch.
The env runs with same-step autoreset, so the last observation of a truncated episode (info["final_obs"]) is
there to bootstrap from, and terminated and truncated stay apart all the way to GAE.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from torch.distributions.normal import Normal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from progress_bridge import RemoteVectorEnv  # noqa: E402


@dataclass
class Args:
    url: str = "ws://127.0.0.1:8787/ws"
    """the bridge's WebSocket URL"""
    token: str = os.environ.get("PBRIDGE_TOKEN", "")
    """the bridge's token (default: $PBRIDGE_TOKEN)"""
    task: str = "reach"
    """task name on the server"""
    reward: str = "oracle"
    """sparse | dense | default | oracle | naive | progress"""
    num_envs: int = 8
    """sub-envs on the server"""
    num_steps: int = 128
    """steps per sub-env per rollout"""
    total_timesteps: int = 200_000
    """env steps in all"""
    learning_rate: float = 3e-4
    """Adam step size (annealed linearly to 0)"""
    gamma: float = 0.99
    """discount; also sent to the server, which shapes rewards with it"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    num_minibatches: int = 8
    """minibatches per epoch"""
    update_epochs: int = 10
    """epochs per rollout"""
    clip_coef: float = 0.2
    """surrogate clipping"""
    ent_coef: float = 0.0
    """entropy bonus"""
    vf_coef: float = 0.5
    """value loss weight"""
    max_grad_norm: float = 0.5
    """global gradient norm clip"""
    query_stride: int = 1
    """score states every k control steps on the server (fewer model round trips per step)"""
    episode_steps: int = 0
    """time limit override (0: the task's)"""
    seed: int = 1
    """seed of the envs and of torch"""
    smoke: bool = False
    """two tiny updates, to check the wiring in seconds"""


def parse_args() -> Args:
    a = Args()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, value in vars(a).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            p.add_argument(flag, action="store_true", default=value)
        else:
            p.add_argument(flag, type=type(value), default=value)
    args = Args(**vars(p.parse_args()))
    if args.smoke:
        args.num_envs, args.num_steps, args.total_timesteps = 2, 16, 64
        args.update_epochs, args.num_minibatches = 2, 2
        args.episode_steps = args.episode_steps or 10
    return args


def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int):
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )
        self.actor_mean = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, act_dim), std=0.01),
        )
        # State-independent log-std, as in CleanRL.
        self.actor_logstd = nn.Parameter(torch.zeros(1, act_dim))

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    def get_action_and_value(self, x: torch.Tensor, action: torch.Tensor | None = None):
        mean = self.actor_mean(x)
        dist = Normal(mean, self.actor_logstd.expand_as(mean).exp())
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action).sum(1), dist.entropy().sum(1), self.critic(x)


class RunningNorm:
    """Observation normalisation with running mean and variance (the learner's, not the env's)."""

    def __init__(self, dim: int):
        self.mean, self.var, self.count = np.zeros(dim), np.ones(dim), 1e-4

    def update(self, x: np.ndarray) -> None:
        m, v, n = x.mean(0), x.var(0), x.shape[0]
        delta, total = m - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + v * n + delta**2 * self.count * n / total) / total
        self.count = total

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.mean) / np.sqrt(self.var + 1e-8), -10, 10).astype(np.float32)


def main() -> int:
    args = parse_args()
    torch.manual_seed(args.seed)
    envs = RemoteVectorEnv(
        args.url, args.token, args.task, args.num_envs,
        autoreset_mode="same-step", reward=args.reward,
        gamma=None if args.reward in ("sparse", "dense") else args.gamma,
        query_stride=args.query_stride, episode_steps=args.episode_steps or None,
        client="ppo_torch.py",
    )
    N, T, D, A = envs.num_envs, args.num_steps, envs.obs_dim, envs.act_dim
    batch_size = N * T
    minibatch = batch_size // args.num_minibatches
    updates = max(1, args.total_timesteps // batch_size)
    agent = Agent(D, A)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
    norm = RunningNorm(D)

    obs_buf = torch.zeros((T, N, D))
    act_buf = torch.zeros((T, N, A))
    logp_buf = torch.zeros((T, N))
    rew_buf = torch.zeros((T, N))
    term_buf = torch.zeros((T, N))
    trunc_buf = torch.zeros((T, N))
    val_buf = torch.zeros((T, N))
    # Value of each step's final observation where a truncation ended the episode (the bootstrap target).
    final_val_buf = torch.zeros((T, N))

    raw_obs, _ = envs.reset(seed=args.seed)
    raw_obs = raw_obs.reshape(N, D)
    norm.update(raw_obs)
    returns, successes, ep_ret = [], [], np.zeros(N)
    t0 = time.time()
    steps = 0
    for update in range(1, updates + 1):
        for g in optimizer.param_groups:
            g["lr"] = args.learning_rate * (1.0 - (update - 1.0) / updates)
        for t in range(T):
            obs = torch.from_numpy(norm(raw_obs))
            with torch.no_grad():
                action, logp, _, value = agent.get_action_and_value(obs)
            obs_buf[t], act_buf[t], logp_buf[t], val_buf[t] = obs, action, logp, value.flatten()
            low, high = envs.single_action_space.low, envs.single_action_space.high
            next_obs, reward, term, trunc, info = envs.step(np.clip(action.numpy(), low, high))
            next_obs = next_obs.reshape(N, D)
            steps += N
            rew_buf[t] = torch.from_numpy(reward.astype(np.float32))
            term_buf[t] = torch.from_numpy(term.astype(np.float32))
            trunc_buf[t] = torch.from_numpy(trunc.astype(np.float32))
            final_val_buf[t] = 0
            ep_ret += info.get("sparse_reward", reward)
            if "_final_obs" in info:
                ended = np.nonzero(info["_final_obs"])[0]
                if trunc.any():
                    final = torch.from_numpy(norm(info["final_obs"].reshape(N, D)))
                    with torch.no_grad():
                        final_val_buf[t] = agent.get_value(final).flatten() * torch.from_numpy(trunc.astype(np.float32))
                for i in ended:
                    returns.append(ep_ret[i])
                    successes.append(bool(info["final_info"]["is_success"][i]))
                    ep_ret[i] = 0
            norm.update(next_obs)
            raw_obs = next_obs

        with torch.no_grad():
            next_value = agent.get_value(torch.from_numpy(norm(raw_obs))).flatten()
            advantages = torch.zeros_like(rew_buf)
            last = torch.zeros(N)
            for t in reversed(range(T)):
                ended = torch.maximum(term_buf[t], trunc_buf[t])
                nxt = next_value if t == T - 1 else val_buf[t + 1]
                # terminated: no bootstrap; truncated: bootstrap from the final observation's value.
                target_next = (1 - ended) * nxt + trunc_buf[t] * final_val_buf[t]
                delta = rew_buf[t] + args.gamma * target_next - val_buf[t]
                last = delta + args.gamma * args.gae_lambda * (1 - ended) * last
                advantages[t] = last
            returns_buf = advantages + val_buf

        b_obs, b_act = obs_buf.reshape(-1, D), act_buf.reshape(-1, A)
        b_logp, b_adv, b_ret = logp_buf.reshape(-1), advantages.reshape(-1), returns_buf.reshape(-1)
        for _ in range(args.update_epochs):
            perm = torch.randperm(batch_size)
            for start in range(0, batch_size, minibatch):
                mb = perm[start : start + minibatch]
                _, newlogp, entropy, newvalue = agent.get_action_and_value(b_obs[mb], b_act[mb])
                ratio = (newlogp - b_logp[mb]).exp()
                adv = b_adv[mb]
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                pg_loss = torch.max(-adv * ratio, -adv * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)).mean()
                v_loss = 0.5 * ((newvalue.flatten() - b_ret[mb]) ** 2).mean()
                loss = pg_loss - args.ent_coef * entropy.mean() + args.vf_coef * v_loss
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

        recent = slice(-100, None)
        sr = float(np.mean(successes[recent])) if successes else float("nan")
        ret = float(np.mean(returns[recent])) if returns else float("nan")
        print(
            f"update {update}/{updates} steps {steps} episodes {len(returns)} return {ret:.3f} "
            f"success {sr:.2f} steps/s {steps / (time.time() - t0):.0f}",
            flush=True,
        )
    envs.close()
    print(f"done: {steps} steps in {time.time() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
