"""Simulated interventions: when an expert takes over from the policy, why, and when it hands
back.

A stand-in for the human of human-in-the-loop fine-tuning (HABC's setting; rlx's
reconstruction, see `rlx.algos.finetune.outcome_credit`). Per env and step, with the expert idle,
it takes over when a trigger fires, and records why (`REASONS`, by priority):

- ``danger``: the env's danger predicate (on the squeeze-lift tasks: the box being lost);
- ``low_viability``: the policy's viability estimate below ``viability_threshold`` (off at 0);
- ``random``: a uniform draw below ``random_prob`` (off at 0);
- ``other``: not produced here; a reason external episodes may carry (a person's own call).

It then hands back (``release``):

- ``"steps"``: after exactly ``hold_steps`` steps;
- ``"safe"``: on the first step that finds the danger predicate clear (at least one step, at
  most ``hold_steps``);
- ``"recovered"``: on the first step, after at least ``hold_steps``, at which the env's
  ``recovered`` predicate holds (the box re-grasped, or resting on the table), and after
  ``max_hold`` steps at the latest.

An expert that hands back on a step where a trigger fires takes over again at once. Every step
records who acted and why, so credit never crosses the boundary. All functions act on a batch of
E envs, are pure and jittable with fixed shapes.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from rlx.errors import RlxError

REASONS = ("policy", "danger", "low_viability", "random", "other")
"""Per-step actor codes: 0 the policy acted; 1-4 the expert acted, taken over for that reason."""
POLICY, DANGER, LOW_VIABILITY, RANDOM, OTHER = range(len(REASONS))
RELEASES = ("steps", "safe", "recovered")


class Rule(NamedTuple):
    """When the expert takes over and hands back (numbers may be traced hyperparameters)."""

    hold_steps: int  # steps held: exactly ("steps"), at most ("safe"), at least ("recovered")
    random_prob: float = 0.0  # per-step probability of an unprovoked take-over, in [0, 1]
    viability_threshold: float = 0.0  # take over while viability < this, in [0, 1]
    release: str = "steps"  # one of RELEASES
    max_hold: int = 150  # most steps of one intervention with release = "recovered"


def check_rule(rule: Rule) -> None:
    """Raises RlxError naming the first bad value of a concrete `rule` and what is allowed."""
    for name in ("hold_steps", "max_hold"):
        value = getattr(rule, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RlxError(f"{name} must be an integer >= 1, got {value!r}.")
    for name in ("random_prob", "viability_threshold"):
        value = getattr(rule, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise RlxError(f"{name} must be a number in [0, 1], got {value!r}.")
    if rule.release not in RELEASES:
        raise RlxError(f"release must be one of {', '.join(RELEASES)}, got {rule.release!r}.")


class Carry(NamedTuple):
    """Per-env intervention state between steps."""

    active: jax.Array  # [E] bool: the expert holds control
    elapsed: jax.Array  # [E] int32: steps it has acted in this intervention
    reason: jax.Array  # [E] int32: why it took over (`REASONS`), 0 when idle


def idle(num_envs: int) -> Carry:
    """No intervention anywhere."""
    zeros = jnp.zeros((num_envs,), jnp.int32)
    return Carry(jnp.zeros((num_envs,), bool), zeros, zeros)


def trigger_reason(danger: jax.Array, viability: jax.Array, key: jax.Array, rule: Rule
                   ) -> jax.Array:  # fmt: skip
    """[E] int32: the reason a trigger fires now (danger before low viability before random),
    `POLICY` (0) where none does."""
    unprovoked = jax.random.uniform(key, danger.shape) < rule.random_prob
    low = viability < rule.viability_threshold
    return jnp.where(danger, DANGER, jnp.where(low, LOW_VIABILITY,
                                                jnp.where(unprovoked, RANDOM, POLICY)))  # fmt: skip


def releases(carry: Carry, danger: jax.Array, recovered: jax.Array, rule: Rule) -> jax.Array:
    """[E] bool: an active expert hands back at this step (module docstring)."""
    if rule.release == "steps":
        done = carry.elapsed >= rule.hold_steps
    elif rule.release == "safe":
        done = ((carry.elapsed >= 1) & ~danger) | (carry.elapsed >= rule.hold_steps)
    else:
        done = ((carry.elapsed >= rule.hold_steps) & recovered) | (carry.elapsed >= rule.max_hold)
    return carry.active & done


def step(
    carry: Carry,
    danger: jax.Array,
    viability: jax.Array,
    key: jax.Array,
    rule: Rule,
    recovered: jax.Array | None = None,
) -> tuple[Carry, jax.Array, jax.Array]:
    """Who acts now and why, and the carry for the next step.

    Returns (carry, expert_acts [E] bool, reason [E] int32: the code of `REASONS` of the
    intervention acting now, 0 where the policy acts). `recovered` ([E] bool) is needed with
    ``release = "recovered"``."""
    chex.assert_equal_shape([carry.active, carry.elapsed, danger, viability])
    chex.assert_type([carry.active, danger], bool)
    if recovered is None:
        if rule.release == "recovered":
            raise RlxError('release = "recovered" needs the env\'s recovered predicate.')
        recovered = jnp.zeros_like(danger)
    holding = carry.active & ~releases(carry, danger, recovered, rule)
    fired = trigger_reason(danger, viability, key, rule)
    start = (fired != POLICY) & ~holding
    acts = holding | start
    elapsed = jnp.where(start, 1, jnp.where(holding, carry.elapsed + 1, 0))
    reason = jnp.where(start, fired, jnp.where(holding, carry.reason, POLICY))
    return Carry(acts, elapsed.astype(jnp.int32), reason.astype(jnp.int32)), acts, reason


def reset_where(carry: Carry, done: jax.Array) -> Carry:
    """The carry with finished episodes' interventions cleared (their next step is a reset)."""
    chex.assert_equal_shape([carry.active, done])
    done = done.astype(bool)
    return Carry(carry.active & ~done, jnp.where(done, 0, carry.elapsed),
                 jnp.where(done, 0, carry.reason))  # fmt: skip


def mix(policy_action: jax.Array, expert_action: jax.Array, expert_acts: jax.Array) -> jax.Array:
    """The executed action [E, A]: the expert's where it acts, else the policy's."""
    chex.assert_equal_shape([policy_action, expert_action])
    chex.assert_shape(expert_acts, policy_action.shape[:1])
    return jnp.where(expert_acts[:, None], expert_action, policy_action)
