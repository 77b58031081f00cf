"""HABC's credit primitives (rlx.algos.finetune.outcome_credit) against hand-made episodes and hand-computed
arrays, with and without jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rlx.algos.finetune import outcome_credit as oc


def _episode(intervened, valid):
    return jnp.asarray(intervened, bool), jnp.asarray(valid, bool)


# Policy, rescued by the expert at steps 2-3, then the policy again until success at step 6.
RESCUED_THEN_OWN = _episode([0, 0, 1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 0])
# Policy, then the expert to the end (step 4).
ENDED_BY_EXPERT = _episode([0, 0, 0, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0])
# The policy alone for 5 steps.
OWN_ONLY = _episode([0, 0, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0])


SUCCESS_AT = {id(RESCUED_THEN_OWN): 6, id(ENDED_BY_EXPERT): 4, id(OWN_ONLY): 4}


def _step(episode, success: bool) -> jax.Array:
    """The episode's success step (its last valid step when it succeeds), -1 when it fails."""
    return jnp.asarray(SUCCESS_AT[id(episode)] if success else -1, jnp.int32)


def _maybe_jit(fn, jit, **static):
    bound = lambda *a: fn(*a, **static)  # noqa: E731
    return jax.jit(bound) if jit else bound


@pytest.mark.parametrize("jit", [False, True])
def test_segments_and_final_segment(jit):
    ids = _maybe_jit(oc.segment_ids, jit)
    np.testing.assert_array_equal(ids(*RESCUED_THEN_OWN), [0, 0, 1, 1, 2, 2, 2, -1])
    np.testing.assert_array_equal(ids(*ENDED_BY_EXPERT), [0, 0, 0, 1, 1, -1, -1, -1])
    final = _maybe_jit(oc.in_final_segment, jit)
    np.testing.assert_array_equal(final(*RESCUED_THEN_OWN), [0, 0, 0, 0, 1, 1, 1, 0])
    np.testing.assert_array_equal(final(*ENDED_BY_EXPERT), [0, 0, 0, 1, 1, 0, 0, 0])
    assert int(oc.last_step(RESCUED_THEN_OWN[1])) == 6


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize(
    ("episode", "success", "target", "labelled"),
    [
        # Rescued segment 0 gets 0, the final own segment the outcome, the expert's no label.
        (RESCUED_THEN_OWN, True, [0, 0, 0, 0, 1, 1, 1, 0], [1, 1, 0, 0, 1, 1, 1, 0]),
        (RESCUED_THEN_OWN, False, [0, 0, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 1, 1, 1, 0]),
        # A success the expert finished is not the policy's: its own segment gets 0.
        (ENDED_BY_EXPERT, True, [0, 0, 0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0, 0]),
        (OWN_ONLY, True, [1, 1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0]),
    ],
)
def test_intervention_aware_outcome_labels(jit, episode, success, target, labelled):
    labels = _maybe_jit(oc.outcome_labels, jit)(*episode, _step(episode, success))
    np.testing.assert_array_equal(labels.target, target)
    np.testing.assert_array_equal(labels.labelled, labelled)


def test_naive_labels_cross_intervention_boundaries():
    labels = oc.outcome_labels(*ENDED_BY_EXPERT, _step(ENDED_BY_EXPERT, True), aware=False)
    np.testing.assert_array_equal(labels.target, [1, 1, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(labels.labelled, [1, 1, 1, 1, 1, 0, 0, 0])


@pytest.mark.parametrize("jit", [False, True])
def test_efficiency_labels_count_steps_to_success_on_the_policys_final_run(jit):
    fn = _maybe_jit(oc.efficiency_labels, jit)
    g = jnp.float32(0.9)
    labels = fn(*RESCUED_THEN_OWN, _step(RESCUED_THEN_OWN, True), g)
    np.testing.assert_allclose(labels.target, [0, 0, 0, 0, 0.81, 0.9, 1.0, 0], rtol=1e-6)
    np.testing.assert_array_equal(labels.labelled, [0, 0, 0, 0, 1, 1, 1, 0])
    for episode, success in ((RESCUED_THEN_OWN, False), (ENDED_BY_EXPERT, True)):
        assert not np.asarray(fn(*episode, _step(episode, success), g).labelled).any()


def test_credit_is_anchored_at_the_success_step_not_the_last_valid_step():
    # Eight valid own steps, success at step 3 (an env that went on after it).
    intervened, valid = _episode(np.zeros(8), np.ones(8))
    labels = oc.efficiency_labels(intervened, valid, jnp.int32(3), jnp.float32(0.5))
    np.testing.assert_allclose(labels.target, [0.125, 0.25, 0.5, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(labels.labelled, [1, 1, 1, 1, 0, 0, 0, 0])
    viability = oc.outcome_labels(intervened, valid, jnp.int32(3))
    np.testing.assert_array_equal(viability.labelled, [1, 1, 1, 1, 0, 0, 0, 0])
    returns = oc.discounted_returns(valid, jnp.int32(3), jnp.float32(0.5))
    np.testing.assert_allclose(returns.target, [0.125, 0.25, 0.5, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(returns.labelled, [1, 1, 1, 1, 0, 0, 0, 0])


def test_only_failure_take_overs_label_the_segment_before_them():
    # Own 0-1, expert 2-3 (taken over at random), own 4-6: success at 6.
    intervened, valid = RESCUED_THEN_OWN
    not_failure = jnp.zeros(8, bool)
    labels = oc.outcome_labels(intervened, valid, jnp.int32(6), True, not_failure)
    np.testing.assert_array_equal(labels.labelled, [0, 0, 0, 0, 1, 1, 1, 0])
    np.testing.assert_array_equal(labels.target, [0, 0, 0, 0, 1, 1, 1, 0])
    danger = intervened  # the same take-over, for danger: the rescued segment gets 0
    labels = oc.outcome_labels(intervened, valid, jnp.int32(6), True, danger)
    np.testing.assert_array_equal(labels.labelled, [1, 1, 0, 0, 1, 1, 1, 0])
    np.testing.assert_array_equal(labels.target, [0, 0, 0, 0, 1, 1, 1, 0])


def test_discounted_returns_cross_interventions_and_are_zero_on_failure():
    _, valid = ENDED_BY_EXPERT
    returns = oc.discounted_returns(valid, jnp.int32(4), jnp.float32(0.5))
    np.testing.assert_allclose(returns.target, [0.0625, 0.125, 0.25, 0.5, 1, 0, 0, 0])
    failed = oc.discounted_returns(valid, jnp.int32(-1), jnp.float32(0.5))
    np.testing.assert_array_equal(failed.target, np.zeros(8))
    np.testing.assert_array_equal(failed.labelled, valid)


def test_relative_threshold_and_mean_one_weights_by_hand():
    v = jnp.array([0.1, 0.2, 0.3, 0.9])
    mask = jnp.array([True, True, True, False])
    assert float(oc.relative_threshold(v, mask, 0.5)) == pytest.approx(0.2)
    assert float(oc.relative_threshold(v, jnp.zeros(4, bool), 0.5)) == pytest.approx(0.5)
    w = oc.mean_one(jnp.array([1.0, 2.0, 3.0, 7.0]), mask)
    np.testing.assert_allclose(w, [0.5, 1.0, 1.5, 7.0])


def test_one_step_advantages_hand_cases():
    v = jnp.array([0.5, 0.6, 0.8])
    v_next = jnp.array([0.6, 0.8, 0.0])
    last = jnp.array([0.0, 0.0, 1.0])
    # Viability, gamma 1, outcome z = 1 on the last step.
    adv = oc.one_step_advantage(v, v_next, last * 1.0, last, 1.0)
    np.testing.assert_allclose(adv, [0.1, 0.2, 0.2], atol=1e-6)
    # Efficiency, gamma 0.9, reward 1 on the success step.
    adv = oc.one_step_advantage(v, v_next, last, last, 0.9)
    np.testing.assert_allclose(adv, [0.04, 0.12, 0.2], atol=1e-6)


def test_gates_hand_cases():
    v = jnp.array([0.0, 0.8, 1.0])
    np.testing.assert_allclose(
        oc.sigmoid_gate(v, 10.0, 0.8), 1 / (1 + np.exp(-10 * (np.array([0, 0.8, 1]) - 0.8)))
    )
    assert float(oc.sigmoid_gate(jnp.float32(0.8), 10.0, 0.8)) == pytest.approx(0.5)
    np.testing.assert_allclose(oc.power_gate(jnp.array([-0.1, 0.5, 1.2]), 2.0), [0, 0.25, 1])


def test_merged_advantage_standardises_over_the_mask():
    a_v = jnp.array([1.0, 3.0, 100.0])
    a_e = jnp.array([2.0, 6.0, -50.0])
    mask = jnp.array([True, True, False])
    gate = jnp.array([0.0, 1.0, 0.5])
    # Over the mask both standardise to [-1, 1]; step 0 takes viability's, step 1 efficiency's.
    np.testing.assert_allclose(oc.merged_advantage(a_v, a_e, gate, mask), [-1, 1, 0], atol=1e-6)
    half = oc.merged_advantage(a_v, -a_e, jnp.full(3, 0.5), mask)
    np.testing.assert_allclose(half, [0, 0, 0], atol=1e-6)
    np.testing.assert_array_equal(oc.masked_standardise(a_v, jnp.zeros(3, bool)), [0, 0, 0])


def test_weights_clip_and_give_interventions_their_own_weight():
    adv = jnp.array([-1.0, 0.0, 1.0, 10.0])
    w = oc.awr_weights(adv, 1.0, 20.0)
    np.testing.assert_allclose(w, [np.exp(-1), 1, np.e, 20], rtol=1e-6)
    intervened = jnp.array([False, True, False, False])
    valid = jnp.array([True, True, True, False])
    np.testing.assert_allclose(oc.bc_weights(w, intervened, valid, 0.5), [np.exp(-1), 0.5, np.e, 0])


def test_episode_primitives_vmap_over_a_batch_of_episodes():
    intervened = jnp.stack([RESCUED_THEN_OWN[0], ENDED_BY_EXPERT[0]])
    valid = jnp.stack([RESCUED_THEN_OWN[1], ENDED_BY_EXPERT[1]])
    labels = jax.vmap(oc.outcome_labels)(intervened, valid, jnp.array([6, 4], jnp.int32))
    np.testing.assert_array_equal(labels.target[:, 4], [1, 0])


def test_bad_shapes_and_dtypes_are_refused():
    with pytest.raises(AssertionError):
        oc.segment_ids(jnp.zeros(4, bool), jnp.ones(5, bool))
    with pytest.raises(AssertionError):
        oc.segment_ids(jnp.zeros(4), jnp.ones(4, bool))
