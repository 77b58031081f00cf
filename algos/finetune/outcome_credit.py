"""Per-transition credit from one binary outcome per episode, with interventions (HABC).

HABC (Hierarchical Advantage-Weighted Behavior Cloning, arXiv 2606.17043) fine-tunes a
pretrained policy from one success/failure outcome per episode: two critic heads (viability:
will this episode succeed from here; efficiency: how fast, once success is likely), a
state-adaptive gate that merges their one-step advantages, and per-transition weights on a
behaviour-cloning loss, with outcome labels that never cross the boundary between the policy's
own segments and an expert's intervention. Only the paper's abstract is public: the rules below
are rlx's reconstruction of it (the shared research notes, section 3.4), not the paper's text.

An episode is a fixed-length row of T steps (vmap over episodes):

- ``valid[t]``: step t happened (a prefix of the row: the episode ended after its last valid
  step);
- ``intervened[t]``: the expert acted at step t, not the policy (``failure[t]``: and it took over
  for a reason that stands for a failure, such as danger; not a random take-over);
- ``success_step``: the step on which the episode succeeded, -1 when it failed; its outcome is
  z = [success_step >= 0]. Credit is anchored there (`until_success`): steps after it, if the
  env went on, carry no label.

A *segment* is a maximal run of valid steps with one actor. Outcome labels
(`outcome_labels`), intervention-aware:

- the episode's final segment, if autonomous, gets z;
- an autonomous segment that a failure take-over ended gets 0 (the policy needed rescue);
- an autonomous segment ended by any other take-over (random, a person's own call) gets none:
  nothing says it was failing;
- intervention steps get no label (they are expert behaviour-cloning data).

The naive ablation labels every valid step, of either actor, with z. The viability head is
fitted to these labels (Monte Carlo; TD(0) within a segment is the other option). The
efficiency head is fitted only on the final autonomous segment of a successful episode, to

    V_e(s_t) = gamma_e^(t_s - t),   t_s the success step,

the discounted value of a reward 1 on the success transition. With one-step advantages
(`one_step_advantage`), the gate g(s) = sigmoid(kappa (V_v(s) - c)) (or V_v(s)^p; c may be a
quantile of the batch's V_v, `relative_threshold`) merges them,

    A_t = (1 - g_t) Ã_v,t + g_t Ã_e,t,     Ã = (A - mean) / std over the batch's labelled steps,

and the behaviour-cloning weights are w_t = clip(exp(A_t / beta), 0, w_max) on autonomous steps
and w_int on intervention steps (`bc_weights`).
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp


class Labels(NamedTuple):
    """Per-step regression targets and which steps carry one."""

    target: jax.Array  # [T] float32, 0 where not labelled
    labelled: jax.Array  # [T] bool


def _check_episode(intervened: jax.Array, valid: jax.Array) -> None:
    chex.assert_rank([intervened, valid], 1)
    chex.assert_equal_shape([intervened, valid])
    chex.assert_type([intervened, valid], bool)


def last_step(valid: jax.Array) -> jax.Array:
    """Index of the episode's last valid step (``valid`` is a prefix; -1 when empty)."""
    chex.assert_rank(valid, 1)
    return jnp.sum(valid.astype(jnp.int32)) - 1


def segment_ids(intervened: jax.Array, valid: jax.Array) -> jax.Array:
    """[T] int32: the index of each valid step's segment (0, 1, ... in order), -1 elsewhere.
    A segment starts at step 0 and wherever the actor changes."""
    _check_episode(intervened, valid)
    changed = jnp.concatenate([jnp.ones((1,), bool), intervened[1:] != intervened[:-1]])
    ids = jnp.cumsum((changed & valid).astype(jnp.int32)) - 1
    return jnp.where(valid, ids, -1)


def in_final_segment(intervened: jax.Array, valid: jax.Array) -> jax.Array:
    """[T] bool: the step belongs to the episode's last segment."""
    ids = segment_ids(intervened, valid)
    return valid & (ids == jnp.max(ids))


def until_success(valid: jax.Array, success_step: jax.Array) -> jax.Array:
    """[T] bool: the valid steps up to and including the success step (all valid steps of a
    failed episode, ``success_step = -1``): credit is anchored at success, whatever the env
    did after it."""
    chex.assert_rank([valid, success_step], [1, 0])
    t = jnp.arange(valid.shape[0])
    return valid & ((success_step < 0) | (t <= success_step))


def failure_ended(
    intervened: jax.Array, valid: jax.Array, failure: jax.Array | None = None
) -> jax.Array:
    """[T] bool: autonomous steps whose segment an intervention standing for a failure ended
    (``failure[t]`` marks the expert's steps taken over for a failure reason; None: every
    take-over stands for one)."""
    ids = segment_ids(intervened, valid)
    size = valid.shape[0]
    failed = valid & intervened & (jnp.ones_like(valid) if failure is None else failure)
    seg_failed = jax.ops.segment_max(failed.astype(jnp.int32), jnp.where(valid, ids, size),
                                     num_segments=size + 1)  # fmt: skip
    nxt = jnp.clip(ids + 1, 0, size)
    return valid & ~intervened & (seg_failed[nxt] > 0) & (ids + 1 < size)


def outcome_labels(
    intervened: jax.Array,
    valid: jax.Array,
    success_step: jax.Array,
    aware: bool = True,
    failure: jax.Array | None = None,
) -> Labels:
    """Viability labels of one episode (module docstring). Intervention-aware when `aware`:
    the final autonomous segment gets z; an autonomous segment ended by a take-over standing for
    a failure (`failure_ended`) gets 0; one ended by any other take-over (random, other) and the
    expert's steps get none. Naive: z on every valid step. Steps after the success step
    (`until_success`) get none either way."""
    _check_episode(intervened, valid)
    chex.assert_rank(success_step, 0)
    valid = until_success(valid, success_step)
    z = (success_step >= 0).astype(jnp.float32)
    if not aware:
        return Labels(jnp.where(valid, z, 0.0), valid)
    final = valid & ~intervened & in_final_segment(intervened, valid)
    labelled = final | failure_ended(intervened, valid, failure)
    return Labels(jnp.where(final, z, 0.0), labelled)


def efficiency_labels(
    intervened: jax.Array,
    valid: jax.Array,
    success_step: jax.Array,
    gamma: jax.Array,
    aware: bool = True,
) -> Labels:
    """Efficiency targets gamma^(t_s - t), t_s the success step, on the final autonomous segment
    of a successful episode (the policy's own run to success; every valid step up to t_s when
    not `aware`); no label elsewhere."""
    _check_episode(intervened, valid)
    chex.assert_rank([success_step, gamma], 0)
    valid = until_success(valid, success_step)
    t = jnp.arange(valid.shape[0])
    own_run = ~intervened & in_final_segment(intervened, valid) if aware else True
    labelled = (success_step >= 0) & valid & own_run
    to_go = jnp.maximum(success_step - t, 0).astype(jnp.float32)
    return Labels(jnp.where(labelled, gamma**to_go, 0.0), labelled)


def discounted_returns(valid: jax.Array, success_step: jax.Array, gamma: jax.Array) -> Labels:
    """The Monte-Carlo discounted return of reward 1 on the success step, on every valid step:
    G_t = z gamma^(t_s - t) (0 in a failed episode), whoever acted (the single-critic AWR
    baseline's target)."""
    chex.assert_rank([valid, success_step, gamma], [1, 0, 0])
    valid = until_success(valid, success_step)
    t = jnp.arange(valid.shape[0])
    to_go = jnp.maximum(success_step - t, 0).astype(jnp.float32)
    return Labels(jnp.where(valid & (success_step >= 0), gamma**to_go, 0.0), valid)


def one_step_advantage(
    value: jax.Array,
    next_value: jax.Array,
    reward: jax.Array,
    terminal: jax.Array,
    gamma: jax.Array,
) -> jax.Array:
    """A_t = r_t + gamma (1 - terminal_t) V(s_{t+1}) - V(s_t), elementwise. Viability: gamma
    = 1 and r = z on the last step (terminal there); efficiency: gamma_e and r = 1 on the
    success step."""
    chex.assert_equal_shape([value, next_value, reward, terminal])
    keep = 1.0 - terminal.astype(value.dtype)
    return reward + gamma * keep * next_value - value


def sigmoid_gate(viability: jax.Array, kappa: jax.Array, threshold: jax.Array) -> jax.Array:
    """g = sigmoid(kappa (V_v - c)): near 0 while success is uncertain, near 1 once likely."""
    return jax.nn.sigmoid(kappa * (viability - threshold))


def relative_threshold(viability: jax.Array, mask: jax.Array, quantile: jax.Array) -> jax.Array:
    """The `quantile` of V_v over the `mask`ed entries (the relative gate's threshold c: the
    gate opens on the batch's more viable states whatever the absolute level)."""
    chex.assert_equal_shape([viability, mask])
    q = jnp.nanquantile(jnp.where(mask, viability, jnp.nan), quantile)
    return jnp.where(jnp.any(mask), q, 0.5)


def mean_one(weights: jax.Array, mask: jax.Array) -> jax.Array:
    """`weights` divided by their mean over the `mask`ed entries (mean 1 there; the scale of the
    cloning loss then does not move with the advantages' spread)."""
    chex.assert_equal_shape([weights, mask])
    m = mask.astype(weights.dtype)
    mean = jnp.sum(m * weights) / jnp.maximum(jnp.sum(m), 1.0)
    return jnp.where(mask, weights / jnp.maximum(mean, 1e-12), weights)


def power_gate(viability: jax.Array, power: jax.Array) -> jax.Array:
    """g = clip(V_v, 0, 1)^p, the gate's alternative form."""
    return jnp.clip(viability, 0.0, 1.0) ** power


def masked_standardise(x: jax.Array, mask: jax.Array, eps: float = 1e-8) -> jax.Array:
    """(x - mean) / (std + eps) with mean and std over the entries where `mask`; 0 elsewhere
    (and 0 everywhere when the mask is empty)."""
    chex.assert_equal_shape([x, mask])
    w = mask.astype(x.dtype)
    count = jnp.maximum(jnp.sum(w), 1.0)
    mean = jnp.sum(w * x) / count
    std = jnp.sqrt(jnp.sum(w * (x - mean) ** 2) / count)
    return jnp.where(mask, (x - mean) / (std + eps), 0.0)


def merged_advantage(
    viability_adv: jax.Array,
    efficiency_adv: jax.Array,
    gate: jax.Array,
    mask: jax.Array,
) -> jax.Array:
    """A = (1 - g) Ã_v + g Ã_e, each advantage standardised over the `mask`ed entries."""
    chex.assert_equal_shape([viability_adv, efficiency_adv, gate, mask])
    a_v = masked_standardise(viability_adv, mask)
    a_e = masked_standardise(efficiency_adv, mask)
    return jnp.where(mask, (1.0 - gate) * a_v + gate * a_e, 0.0)


def awr_weights(advantage: jax.Array, beta: jax.Array, w_max: jax.Array) -> jax.Array:
    """w = clip(exp(A / beta), 0, w_max) (advantage-weighted regression's weights)."""
    return jnp.clip(jnp.exp(advantage / beta), 0.0, w_max)


def bc_weights(
    advantage_weights: jax.Array,
    intervened: jax.Array,
    valid: jax.Array,
    w_int: jax.Array,
) -> jax.Array:
    """Per-step weights on the behaviour-cloning log-likelihood: the advantage weights on the
    policy's own steps, ``w_int`` on the expert's, 0 on steps that did not happen."""
    chex.assert_equal_shape([advantage_weights, intervened, valid])
    w = jnp.where(intervened, w_int, advantage_weights)
    return jnp.where(valid, w, 0.0)
