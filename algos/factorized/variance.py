"""The gradient-variance study's side of factorized baselines (`rlx gradvar`, run by
`rlx.bench.gradvar`): the functions `rlx.algos.factorized.factorized_pg` offers as
its record's extras.

- `gradient_estimates`: one fresh batch's policy-gradient estimate under every baseline variant,
  all on the same trajectories, from independent start states (`fresh_start`);
- `fit_baselines`: one update with the policy parameters put back (critics fitted at fixed theta);
- `stagger`: the envs' episodes put out of phase before the fits and batches;
- `decomposition`: Tucker et al.'s (2018) split of the single-sample gradient variance into
  state, action and trajectory terms, by re-simulation from saved env states.

Each is built from PPO's and factorized_pg's public pieces (`ppo.rollout`, `ppo.networks`,
`fpg.batch_inputs`, `fpg.factor_batch`, `fpg.baselines`, ...).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from brax.envs.base import Env
from rlx.algos import ppo
from rlx.algos.factorized import factorized_pg as fpg
from rlx.envs import episode_length, training_env

from rlx.learn.distributions import gaussian_sample


class Estimate(NamedTuple):
    """One batch's policy-gradient estimate under one baseline and how well it fits G."""

    gradient: jax.Array  # [P] flattened over the policy parameters
    unexplained: jax.Array  # [] mean_{n,i} (G_n - b_i(x_n))^2 / Var_n(G): 1 - R^2 of b


def stagger(env: Env, state: fpg.FPGState, key: jax.Array) -> fpg.FPGState:
    """`state` with env e advanced by its own r_e ~ U{0, ..., limit - 1} steps of the current
    policy (limit: the episode length), so the envs' episodes are out of phase. Envs reset
    together run in step with each other for good when every episode has the same length: a
    batch of U steps then covers one window of episode steps t, and a baseline fitted to one
    window (the linear one's t-features above all) is scored on another."""
    limit = state.config.episode_length or episode_length(env)
    k_offset, k_steps = jax.random.split(key)
    offsets = jax.random.randint(k_offset, (state.config.num_envs,), 0, limit)
    one_step = state.replace(config=state.config.replace(unroll_length=1))

    def advance(i, env_state):
        stepped, _ = ppo.rollout(
            env, one_step.replace(env_state=env_state), jax.random.fold_in(k_steps, i)
        )
        moves = i < offsets

        def pick(new, old):
            return jnp.where(moves.reshape(moves.shape + (1,) * (new.ndim - 1)), new, old)

        return jax.tree.map(pick, stepped, env_state)

    return state.replace(env_state=jax.lax.fori_loop(0, limit, advance, state.env_state))


def fresh_start(env: Env, state: fpg.FPGState, key: jax.Array) -> fpg.FPGState:
    """`state` with its env states replaced by ones reached after a whole episode's length of
    steps of the current policy from them, with noise drawn from `key`: every env has since
    been reset at least once, from reset keys drawn from `key` (for envs that draw their
    resets; physics envs restart from their one first state), so batches started from such
    states are independent."""
    limit = state.config.episode_length or episode_length(env)
    rounds = -(-limit // state.config.unroll_length)
    k_reset, key = jax.random.split(key)
    info = state.env_state.info
    if "reset_key" in info:  # pure-JAX envs draw each reset from a stored key chain: re-key it
        keys = jax.random.split(k_reset, info["reset_key"].shape[0])
        env_state = state.env_state.replace(info={**info, "reset_key": keys})
        state = state.replace(env_state=env_state)

    def advance(i, s):
        return s.replace(env_state=ppo.rollout(env, s, jax.random.fold_in(key, i))[0])

    return jax.lax.fori_loop(0, rounds, advance, state)


def gradient_estimates(
    env: Env, state: fpg.FPGState, key: jax.Array, variants: tuple[str, ...] | None = None
) -> dict[str, Estimate]:
    """The policy-gradient estimate of one fresh rollout under each baseline variant, at the
    current parameters: g_v = grad_theta mean_t sum_i log pi_i(a_ti|s_t) A_t^i (raw advantages,
    no normalisation or clipping), flattened over the policy parameters. The rollout starts
    from independent states (`fresh_start`); every variant sees the same trajectories (a
    paired comparison). `variants` defaults to every one `env` supports (`available`)."""
    config = state.config
    policy_net, _ = ppo.networks(env, config)
    variants = fpg.available(env) if variants is None else variants
    k_start, k_roll, k_base = jax.random.split(key, 3)
    state = fresh_start(env, state, k_start)
    _, traj = ppo.rollout(env, state, k_roll)
    inputs = fpg.batch_inputs(env, state, traj)
    out = {}
    for variant in variants:
        batch = fpg.factor_batch(env, state, traj, variant, k_base, inputs)
        x = batch.inputs

        def surrogate(policy_params, x=x, adv=batch.advantage_i):
            mean, log_std = policy_net.apply(policy_params, x.obs)
            logp = fpg.per_dim_log_prob(x.action, mean, log_std)
            return jnp.mean(jnp.sum(logp * jax.lax.stop_gradient(adv), axis=-1))

        grads = jax.grad(surrogate)(state.params["policy"])
        unexplained = jnp.mean(batch.advantage_i**2) / (jnp.var(batch.target) + 1e-12)
        out[variant] = Estimate(
            jnp.concatenate([g.ravel() for g in jax.tree.leaves(grads)]), unexplained
        )
    return out


def decomposition(
    env: Env,
    state: fpg.FPGState,
    key: jax.Array,
    num_actions: int = 8,
    num_futures: int = 8,
    horizon: int = 20,
    variants: tuple[str, ...] | None = None,
) -> dict[str, dict[str, jax.Array]]:
    """Tucker et al. (2018) split of the single-sample gradient variance at the current
    parameters, by re-simulation from the run's current env states s (one per env).

    For each s: ``num_actions`` actions a ~ pi(.|s); for each (s, a), ``num_futures`` futures
    tau (fresh policy and env noise) give Q^(s, a, tau) = sum_{l<H} gamma^l r_l + gamma^H V(s_H)
    (masked after a termination). With u_i = grad log pi_i(a_i|s), Q-bar = mean_tau Q^ and
    h_v(s, a) = sum_i (Q-bar - b_i^v(s, a_-i)) u_i, the traces of

        trajectory = E_{s,a} Var_tau(Q^) |sum_i u_i|^2          (the same for every baseline)
        action     = E_s Var_a h_v(s, a) - trajectory / num_futures
        state      = Var_s E_a h_v(s, a) - E_s[Var_a h_v] / num_actions

    (the subtractions remove the finite-sample noise of the inner means). Returns
    {variant: {"state", "action", "trajectory", "total"}} for `variants` (default: `available`).
    """
    config = state.config
    variants = fpg.available(env) if variants is None else variants
    policy_net, value_net = ppo.networks(env, config)
    tenv = training_env(env, config.episode_length)
    start = state.env_state
    n = config.num_envs
    k_act, k_fut, k_base = jax.random.split(key, 3)
    obs = start.obs
    norm_obs = ppo.normalize_obs(state, obs)
    mean, log_std = policy_net.apply(state.params["policy"], norm_obs)
    actions = gaussian_sample(
        k_act, jnp.broadcast_to(mean, (num_actions, n, mean.shape[-1])), log_std
    )  # [A, N, m]
    act = ppo.ALGORITHM.policy(state, env)

    def future(first_action: jax.Array, fkey: jax.Array) -> jax.Array:
        """Q^ of one future per env from `start` with `first_action` [N, m]: [N]."""
        s1 = tenv.step(start, jnp.clip(first_action, -1.0, 1.0))

        def body(carry, skey):
            s, ret, alive, disc = carry
            a = jax.vmap(lambda o, k: act(o, k, False))(s.obs, jax.random.split(skey, n))
            nxt = tenv.step(s, a)
            ret = ret + alive * disc * config.reward_scaling * nxt.reward
            alive = alive * (1.0 - nxt.done)
            return (nxt, ret, alive, disc * config.gamma), None

        ret0 = config.reward_scaling * s1.reward
        alive0 = 1.0 - s1.done
        (s_h, ret, alive, disc), _ = jax.lax.scan(
            body, (s1, ret0, alive0, config.gamma), jax.random.split(fkey, horizon - 1)
        )
        v_h = value_net.apply(state.params["value"], ppo.normalize_obs(state, s_h.obs))
        return ret + alive * disc * v_h

    fkeys = jax.random.split(k_fut, (num_actions, num_futures))
    q_hat = jax.vmap(lambda a, ks: jax.vmap(lambda k: future(a, k))(ks))(actions, fkeys)
    q_bar, q_var = q_hat.mean(1), q_hat.var(1, ddof=1)  # [A, N]

    def score_grad(weights: jax.Array, o: jax.Array, a: jax.Array) -> jax.Array:
        """grad_theta sum_i w_i log pi_i(a_i|s), flattened."""

        def f(p):
            mu, ls = policy_net.apply(p, o)
            return jnp.sum(jax.lax.stop_gradient(weights) * fpg.per_dim_log_prob(a, mu, ls))

        g = jax.grad(f)(state.params["policy"])
        return jnp.concatenate([x.ravel() for x in jax.tree.leaves(g)])

    ones = jnp.ones_like(actions[0, 0])
    full = jax.vmap(jax.vmap(lambda o, a: score_grad(ones, o, a), (0, 0)), (None, 0))(
        norm_obs, actions
    )  # [A, N, P]: grad log pi(a|s)
    trajectory = jnp.mean(q_var * jnp.sum(full**2, -1))
    values = value_net.apply(state.params["value"], norm_obs)
    steps = jnp.where(start.done > 0, 0.0, start.info["steps"])
    out = {}
    for variant in variants:
        b = jax.vmap(
            lambda a, v=variant: fpg.baselines(
                env, state, v, fpg.Inputs(norm_obs, obs, steps, a, mean, log_std, values), k_base
            )
        )(actions)  # [A, N, m]
        w = q_bar[..., None] - b
        h = jax.vmap(jax.vmap(score_grad, (0, 0, 0)), (0, None, 0))(w, norm_obs, actions)
        per_state_mean = h.mean(0)  # [N, P]
        action_raw = jnp.mean(jnp.sum(h.var(0, ddof=1), -1))
        state_raw = jnp.sum(per_state_mean.var(0, ddof=1))
        action = action_raw - trajectory / num_futures
        st = state_raw - action_raw / num_actions
        out[variant] = {
            "state": st,
            "action": action,
            "trajectory": trajectory,
            "total": st + action + trajectory,
        }
    return out


def fit_baselines(env: Env, state: fpg.FPGState) -> fpg.FPGState:
    """One `update` whose policy parameters are put back afterwards: V, Q, the regression
    network and the linear baselines are fitted to the current policy's returns at fixed theta (the variance study's
    protocol: measure a fixed policy's gradient with baselines trained for that policy)."""
    new, _ = fpg.update(env, state)
    return new.replace(params={**new.params, "policy": state.params["policy"]})
