"""Agency transfer (Bolychev, Malaniya, Ibrahim, Osinenko 2026): TD3 or SAC that arbitrate
between the environment's baseline controller and the learner, handing control over to the
learner as training goes on, until the baseline is disabled after ``anneal_frac`` of the budget.

Per env step (`arbitrate`), with a_L the learner's proposal and a_B = pi_0(s) the baseline's::

    q         = min_j Q'_j(s, a_L)                       (target critics)
    improved  = q > best_q + nu                          (critic certificate; best_q = -inf at
    relax     = U(0, 1) < p_rel                           the start of every episode)
    a         = a_L if improved or relax else a_B
    best_q   <- q where improved;   p_rel <- lambda * p_rel

At every episode end (`schedule`), with L the mean length of the last ``length_window``
episodes and frac = clip(env_steps / (anneal_frac * total_steps), 0, 1)::

    p_rel   <- p_start = p0 + (1 - p0) frac
    ref      = ref0 + (L - ref0) frac,   ref0 = p0 S_L(lambda0),   S_L(l) = sum_{t<L} l^t
    lambda  <- the root of S_L(lambda) = ref / p_start in [0, 1]   (`solve_lambda`, bisection)

so the expected number of relaxed learner steps per episode grows linearly from ref0 to L, and
from frac = 1 on p_rel = lambda = 1: the learner acts on every step. The learners' losses are
unmodified. Stored action: the learner's proposal (``store_action="proposed"``, as published)
or the executed one; ``selective_buffer`` stores only the steps the learner executed, or with
``selective_mask="official"`` (the official TD3 script's mask) the steps where the certificate
held or a second, independent uniform draw fell below the already-decayed lambda * p_rel. The
result is a standalone policy (the learner's actor) that needs no baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import chex
import flax.struct
import jax
import jax.numpy as jnp
from brax.envs.base import Env
from rlx.algos.offpolicy import common as offpolicy
from rlx.algos.offpolicy import sac, td3

from rlx.config import hparam, require, static
from rlx.errors import RlxError
from rlx.metrics import MetricRule

BISECTION_STEPS = 50


@flax.struct.dataclass
class Arbiter:
    """Arbitration state of one run: per env (best_q, p_rel), the global lambda, and the
    lengths of the last episodes (a ring of ``length_window``)."""

    best_q: jax.Array
    p_rel: jax.Array
    lam: jax.Array
    lengths: jax.Array
    episodes: jax.Array


def arbitrate(
    q: jax.Array, best_q: jax.Array, p_rel: jax.Array, u: jax.Array, nu: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The per-step rule: (use_learner, new best_q) from q = min target Q(s, a_L).

    use_learner = (q > best_q + nu) or (u < p_rel); best_q' = q where the certificate holds.
    """
    improved = q > best_q + nu
    return improved | (u < p_rel), jnp.where(improved, q, best_q)


def geometric_sum(lam: jax.Array, length: jax.Array) -> jax.Array:
    """S_L(lambda) = sum_{t<L} lambda^t = (1 - lambda^L) / (1 - lambda), = L at lambda = 1."""
    d = 1.0 - lam
    safe = jnp.where(d > 0, d, 1.0)
    return jnp.where(d > 1e-7, -jnp.expm1(length * jnp.log1p(-safe)) / safe, length)


def solve_lambda(target: jax.Array, length: jax.Array) -> jax.Array:
    """lambda in [0, 1] with S_L(lambda) = target (clipped to [1, L], S_L's range), by
    BISECTION_STEPS halvings of d = 1 - lambda (S_L is decreasing in d)."""
    target = jnp.clip(target, 1.0, length)

    def halve(_, bounds):
        lo, hi = bounds  # S_L(1 - lo) >= target >= S_L(1 - hi)
        mid = 0.5 * (lo + hi)
        above = geometric_sum(1.0 - mid, length) >= target
        return jnp.where(above, mid, lo), jnp.where(above, hi, mid)

    lo, hi = jax.lax.fori_loop(0, BISECTION_STEPS, halve, (jnp.float32(0.0), jnp.float32(1.0)))
    return 1.0 - 0.5 * (lo + hi)


def schedule(
    env_steps: jax.Array,
    total_steps: int,
    anneal_frac: jax.Array,
    p0: jax.Array,
    lambda0: jax.Array,
    length: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """(p_start, lambda) at an episode end (see the module docstring); exactly (1, 1) once
    env_steps >= anneal_frac * total_steps."""
    frac = jnp.clip(env_steps / (anneal_frac * total_steps), 0.0, 1.0)
    p_start = p0 + (1.0 - p0) * frac
    ref0 = p0 * geometric_sum(lambda0, length)
    ref = ref0 + (length - ref0) * frac
    lam = jnp.where(frac >= 1.0, 1.0, solve_lambda(ref / p_start, length))
    return p_start, lam


@flax.struct.dataclass
class AgencySettings:
    """Agency-transfer settings (defaults: the paper's main runs), a mixin on top of a learner's
    config: ``class C(AgencySettings, learner.Config)`` puts these fields after the learner's
    and validates both."""

    store_action: str = static("proposed", "Buffer action: proposed (paper) or executed.")
    selective_buffer: bool = static(False, "Store only steps where the learner acted.")
    selective_mask: str = static(
        "executed",
        "With selective_buffer: the steps the learner executed, or 'official' (certified, or "
        "a second uniform draw below the decayed p, as the official TD3 script).",
    )
    length_window: int = static(20, "Episodes in the mean length L of the lambda solve.")
    p0: float = hparam(0.9, "Initial relax probability p at an episode start.")
    lambda0: float = hparam(0.96, "Initial in-episode decay factor of p.")
    nu: float = hparam(0.01, "Critic improvement needed to certify the learner's action.")
    anneal_frac: float = hparam(0.9, "Share of the budget after which the baseline is off.")

    def validate(self) -> None:
        """Raises RlxError naming the first bad value and what is allowed (the learner's
        settings first)."""
        super().validate()  # type: ignore[misc]  # the learner's Config, next in the MRO
        if self.store_action not in ("proposed", "executed"):
            raise RlxError(
                f"store_action must be 'proposed' or 'executed', got {self.store_action!r}."
            )
        if self.selective_mask not in ("executed", "official"):
            raise RlxError(
                f"selective_mask must be 'executed' or 'official', got {self.selective_mask!r}."
            )
        if self.length_window <= 0:
            raise RlxError(f"length_window must be positive, got {self.length_window}.")
        require(
            self,
            p0=(lambda v: 0 <= v <= 1, "a probability in [0, 1]"),
            lambda0=(lambda v: 0 <= v <= 1, "in [0, 1]"),
            nu=(lambda v: v >= 0, ">= 0"),
            anneal_frac=(lambda v: 0 < v <= 1, "in (0, 1]"),
        )


@flax.struct.dataclass
class TD3Config(AgencySettings, td3.Config):
    """Agency-transfer settings (defaults: the paper's main runs) on top of TD3's."""


@flax.struct.dataclass
class SACConfig(AgencySettings, sac.Config):
    """Agency-transfer settings (defaults: the paper's main runs) on top of SAC's."""


def end_of_episode_lengths(
    arb: Arbiter, done: jax.Array, lengths: jax.Array, window: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Writes the lengths of the episodes that ended (``done[N]``) into the ring of the last
    ``window`` lengths. Returns (ring, episodes so far, mean L over the filled rows; the ring's
    first row while it is empty)."""
    chex.assert_equal_shape([done, lengths])
    offset = jnp.cumsum(done.astype(jnp.int32)) - 1
    rows = jnp.where(done, (arb.episodes + offset) % window, window)
    ring = arb.lengths.at[rows].set(lengths.astype(jnp.float32), mode="drop")
    episodes = arb.episodes + done.sum(dtype=jnp.int32)
    filled = jnp.minimum(episodes, window)
    mean_len = jnp.where(
        filled > 0, (ring * (jnp.arange(window) < filled)).sum() / jnp.maximum(filled, 1), ring[0]
    )
    return ring, episodes, mean_len


def keep_mask(
    config: Any, use: jax.Array, improved: jax.Array, decayed_p: jax.Array, key: jax.Array | None
) -> jax.Array:
    """Which steps enter the buffer ``[N]``: all without ``selective_buffer``; else those the
    learner executed (``use``), or with ``selective_mask="official"``
    ``improved or U'(0, 1) < lambda p_rel``, U' a second draw independent of the arbitration's."""
    if not config.selective_buffer:
        return jnp.ones_like(use)
    if config.selective_mask == "executed":
        return use
    return improved | (jax.random.uniform(key, use.shape) < decayed_p)


class AgencyTransfer:
    """Agency transfer as an `rlx.algos.offpolicy.common.Behaviour`: its carry is an `Arbiter`."""

    name: str = "agency_transfer"
    needs_baseline: bool = True
    metric_rules: Mapping[str, MetricRule] = MappingProxyType(
        {"train/baseline_share": MetricRule(label="baseline share", percent=True)}
    )

    def init(self, config: Any, num_envs: int, episode_length: int) -> Arbiter:
        """best_q = -inf and p_rel = p0 in every env, lambda = lambda0, the length ring full
        of the episode limit."""
        return Arbiter(
            best_q=jnp.full((num_envs,), -jnp.inf, jnp.float32),
            p_rel=jnp.full((num_envs,), config.p0, jnp.float32),
            lam=jnp.asarray(config.lambda0, jnp.float32),
            lengths=jnp.full((config.length_window,), episode_length, jnp.float32),
            episodes=jnp.zeros((), jnp.int32),
        )

    def act(self, x: offpolicy.StepInput, arb: Arbiter, key: jax.Array) -> offpolicy.BehaviourStep:
        """`arbitrate` between the proposal and the baseline with q = certify(s, a_L);
        p_rel <- lambda p_rel; the buffer mask by `keep_mask`."""
        config = x.config
        q = x.certify(x.obs, x.proposal)
        chex.assert_shape(q, x.proposal.shape[:1])
        official = config.selective_buffer and config.selective_mask == "official"
        k_use, k_keep = jax.random.split(key) if official else (key, None)
        use, best_q = arbitrate(
            q, arb.best_q, arb.p_rel, jax.random.uniform(k_use, q.shape), config.nu
        )
        executed = jnp.where(use[:, None], x.proposal, x.baseline)
        stored = x.proposal if config.store_action == "proposed" else executed
        metrics = {
            "train/baseline_share": 1.0 - use.mean(),
            "agency/p_rel": arb.p_rel.mean(),
            "agency/lambda": arb.lam,
        }
        decayed = arb.lam * arb.p_rel
        keep = keep_mask(config, use, q > arb.best_q + config.nu, decayed, k_keep)
        arb = arb.replace(best_q=best_q, p_rel=decayed)
        return offpolicy.BehaviourStep(executed, stored, keep, arb, metrics)

    def end_episodes(
        self, config: Any, arb: Arbiter, done: jax.Array, lengths: jax.Array, env_steps: jax.Array
    ) -> Arbiter:
        """Records finished episodes' lengths; re-solves (p_start, lambda) by `schedule`;
        resets best_q and p_rel of the envs whose episode ended."""
        done = done > 0
        ring, episodes, mean_len = end_of_episode_lengths(arb, done, lengths, config.length_window)
        p_start, lam = schedule(
            env_steps.astype(jnp.float32),
            config.total_steps,
            config.anneal_frac,
            config.p0,
            config.lambda0,
            mean_len,
        )
        return Arbiter(
            best_q=jnp.where(done, -jnp.inf, arb.best_q),
            p_rel=jnp.where(done, p_start, arb.p_rel),
            lam=jnp.where(done.any(), lam, arb.lam),
            lengths=ring,
            episodes=episodes,
        )

    def evaluate(self, env: Env, action: jax.Array, obs: jax.Array) -> jax.Array:
        """The learner alone: the trained policy needs no baseline."""
        return action


AGENCY = AgencyTransfer()

TD3 = offpolicy.assemble(
    "agency_td3",
    "Agency transfer, TD3 backbone: baseline/learner arbitration annealed to the learner alone.",
    TD3Config,
    td3.LEARNER,
    AGENCY,
)
SAC = offpolicy.assemble(
    "agency_sac",
    "Agency transfer, SAC backbone: baseline/learner arbitration annealed to the learner alone.",
    SACConfig,
    sac.LEARNER,
    AGENCY,
)
