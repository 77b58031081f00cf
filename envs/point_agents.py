"""Point agents: k point masses in the plane, each driven to its own landmark, pure JAX.

A multi-agent-style test bed for action-dependent factorized baselines (Wu et al., ICLR 2018):
the action is the concatenation of ``k`` agents' 2-D accelerations, the distance part of the
reward is a sum of per-agent terms (each depending on one agent's action only), and a collision
penalty couples the agents (a non-separable part).

Physical state (stored in ``State.pipeline_state``, a dict of float32 arrays)::

    pos       (k, 2)  p_j ∈ [-1, 1]²     positions
    vel       (k, 2)  v_j                velocities
    landmark  (k, 2)  l_j ∈ [-1, 1]²     agent j's landmark, fixed for the episode

Action (float32, shape ``(2k,)``): in ``[-1, 1]`` (clipped inside ``step``); ``a_j =
action[2j : 2j + 2]`` is agent j's acceleration.

Dynamics (``damping = 0.8``, ``accel_scale = 0.1``, ``dt = 0.1``), per agent and coordinate::

    v' = damping v + accel_scale clip(a_j, -1, 1)
    q  = p + dt v'
    p' = clip(q, -1, 1),     v' ← 0 in every coordinate where q left [-1, 1]

Observation (float32, shape ``(6k,)``): ``[p_1, …, p_k, v_1, …, v_k, l_1, …, l_k]`` (each 2-D,
agent-major).

Reward (on the state *after* the step; ``ρ = collision_radius = 0.1``, ``c = 0.1``)::

    n_coll = #{(i, j) : i < j, ‖p'_i - p'_j‖ < ρ}
    r = -(1/k) Σ_j ‖p'_j - l_j‖ - c n_coll / k

Termination: none, ``done`` is always 0. Episodes are cut by the registry's time limit
(``episode_length = 50`` steps).

Metrics (float32 scalars, present from ``reset``; ``episode_metrics = ("goal_reached",
"distance")``):

- ``distance``: ``(1/k) Σ_j ‖p_j - l_j‖``;
- ``goal_reached``: 1.0 while every agent is within ``goal_radius = 0.1`` of its landmark;
- ``collisions``: ``n_coll`` (pairs closer than ``ρ``).

Initial-state distribution: ``p_j ~ U(-1, 1)²``, ``v_j = 0``, ``l_j ~ U(-1, 1)²``, all
independent.

Baseline controller (``baseline_policy``): a PD law to the agent's own landmark that ignores the
other agents::

    a_j = clip(4 (l_j - p_j) - 2 v_j, -1, 1)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env, State

from rlx.errors import positive_size


class PointAgents(Env):
    """k point masses each steering to its own landmark, penalised for near-collisions."""

    episode_length: int = 50
    episode_metrics: tuple[str, ...] = ("goal_reached", "distance")

    # Baseline PD gains (see the module docstring).
    KP = 4.0
    KD = 2.0

    def __init__(
        self,
        num_agents: int = 3,
        damping: float = 0.8,
        accel_scale: float = 0.1,
        dt: float = 0.1,
        goal_radius: float = 0.1,
        collision_radius: float = 0.1,
        collision_penalty: float = 0.1,
    ):
        """Set the number of agents k = ``num_agents`` (an integer ≥ 1) and the constants."""
        self.num_agents = positive_size("num_agents", num_agents)
        self.damping = float(damping)
        self.accel_scale = float(accel_scale)
        self.dt = float(dt)
        self.goal_radius = float(goal_radius)
        self.collision_radius = float(collision_radius)
        self.collision_penalty = float(collision_penalty)
        # Strictly upper-triangular mask: each unordered pair (i < j) once.
        self._pair_mask = np.triu(np.ones((self.num_agents, self.num_agents), bool), k=1)

    @property
    def observation_size(self) -> int:
        """Observation length: positions, velocities and landmarks, 6k."""
        return 6 * self.num_agents

    @property
    def action_size(self) -> int:
        """Action length: one 2-D acceleration per agent, 2k."""
        return 2 * self.num_agents

    @property
    def backend(self) -> str:
        """Physics backend name (pure JAX)."""
        return "jax"

    def _obs(self, ps: dict[str, jax.Array]) -> jax.Array:
        """Observation [p_1..p_k, v_1..v_k, l_1..l_k], flattened agent-major."""
        parts = [ps["pos"].reshape(-1), ps["vel"].reshape(-1), ps["landmark"].reshape(-1)]
        return jnp.concatenate(parts).astype(jnp.float32)

    def _distances(self, ps: dict[str, jax.Array]) -> jax.Array:
        """Per-agent distances ‖p_j - l_j‖, shape (k,)."""
        return jnp.linalg.norm(ps["pos"] - ps["landmark"], axis=-1)

    def _collisions(self, pos: jax.Array) -> jax.Array:
        """Number of pairs i < j with ‖p_i - p_j‖ < collision_radius (float32 scalar)."""
        diff = pos[:, None, :] - pos[None, :, :]
        close = jnp.sum(diff**2, axis=-1) < jnp.float32(self.collision_radius**2)
        return jnp.sum(close & self._pair_mask).astype(jnp.float32)

    def _metrics(self, ps: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """``goal_reached`` (all agents within goal_radius), ``distance``, ``collisions``."""
        dists = self._distances(ps)
        return {
            "goal_reached": jnp.all(dists < self.goal_radius).astype(jnp.float32),
            "distance": jnp.mean(dists).astype(jnp.float32),
            "collisions": self._collisions(ps["pos"]),
        }

    def reset(self, rng: jax.Array) -> State:
        """Sample p_j ~ U(-1, 1)², l_j ~ U(-1, 1)², v_j = 0."""
        k_pos, k_landmark = jax.random.split(rng)
        shape = (self.num_agents, 2)
        ps = {
            "pos": jax.random.uniform(k_pos, shape, jnp.float32, -1.0, 1.0),
            "vel": jnp.zeros(shape, jnp.float32),
            "landmark": jax.random.uniform(k_landmark, shape, jnp.float32, -1.0, 1.0),
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
        """Damped double-integrator step for every agent; reward distance + collision penalty."""
        ps = state.pipeline_state
        act = jnp.asarray(action, jnp.float32).reshape(self.num_agents, 2)
        act = jnp.clip(act, -1.0, 1.0)
        vel = jnp.float32(self.damping) * ps["vel"] + jnp.float32(self.accel_scale) * act
        pos = ps["pos"] + jnp.float32(self.dt) * vel
        out = jnp.abs(pos) > 1.0
        new_ps = {
            "pos": jnp.clip(pos, -1.0, 1.0).astype(jnp.float32),
            "vel": jnp.where(out, 0.0, vel).astype(jnp.float32),
            "landmark": ps["landmark"],
        }
        metrics = self._metrics(new_ps)
        k = jnp.float32(self.num_agents)
        reward = -metrics["distance"] - self.collision_penalty * metrics["collisions"] / k
        return state.replace(
            pipeline_state=new_ps,
            obs=self._obs(new_ps),
            reward=reward.astype(jnp.float32),
            done=jnp.zeros((), jnp.float32),
            metrics={**state.metrics, **metrics},
        )

    def baseline_policy(self, obs: jax.Array) -> jax.Array:
        """PD to the own landmark a_j = clip(4 (l_j - p_j) - 2 v_j, -1, 1); batched obs work."""
        obs = jnp.asarray(obs, jnp.float32)
        n = 2 * self.num_agents
        pos, vel, landmark = obs[..., :n], obs[..., n : 2 * n], obs[..., 2 * n : 3 * n]
        act = jnp.clip(self.KP * (landmark - pos) - self.KD * vel, -1.0, 1.0)
        return act.astype(jnp.float32)
