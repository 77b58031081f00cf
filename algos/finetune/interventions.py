"""Simulated interventions: when an expert takes over from the policy, and when it hands back.

A stand-in for the human of human-in-the-loop fine-tuning (HABC's setting; rlx's
reconstruction, see `rlx.algos.finetune.outcome_credit`). Per env and step, with the expert idle, it takes
over when any trigger fires:

- the env's danger predicate (on the squeeze-lift tasks: the box slipping out of the squeeze,
  or on MJX tilting, and with MJX's ``placement_danger`` a tube around the expert's path: a
  lifted box moving away from the target or set down off it);
- the policy's viability estimate below ``viability_threshold`` (off at 0);
- a uniform draw below ``random_prob`` (off at 0).

The expert then acts for at least one step and hands back after ``hold_steps`` steps, or
earlier, when ``release_when_safe`` holds, on the first step that finds the danger predicate
clear. Every step records who acted (``expert_acts``), so credit never crosses the boundary.
All functions act on a batch of E envs, are pure and jittable with fixed shapes.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from rlx.errors import RlxError


class Rule(NamedTuple):
    """When the expert takes over and hands back (numbers may be traced hyperparameters)."""

    hold_steps: int  # most steps of one intervention, >= 1
    random_prob: float = 0.0  # per-step probability of an unprovoked take-over, in [0, 1]
    viability_threshold: float = 0.0  # take over while viability < this, in [0, 1]
    release_when_safe: bool = True  # hand back early once the danger predicate is clear


def check_rule(rule: Rule) -> None:
    """Raises RlxError naming the first bad value of a concrete `rule` and what is allowed."""
    if isinstance(rule.hold_steps, bool) or not isinstance(rule.hold_steps, int):
        raise RlxError(f"hold_steps must be an integer >= 1, got {rule.hold_steps!r}.")
    if rule.hold_steps < 1:
        raise RlxError(f"hold_steps must be an integer >= 1, got {rule.hold_steps}.")
    for name in ("random_prob", "viability_threshold"):
        value = getattr(rule, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise RlxError(f"{name} must be a number in [0, 1], got {value!r}.")


class Carry(NamedTuple):
    """Per-env intervention state between steps."""

    active: jax.Array  # [E] bool: the expert holds control
    remaining: jax.Array  # [E] int32: steps it still holds it for


def idle(num_envs: int) -> Carry:
    """No intervention anywhere."""
    return Carry(jnp.zeros((num_envs,), bool), jnp.zeros((num_envs,), jnp.int32))


def step(
    carry: Carry,
    danger: jax.Array,
    viability: jax.Array,
    key: jax.Array,
    rule: Rule,
) -> tuple[Carry, jax.Array]:
    """Who acts now, and the carry for the next step. Returns (carry, expert_acts [E] bool).

    An idle expert takes over when a trigger fires (module docstring) and holds control for
    this step and up to ``hold_steps - 1`` more; an active one hands back once its steps are
    used, or (``release_when_safe``) when this step finds no danger."""
    chex.assert_equal_shape([carry.active, carry.remaining, danger, viability])
    chex.assert_type([carry.active, danger], bool)
    unprovoked = jax.random.uniform(key, danger.shape) < rule.random_prob
    trigger = danger | (viability < rule.viability_threshold) | unprovoked
    released = carry.active & jnp.asarray(rule.release_when_safe) & ~danger
    holding = carry.active & ~released
    start = trigger & ~carry.active
    acts = holding | start
    remaining = jnp.where(start, rule.hold_steps, carry.remaining) - acts.astype(jnp.int32)
    remaining = jnp.where(acts, remaining, 0)
    return Carry(acts & (remaining > 0), remaining), acts


def reset_where(carry: Carry, done: jax.Array) -> Carry:
    """The carry with finished episodes' interventions cleared (their next step is a reset)."""
    chex.assert_equal_shape([carry.active, done])
    done = done.astype(bool)
    return Carry(carry.active & ~done, jnp.where(done, 0, carry.remaining))


def mix(policy_action: jax.Array, expert_action: jax.Array, expert_acts: jax.Array) -> jax.Array:
    """The executed action [E, A]: the expert's where it acts, else the policy's."""
    chex.assert_equal_shape([policy_action, expert_action])
    chex.assert_shape(expert_acts, policy_action.shape[:1])
    return jnp.where(expert_acts[:, None], expert_action, policy_action)
