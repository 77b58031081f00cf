"""Target matching: an m-dimensional point moved towards a fixed target, pure JAX.

A test bed for action-dependent factorized baselines (Wu et al., ICLR 2018, "Variance Reduction
for Policy Gradient with Action-Dependent Factorized Baselines"): the action dimension ``m`` can
be large and the reward is an exact sum of per-dimension terms, each depending on one action
coordinate only.

Physical state (stored in ``State.pipeline_state``, a dict of float32 arrays)::

    pos     (m,)  p ∈ [-1, 1]^m      the point
    target  (m,)  g ∈ [-1, 1]^m      its target, fixed for the episode

Action (float32, shape ``(m,)``): in ``[-1, 1]`` (clipped inside ``step``), one velocity per
dimension.

Dynamics (``δ = step_size = 0.1``)::

    p' = clip(p + δ clip(a, -1, 1), -1, 1),      g' = g

Observation (float32, shape ``(2m,)``): ``[p, g]``.

Reward (on the state *after* the step; separable across action dimensions, since ``p'_i``
depends on ``a_i`` only)::

    r = -(1/m) Σ_i (p'_i - g_i)²  =  (1/m) Σ_i r_i(a_i),    r_i = -(p'_i - g_i)²   # in [-4, 0]

Termination: none, ``done`` is always 0. Episodes are cut by the registry's time limit
(``episode_length = 50`` steps). With ``one_step=True`` (the ``target_matching_bandit_m*``
names) every episode terminates after its first step: Q(s, a) = r(s, a), so the exact
per-dimension marginal ``E_{a_i ~ pi_i}[Q(s, a)]`` is known in closed form (`marginal_q`), the
oracle baseline of Wu et al.'s separable-reward argument.

Metrics (float32 scalars, present from ``reset``; both are ``episode_metrics``):

- ``distance``: ``d = (1/m) Σ_i |p_i - g_i|`` (mean absolute error);
- ``goal_reached``: 1.0 while ``d < goal_tolerance = 0.05``.

Initial-state distribution: ``p ~ U(-1, 1)^m`` and ``g ~ U(-1, 1)^m``, independent.

Baseline controller (``baseline_policy``): the dead-beat proportional law::

    a = clip(K (g - p), -1, 1),     K = 1 / δ = 10

which moves each coordinate by ``δ`` per step towards its target and lands on it exactly once
within ``δ``; from any start it is on target after at most ``2 / δ = 20`` steps.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State
from jax.scipy.stats import norm

from rlx.errors import RlxError, positive_size


class TargetMatching(Env):
    """Move an m-dimensional point to a random target; reward separable across dimensions."""

    episode_length: int = 50
    episode_metrics: tuple[str, ...] = ("goal_reached", "distance")
    metric_labels: ClassVar[dict[str, str]] = {"distance": "distance"}

    def __init__(
        self,
        action_dim: int = 6,
        step_size: float = 0.1,
        goal_tolerance: float = 0.05,
        one_step: bool = False,
    ):
        """Set the dimension m = ``action_dim`` (an integer ≥ 1), step δ and goal tolerance;
        ``one_step`` ends every episode (a termination) after its first step."""
        self.action_dim = positive_size("action_dim", action_dim)
        if not step_size > 0.0:
            raise RlxError(f"step_size must be > 0, got {step_size!r}.")
        self.step_size = float(step_size)
        self.goal_tolerance = float(goal_tolerance)
        if not isinstance(one_step, bool):
            raise RlxError(f"one_step must be true or false, got {one_step!r}.")
        self.one_step = one_step

    @property
    def exact_marginal_q(self) -> bool:
        """True when `marginal_q` is the exact E_{a_i}[Q(s, a)] (one-step episodes)."""
        return self.one_step

    @property
    def observation_size(self) -> int:
        """Observation length: [p, g], 2m."""
        return 2 * self.action_dim

    @property
    def action_size(self) -> int:
        """Action length: one velocity per dimension, m."""
        return self.action_dim

    @property
    def backend(self) -> str:
        """Physics backend name (pure JAX)."""
        return "jax"

    def _obs(self, ps: dict[str, jax.Array]) -> jax.Array:
        """Observation [p, g]."""
        return jnp.concatenate([ps["pos"], ps["target"]]).astype(jnp.float32)

    def _metrics(self, ps: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """``distance`` = mean_i |p_i - g_i| and ``goal_reached`` = 1[distance < tolerance]."""
        dist = jnp.mean(jnp.abs(ps["pos"] - ps["target"])).astype(jnp.float32)
        goal = (dist < self.goal_tolerance).astype(jnp.float32)
        return {"goal_reached": goal, "distance": dist}

    def reward_terms(self, pos: jax.Array, target: jax.Array) -> jax.Array:
        """Per-dimension rewards r_i = -(p_i - g_i)² (the reward is their mean)."""
        return -((pos - target) ** 2)

    def reset(self, rng: jax.Array) -> State:
        """Sample p ~ U(-1, 1)^m and g ~ U(-1, 1)^m."""
        k_pos, k_target = jax.random.split(rng)
        m = self.action_dim
        ps = {
            "pos": jax.random.uniform(k_pos, (m,), jnp.float32, -1.0, 1.0),
            "target": jax.random.uniform(k_target, (m,), jnp.float32, -1.0, 1.0),
        }
        return State(
            pipeline_state=ps,
            obs=self._obs(ps),
            reward=jnp.zeros((), jnp.float32),
            done=jnp.zeros((), jnp.float32),
            metrics=self._metrics(ps),
            info={},
        )

    def step(self, state: State, action: jax.Array) -> State:
        """p' = clip(p + δ clip(a), -1, 1); reward -(1/m) Σ_i (p'_i - g_i)²."""
        ps = state.pipeline_state
        act = jnp.clip(jnp.asarray(action, jnp.float32).reshape(self.action_dim), -1.0, 1.0)
        new_pos = jnp.clip(ps["pos"] + jnp.float32(self.step_size) * act, -1.0, 1.0)
        new_ps = {"pos": new_pos.astype(jnp.float32), "target": ps["target"]}
        reward = jnp.mean(self.reward_terms(new_ps["pos"], new_ps["target"]))
        return state.replace(
            pipeline_state=new_ps,
            obs=self._obs(new_ps),
            reward=reward.astype(jnp.float32),
            done=jnp.full((), float(self.one_step), jnp.float32),
            metrics={**state.metrics, **self._metrics(new_ps)},
        )

    def baseline_policy(self, obs: jax.Array) -> jax.Array:
        """Dead-beat P-law a = clip((g - p) / δ, -1, 1); works on batched observations."""
        obs = jnp.asarray(obs, jnp.float32)
        m = self.action_dim
        pos, target = obs[..., :m], obs[..., m : 2 * m]
        act = jnp.clip((target - pos) / jnp.float32(self.step_size), -1.0, 1.0)
        return act.astype(jnp.float32)

    def _bounds(self, pos: jax.Array) -> tuple[jax.Array, jax.Array]:
        """[lo, hi] with p' = p + δ clip(a, lo, hi): both clips folded into one."""
        d = jnp.float32(self.step_size)
        return jnp.maximum(-1.0, (-1.0 - pos) / d), jnp.minimum(1.0, (1.0 - pos) / d)

    def action_reward_terms(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        """r_i(a_i) = -(clip(p_i + δ clip(a_i), -1, 1) - g_i)² / m from observations [..., 2m]
        and actions [..., m]: the step's reward is their sum."""
        m = self.action_dim
        pos, target = obs[..., :m], obs[..., m : 2 * m]
        lo, hi = self._bounds(pos)
        new = pos + jnp.float32(self.step_size) * jnp.clip(action, lo, hi)
        return self.reward_terms(new, target) / m

    def expected_action_reward_terms(
        self, obs: jax.Array, mean: jax.Array, std: jax.Array
    ) -> jax.Array:
        """E_{a_i ~ N(mean_i, std_i²)} r_i(a_i), in closed form: with X = clip(a_i, lo, hi),
        c = p_i - g_i and alpha, beta = (lo - mu) / s, (hi - mu) / s,

            E r_i = -(c² + 2 c δ E[X] + δ² E[X²]) / m,
            E[X]  = lo Φ(α) + hi (1 - Φ(β)) + μ (Φ(β) - Φ(α)) + s (φ(α) - φ(β)),
            E[X²] = lo² Φ(α) + hi² (1 - Φ(β)) + (μ² + s²)(Φ(β) - Φ(α))
                    + 2 μ s (φ(α) - φ(β)) + s² (α φ(α) - β φ(β))."""
        m, d = self.action_dim, jnp.float32(self.step_size)
        pos, target = obs[..., :m], obs[..., m : 2 * m]
        lo, hi = self._bounds(pos)
        a, b = (lo - mean) / std, (hi - mean) / std
        pa, pb, fa, fb = norm.cdf(a), norm.cdf(b), norm.pdf(a), norm.pdf(b)
        ex = lo * pa + hi * (1 - pb) + mean * (pb - pa) + std * (fa - fb)
        ex2 = (lo**2 * pa + hi**2 * (1 - pb) + (mean**2 + std**2) * (pb - pa)
               + 2 * mean * std * (fa - fb) + std**2 * (a * fa - b * fb))  # fmt: skip
        c = pos - target
        return -(c**2 + 2 * c * d * ex + d**2 * ex2) / m

    def marginal_q(
        self, obs: jax.Array, action: jax.Array, mean: jax.Array, std: jax.Array
    ) -> jax.Array:
        """E_{a_i ~ N(mean_i, std_i²)}[r(s, (a_-i, a_i))] for every dimension i, shape [..., m]:
        the reward with dimension i's term replaced by its expectation. With ``one_step`` this
        is E_{a_i}[Q(s, a)] exactly."""
        terms = self.action_reward_terms(obs, action)
        expected = self.expected_action_reward_terms(obs, mean, std)
        return terms.sum(-1, keepdims=True) - terms + expected
