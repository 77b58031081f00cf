"""Simulated interventions (rlx.algos.finetune.interventions): take-over triggers and their
reasons, hand-back after K steps, on safety or once recovered, episode resets, action mixing and
rule checks, against hand-made step sequences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rlx.algos.finetune import interventions as iv

from rlx.errors import RlxError


def _run(rule, danger, viability=None, jit=False, recovered=None, reasons=False):
    """Who acted at each step of one env (and why, with `reasons`), given its danger (and
    viability, recovered) sequence."""
    danger = jnp.asarray(danger, bool)[:, None]
    viability = jnp.ones(danger.shape) if viability is None else jnp.asarray(viability)[:, None]
    rec = jnp.zeros(danger.shape, bool) if recovered is None else jnp.asarray(recovered, bool)
    keys = jax.random.split(jax.random.PRNGKey(0), danger.shape[0])

    def body(carry, x):
        d, v, k, r = x
        carry, acts, why = iv.step(carry, d, v, k, rule, r if rule.release == "recovered" else None)
        return carry, (acts, why)

    def run():
        return jax.lax.scan(body, iv.idle(1), (danger, viability, keys, rec.reshape(danger.shape)))[
            1
        ]

    acts, why = (jax.jit(run) if jit else run)()
    return np.asarray(why[:, 0] if reasons else acts[:, 0], int)


@pytest.mark.parametrize("jit", [False, True])
def test_expert_holds_for_k_steps_then_hands_back(jit):
    rule = iv.Rule(hold_steps=3, release="steps")
    acted = _run(rule, [0, 1, 0, 0, 0, 0, 0], jit=jit)
    np.testing.assert_array_equal(acted, [0, 1, 1, 1, 0, 0, 0])
    # Danger still there when the hold ends: it takes over again at once.
    acted = _run(rule, [1, 1, 1, 1, 1, 0, 0], jit=jit)
    np.testing.assert_array_equal(acted, [1, 1, 1, 1, 1, 1, 0])


def test_expert_hands_back_early_once_safe():
    rule = iv.Rule(hold_steps=5, release="safe")
    np.testing.assert_array_equal(_run(rule, [0, 1, 1, 0, 0, 0]), [0, 1, 1, 0, 0, 0])
    # One step of control at least, even when the danger clears straight away.
    np.testing.assert_array_equal(_run(rule, [1, 0, 0]), [1, 0, 0])


def test_low_viability_and_random_triggers():
    rule = iv.Rule(hold_steps=1, viability_threshold=0.3)
    acted = _run(rule, [0, 0, 0, 0], viability=[0.9, 0.2, 0.5, 0.1])
    np.testing.assert_array_equal(acted, [0, 1, 0, 1])
    never = _run(iv.Rule(hold_steps=1, random_prob=0.0), np.zeros(200))
    always = _run(iv.Rule(hold_steps=1, random_prob=1.0), np.zeros(200))
    some = _run(iv.Rule(hold_steps=1, random_prob=0.1), np.zeros(2000))
    assert never.sum() == 0 and always.sum() == 200
    assert 0.07 < some.mean() < 0.13


def test_expert_holds_until_recovered_after_its_minimum():
    rule = iv.Rule(hold_steps=2, release="recovered", max_hold=5)
    # Danger at step 1; recovered from step 2 on, but the expert holds 2 steps at least.
    acted = _run(rule, [0, 1, 0, 0, 0, 0], recovered=[1, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(acted, [0, 1, 1, 0, 0, 0])
    # Not recovered until step 5: it holds through steps 1-4.
    acted = _run(rule, [0, 1, 0, 0, 0, 0, 0], recovered=[1, 0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(acted, [0, 1, 1, 1, 1, 0, 0])
    # Never recovered: handed back after max_hold = 5 steps.
    acted = _run(rule, [0, 1, 0, 0, 0, 0, 0, 0], recovered=np.zeros(8))
    np.testing.assert_array_equal(acted, [0, 1, 1, 1, 1, 1, 0, 0])


def test_reasons_follow_the_trigger_that_started_the_intervention():
    rule = iv.Rule(hold_steps=2, release="steps", viability_threshold=0.3)
    why = _run(rule, [0, 1, 0, 0, 0, 0, 0], viability=[0.9, 0.9, 0.9, 0.9, 0.1, 0.9, 0.9],
               reasons=True)  # fmt: skip
    np.testing.assert_array_equal(why, [0, iv.DANGER, iv.DANGER, 0, iv.LOW_VIABILITY,
                                        iv.LOW_VIABILITY, 0])  # fmt: skip
    why = _run(iv.Rule(hold_steps=1, random_prob=1.0), np.zeros(3), reasons=True)
    np.testing.assert_array_equal(why, [iv.RANDOM] * 3)
    assert iv.REASONS[iv.OTHER] == "other"


def test_reset_clears_finished_envs_only():
    carry = iv.Carry(jnp.array([True, True]), jnp.array([3, 2], jnp.int32),
                     jnp.array([1, 3], jnp.int32))  # fmt: skip
    out = iv.reset_where(carry, jnp.array([1.0, 0.0]))
    np.testing.assert_array_equal(out.active, [False, True])
    np.testing.assert_array_equal(out.elapsed, [0, 2])
    np.testing.assert_array_equal(out.reason, [0, 3])


def test_mix_takes_the_experts_action_where_it_acts():
    policy, expert = jnp.zeros((3, 2)), jnp.ones((3, 2))
    np.testing.assert_array_equal(
        iv.mix(policy, expert, jnp.array([False, True, False])), [[0, 0], [1, 1], [0, 0]]
    )


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (iv.Rule(hold_steps=0), "hold_steps must be an integer >= 1, got 0"),
        (iv.Rule(hold_steps=2.5), "hold_steps must be an integer >= 1, got 2.5"),
        (iv.Rule(hold_steps=2, random_prob=1.5), "random_prob must be a number in \\[0, 1\\]"),
        (iv.Rule(hold_steps=2, viability_threshold=-0.1), "viability_threshold must be"),
        (iv.Rule(hold_steps=2, release="soon"), "release must be one of steps, safe, recovered"),
        (iv.Rule(hold_steps=2, max_hold=0), "max_hold must be an integer >= 1, got 0"),
    ],
)
def test_bad_rules_are_refused(rule, message):
    with pytest.raises(RlxError, match=message):
        iv.check_rule(rule)
