"""The environment contract in one place: what an env must provide, what it may provide, and a
checker (`check_env`, `rlx check-env NAME`) that steps it under ``jit`` and ``vmap``.

**Required** (`REQUIRED`): the Brax `Env` interface. ``reset(key) -> State`` and
``step(state, action) -> State`` are pure JAX (jittable, vmappable); ``observation_size`` and
``action_size`` are positive ints; a `State` holds ``obs`` (a float vector of
``observation_size``, finite), ``reward`` (a float scalar, finite), ``done`` (a scalar, 0 or 1)
and ``metrics`` (a dict of scalars); ``step`` returns a State of the same structure, shapes and
dtypes as ``reset`` (``lax.scan`` carries it). Actions are vectors of ``action_size`` in [-1, 1].

**Optional** (`CAPABILITIES`): attributes, methods and metrics that some part of rlx reads where an
env has them (each row names its reader). An env that declares one must declare it in the stated
form: a malformed capability fails the contract as a required item does; an absent one does not.

`check_env` runs everything concretely (a batch of keys, random actions); `require_env` checks
only what abstract evaluation (`jax.eval_shape`) can see, compiles nothing, and raises one
`RlxError` naming the first problem.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env, State
from rlx.envs.goals import GoalLayout

from rlx.errors import RlxError, positive_size


@dataclasses.dataclass(frozen=True)
class Item:
    """One entry of the contract: its name, the form it must take and who reads it."""

    name: str
    form: str
    read_by: str


REQUIRED: tuple[Item, ...] = (
    Item("reset", "reset(key) -> State, pure JAX (jit, vmap)", "every algorithm"),
    Item(
        "step",
        "step(state, action) -> State of reset's structure, shapes, dtypes",
        "every algorithm (lax.scan carries the State)",
    ),
    Item("observation_size", "int >= 1", "networks, normaliser"),
    Item("action_size", "int >= 1 (actions in [-1, 1])", "networks, random actions"),
    Item("obs", "State.obs: float vector (observation_size,), finite", "every algorithm"),
    Item("reward", "State.reward: float scalar, finite", "every algorithm"),
    Item("done", "State.done: scalar, 0 or 1", "auto-reset, returns, bootstrapping"),
    Item(
        "metrics",
        "State.metrics: dict of scalars, same keys on reset and step",
        "outcomes, evaluation",
    ),
)
"""What every environment must provide (the Brax `Env` interface and its `State`)."""

CAPABILITIES: tuple[Item, ...] = (
    Item(
        "episode_length",
        "int >= 1 (default 1000)",
        "rlx.envs.episode_length: training episode limit, evaluation length",
    ),
    Item("action_repeat", "int >= 1 (default 1)", "rlx.envs.training_env"),
    Item(
        "resample_resets",
        "bool (default: True unless the env has `sys`)",
        "rlx.envs.training_env: auto-reset draws fresh initial states",
    ),
    Item(
        "action_scale",
        "tuple of action_size numbers > 0",
        "algos.offpolicy action_scale (physical units per action unit)",
    ),
    Item(
        "baseline_policy",
        "baseline_policy(obs) -> action, one obs or a batch",
        "baseline, agency transfer, residual, habc/sft_ppo expert, dataset collect, render",
    ),
    Item(
        "goal_reached",
        'metrics["goal_reached"] in [0, 1]',
        "goal rates in evaluation and tables; habc/sft_ppo success",
    ),
    Item(
        "episode_metrics",
        "tuple of names in State.metrics",
        "rlx.envs.outcome_metrics: last-step values are the episode's outcomes",
    ),
    Item("metric_labels", "dict outcome name -> table label", "rlx.envs.outcome_rules"),
    Item(
        "rate_metrics",
        "tuple of outcome names, values in [0, 1]",
        "rlx.envs.outcome_rules: shown as percentages",
    ),
    Item(
        "goal_layout",
        "GoalLayout: state_size + goal_size = observation_size",
        "offline goal-conditioned algorithms (rlx.envs.goals)",
    ),
    Item(
        "reset_task",
        "num_tasks: int >= 1 and reset_task(key, task) -> State",
        "rlx.evaluation: every evaluation task equally often",
    ),
    Item(
        "danger",
        "danger(states) -> bool per env, on a batch of States",
        "habc interventions (danger_trigger)",
    ),
    Item(
        "exact_distance",
        "exact_distance(tables, state, goal), check_distance_table(tables)",
        "value accuracy of offline goal-conditioned algorithms",
    ),
    Item(
        "marginal_q",
        "exact_marginal_q: bool, marginal_q(raw_obs, action, mean, std)",
        "factorized_pg oracle baseline",
    ),
    Item("draw", "draw(ax, states, t)", "rlx render: GIF"),
    Item("sys", "a Brax System, with dt > 0", "rlx render: HTML; resample_resets default"),
)
"""What an environment may provide, and the rlx code that reads it where present."""

OK, MISSING, MALFORMED, SKIPPED = "ok", "missing", "malformed", "skipped"
PRESENT, ABSENT = "present", "absent"


@dataclasses.dataclass(frozen=True)
class Finding:
    """The verdict on one contract item: a status and a one-line reason (or note)."""

    item: str
    required: bool
    status: str
    reason: str = ""

    @property
    def failed(self) -> bool:
        """True for a missing or malformed required item and a malformed capability (a skipped
        item follows a failed one)."""
        return self.status in ((MISSING, MALFORMED) if self.required else (MALFORMED,))


@dataclasses.dataclass(frozen=True)
class EnvReport:
    """Every contract item's `Finding` for one environment, required items first."""

    env: str
    findings: tuple[Finding, ...]
    steps: int
    batch: int

    @property
    def ok(self) -> bool:
        """True when every required item is ok and no present capability is malformed."""
        return not self.problems

    @property
    def problems(self) -> tuple[str, ...]:
        """``"item: reason"`` for each failed finding, in contract order."""
        return tuple(f"{f.item}: {f.reason}" for f in self.findings if f.failed)

    def text(self) -> str:
        """A short aligned table: item, status and reason, required items then capabilities."""
        lines = [f"{self.env}: environment contract ({self.batch} envs x {self.steps} steps)"]
        for required, title in ((True, "required"), (False, "optional")):
            lines.append(f"  {title}:")
            for f in (f for f in self.findings if f.required == required):
                lines.append(f"    {f.item:17s} {f.status:10s} {f.reason}".rstrip())
        return "\n".join(lines)


def contract_error(name: str, problem: str) -> RlxError:
    """The one-line error for environment `name` failing the contract on `problem`."""
    return RlxError(f"environment {name} fails the contract: {problem}")


class Malformed(Exception):
    """Raised by a check with the one-line reason an item (default: the one being checked) is
    malformed."""

    def __init__(self, reason: str, item: str = ""):
        super().__init__(reason)
        self.item = item


@dataclasses.dataclass(frozen=True)
class Probe:
    """What the checks look at: the declared sizes, a batch of reset States and (concrete runs
    only) the States of `steps` random-action steps, stacked ``[steps, batch, ...]``."""

    obs_size: int
    action_size: int
    batch: int
    reset: State
    stepped: State
    trajectory: State | None = None
    alive: np.ndarray | None = None
    """``[steps, batch]``: 1 where the env had not finished before that step."""

    @property
    def concrete(self) -> bool:
        """True when the probe holds values, not only shapes."""
        return self.trajectory is not None

    def values(self, get: Callable[[State], Any]) -> np.ndarray | None:
        """``get`` of the reset States and of every live stepped State, flattened (None when
        abstract)."""
        if not self.concrete:
            return None
        first = np.asarray(get(self.reset)).reshape(-1)
        later = np.asarray(get(self.trajectory))
        return np.concatenate([first, later[self.alive > 0].reshape(-1)])


# ------------------------------------------------------------------------------ entry points


def check_env(
    env: Env | str, *, key: jax.Array | int | None = None, steps: int = 8, batch: int = 4
) -> EnvReport:
    """Checks `env` (or the env named so, via `rlx.envs.make`) against the contract: resets a
    batch of `batch` keys and takes `steps` random-action steps under ``jit(vmap(...))``; `key`
    is a PRNG key or an int seed (default 0)."""
    steps, batch = positive_size("steps", steps), positive_size("batch", batch)
    name, env = _resolve(env)
    key = jax.random.PRNGKey(key or 0) if key is None or isinstance(key, int) else key
    return _report(name, env, batch, (key, steps))


def require_env(env: Env, name: str | None = None) -> None:
    """Raises RlxError naming the first problem `jax.eval_shape` can see (interface, sizes,
    shapes, dtypes, capability forms); compiles and runs nothing."""
    name = name or type(env).__name__
    report = _report(name, env, 2, None)
    if not report.ok:
        raise contract_error(name, report.problems[0])


def _resolve(env: Env | str) -> tuple[str, Env]:
    if isinstance(env, str):
        from rlx import envs

        return env, envs.make(env)
    return type(env).__name__, env


def _report(name: str, env: Env, batch: int, run: tuple[jax.Array, int] | None) -> EnvReport:
    """The report: the interface, then the State's shapes and dtypes (`jax.eval_shape`), then,
    when `run` = (key, steps) is given and all that is ok, its values; then the capabilities."""
    found, sizes = _interface(env)
    probe = None
    if sizes is not None and not _failed(found):
        probe = _probe(found, lambda: _abstract(env, sizes, batch))
    if probe is not None and run is not None and not _failed(found):
        probe = _probe(found, lambda: _concrete(env, probe, *run)) or probe
    rows = [found.get(i.name) or _skipped(i.name) for i in REQUIRED]
    rows += [_capability(env, i.name, probe) for i in CAPABILITIES]
    return EnvReport(name, tuple(rows), run[1] if run else 0, batch)


def _failed(found: dict[str, Finding]) -> bool:
    return any(f.failed for f in found.values())


def _probe(found: dict[str, Finding], make: Callable[[], Probe]) -> Probe | None:
    """`make()`'s probe with its State findings added to `found`; None (and the stage that
    raised added as malformed) when it fails."""
    try:
        probe = make()
    except Malformed as err:
        found[err.item] = Finding(err.item, True, MALFORMED, str(err))
        return None
    found.update(_state_findings(probe))
    return probe


def _skipped(item: str) -> Finding:
    return Finding(item, True, SKIPPED, "not checked: an earlier item failed")


# ------------------------------------------------------------------------------ required items


def _interface(env: Env) -> tuple[dict[str, Finding], tuple[int, int] | None]:
    """Findings on reset, step and the two sizes, and the sizes when both are well formed."""
    out = {}
    for method in ("reset", "step"):
        if not callable(getattr(env, method, None)):
            out[method] = Finding(method, True, MISSING, f"{type(env).__name__} has no {method}()")
    sizes = []
    for attr in ("observation_size", "action_size"):
        try:
            value = _traced_attribute(env, attr)
        except AttributeError:
            out[attr] = Finding(attr, True, MISSING, f"{type(env).__name__} has no {attr}")
            continue
        except Malformed as err:
            out[attr] = Finding(attr, True, MALFORMED, str(err))
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            out[attr] = Finding(attr, True, MALFORMED, f"{value!r} is not a positive int")
        else:
            out[attr] = Finding(attr, True, OK, str(int(value)))
            sizes.append(int(value))
    return out, (sizes[0], sizes[1]) if len(sizes) == 2 else None


def _traced_attribute(env: Env, attr: str) -> Any:
    """``env.<attr>`` read inside an abstract trace (Brax's `observation_size` resets the env to
    measure it; traced, that costs no physics)."""
    box = {}

    def read() -> int:
        box["value"] = getattr(env, attr)
        return 0

    try:
        jax.eval_shape(read)
    except AttributeError:
        raise
    except Exception as err:  # any failure of user code is a finding
        raise Malformed(f"reading it raised {_brief(err)}") from None
    return box["value"]


def _abstract(env: Env, sizes: tuple[int, int], batch: int) -> Probe:
    """Shapes and dtypes of a vmapped reset and step (`jax.eval_shape`)."""
    keys = jax.ShapeDtypeStruct((batch, 2), jnp.uint32)
    actions = jax.ShapeDtypeStruct((batch, sizes[1]), jnp.float32)
    reset = _stage("reset", lambda: jax.eval_shape(jax.vmap(env.reset), keys))
    _require_state("reset", reset)
    stepped = _stage("step", lambda: jax.eval_shape(jax.vmap(env.step), reset, actions))
    _require_state("step", stepped)
    return Probe(sizes[0], sizes[1], batch, reset, stepped)


def _concrete(env: Env, probe: Probe, key: jax.Array, steps: int) -> Probe:
    """`probe` with values: a jitted, vmapped reset of its batch of keys and `steps` steps of
    uniform random actions in [-1, 1]."""
    batch, k_reset, k_act = probe.batch, *jax.random.split(key)
    reset = _stage("reset", lambda: jax.jit(jax.vmap(env.reset))(jax.random.split(k_reset, batch)))

    def body(state: State, k: jax.Array) -> tuple[State, State]:
        action = jax.random.uniform(k, (batch, probe.action_size), minval=-1.0, maxval=1.0)
        nxt = jax.vmap(env.step)(state, action)
        return nxt, nxt

    run = jax.jit(lambda s, k: jax.lax.scan(body, s, jax.random.split(k, steps))[1])
    trajectory = _stage("step", lambda: run(reset, k_act))
    done = np.asarray(trajectory.done, np.float64)
    alive = np.cumprod(np.concatenate([np.ones((1, batch)), 1 - done[:-1]]), axis=0) > 0
    return dataclasses.replace(probe, reset=reset, trajectory=trajectory, alive=alive)


def _stage(stage: str, fn: Callable[[], Any]) -> Any:
    """`fn()`, with any exception turned into Malformed for `stage`."""
    try:
        return fn()
    except Malformed:
        raise
    except Exception as err:  # any failure of user code is a finding
        raise Malformed(f"under jit(vmap) raised {_brief(err)}", stage) from None


def _require_state(stage: str, state: Any) -> None:
    if not isinstance(state, State):
        raise Malformed(f"returns {type(state).__name__}, not a brax State", stage)


def _state_findings(probe: Probe) -> dict[str, Finding]:
    """Findings on reset, step, obs, reward, done and metrics."""
    checks = {
        "step": _check_step_structure,
        "obs": _check_obs,
        "reward": _check_reward,
        "done": _check_done,
        "metrics": _check_metrics,
    }
    out = {"reset": Finding("reset", True, OK)}
    for item, check in checks.items():
        try:
            out[item] = Finding(item, True, OK, check(probe) or "")
        except Malformed as err:
            out[item] = Finding(item, True, MALFORMED, str(err))
    return out


def _check_step_structure(probe: Probe) -> str:
    before, after = _leaves(probe.reset), _leaves(probe.stepped)
    for path in [*before, *after]:
        if path not in before or path not in after:
            where = "step's" if path in after else "reset's"
            raise Malformed(f"only {where} State has {path} (lax.scan needs the same structure)")
        a, b = before[path], after[path]
        if (a.shape, a.dtype) != (b.shape, b.dtype):
            raise Malformed(f"{path} is {_spec(b)} after step, {_spec(a)} after reset")
    return ""


def _leaves(state: State) -> dict[str, Any]:
    flat = jax.tree_util.tree_flatten_with_path(state)[0]
    return {jax.tree_util.keystr(path): leaf for path, leaf in flat}


def _spec(leaf: Any) -> str:
    return f"{jnp.dtype(leaf.dtype).name}{tuple(leaf.shape[1:])}"


def _check_obs(probe: Probe) -> str:
    obs = probe.reset.obs
    if not hasattr(obs, "shape") or obs.shape[1:] != (probe.obs_size,):
        shape = tuple(obs.shape[1:]) if hasattr(obs, "shape") else type(obs).__name__
        raise Malformed(f"shape {shape} is not (observation_size,) = ({probe.obs_size},)")
    if not jnp.issubdtype(obs.dtype, jnp.floating):
        raise Malformed(f"dtype {jnp.dtype(obs.dtype).name} is not floating")
    _require_finite(probe, lambda s: s.obs, "obs")
    return f"float ({probe.obs_size},)"


def _check_reward(probe: Probe) -> str:
    reward = probe.reset.reward
    if jnp.shape(reward) != (probe.batch,):
        raise Malformed(f"shape {tuple(jnp.shape(reward)[1:])} per env is not a scalar ()")
    if not jnp.issubdtype(reward.dtype, jnp.floating):
        raise Malformed(f"dtype {jnp.dtype(reward.dtype).name} is not floating")
    _require_finite(probe, lambda s: s.reward, "reward")
    return ""


def _require_finite(probe: Probe, get: Callable[[State], Any], what: str) -> None:
    """Malformed naming where `what` is first NaN or infinite (reset, or step t)."""
    if not probe.concrete:
        return
    if not np.isfinite(np.asarray(get(probe.reset), np.float64)).all():
        raise Malformed("NaN or inf on reset")
    later = np.isfinite(np.asarray(get(probe.trajectory), np.float64))
    bad = ~later.reshape(*later.shape[:2], -1).all(-1) & probe.alive
    if bad.any():
        raise Malformed(f"NaN or inf on step {int(np.argwhere(bad)[0][0]) + 1}")


def _check_done(probe: Probe) -> str:
    done = probe.reset.done
    if jnp.shape(done) != (probe.batch,):
        raise Malformed(f"shape {tuple(jnp.shape(done)[1:])} per env is not a scalar ()")
    values = probe.values(lambda s: s.done)
    if values is not None and not np.isin(values, (0, 1)).all():
        raise Malformed(f"value {values[~np.isin(values, (0, 1))][0].item()!r} is not 0 or 1")
    return ""


def _check_metrics(probe: Probe) -> str:
    metrics = probe.reset.metrics
    if not isinstance(metrics, Mapping):
        raise Malformed(f"is a {type(metrics).__name__}, not a dict")
    for name, value in metrics.items():
        if jnp.shape(value) != (probe.batch,):
            raise Malformed(f"{name!r} has shape {tuple(jnp.shape(value)[1:])}, not a scalar ()")
    return ", ".join(metrics) or "none"


# ------------------------------------------------------------------------------ capabilities


def _capability(env: Env, item: str, probe: Probe | None) -> Finding:
    """The Finding on optional capability `item`: absent, present (with a note) or malformed;
    only attribute forms are checked when `probe` is None (the env failed a required item)."""
    present, check = _CHECKS[item]
    try:
        if not present(env, probe):
            return Finding(item, False, ABSENT)
        return Finding(item, False, PRESENT, check(env, probe) or "")
    except Malformed as err:
        return Finding(item, False, MALFORMED, str(err))
    except Exception as err:  # any failure of user code is a finding
        return Finding(item, False, MALFORMED, f"raised {_brief(err)}")


def _has(*names: str) -> Callable[[Env, Probe | None], bool]:
    return lambda env, probe: any(hasattr(env, n) for n in names)


def _positive_int(attr: str) -> Callable[[Env, Probe | None], str]:
    def check(env: Env, probe: Probe | None) -> str:
        value = getattr(env, attr)
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise Malformed(f"{value!r} is not a positive int")
        return str(int(value))

    return check


def _check_resample(env: Env, probe: Probe | None) -> str:
    if not isinstance(env.resample_resets, bool | np.bool_):
        raise Malformed(f"{env.resample_resets!r} is not a bool")
    return str(bool(env.resample_resets))


def _check_action_scale(env: Env, probe: Probe | None) -> str:
    scale = np.asarray(env.action_scale, np.float64).reshape(-1)
    if probe is not None and scale.shape != (probe.action_size,):
        raise Malformed(f"{scale.size} numbers, not action_size = {probe.action_size}")
    if not (scale > 0).all():
        raise Malformed(f"{tuple(scale)} are not all > 0")
    return ""


def _check_baseline(env: Env, probe: Probe | None) -> str:
    if not callable(env.baseline_policy):
        raise Malformed("is not callable")
    if probe is None:
        return ""
    one = jax.eval_shape(env.baseline_policy, _one(probe.reset.obs))
    many = jax.eval_shape(env.baseline_policy, probe.reset.obs)
    want = (probe.action_size,)
    if jnp.shape(one) != want:
        raise Malformed(f"one obs gives shape {tuple(jnp.shape(one))}, not (action_size,) = {want}")
    if jnp.shape(many) != (probe.batch, *want):
        raise Malformed(f"a batch of {probe.batch} obs gives shape {tuple(jnp.shape(many))}, "
                        f"not {(probe.batch, *want)}")  # fmt: skip
    if probe.concrete:
        _check_baseline_values(env, probe.reset.obs)
    return f"obs ({probe.obs_size},) -> action {want}"


def _check_baseline_values(env: Env, obs: jax.Array) -> None:
    """Malformed unless the actions on a batch are finite and those of each obs alone."""
    many = np.asarray(jax.jit(env.baseline_policy)(obs))
    if not np.isfinite(many).all():
        raise Malformed("NaN or inf on the reset observations")
    one = np.asarray(jax.jit(jax.vmap(env.baseline_policy))(obs))
    if not np.allclose(many, one, rtol=1e-4, atol=1e-5):
        raise Malformed("a batch of obs gives other actions than each obs alone")


def _one(x: Any) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(x.shape[1:], x.dtype)


def _has_goal(env: Env, probe: Probe | None) -> bool:
    return probe is not None and "goal_reached" in probe.reset.metrics


def _check_unit_metric(name: str, probe: Probe) -> None:
    values = probe.values(lambda s: s.metrics[name])
    if values is not None and not ((values >= 0) & (values <= 1)).all():
        raise Malformed(
            f"{name} takes {values[(values < 0) | (values > 1)][0].item()!r}, not in [0, 1]"
        )


def _check_goal(env: Env, probe: Probe | None) -> str:
    _check_unit_metric("goal_reached", probe)
    return ""


def _names(env: Env, attr: str) -> tuple[str, ...]:
    value = getattr(env, attr)
    if isinstance(value, str) or not all(isinstance(n, str) for n in value):
        raise Malformed(f"{value!r} is not a tuple of metric names")
    return tuple(value)


def _require_metrics(names: tuple[str, ...], probe: Probe | None, attr: str) -> None:
    if probe is None:
        return
    lacking = [n for n in names if n not in probe.reset.metrics]
    if lacking:
        raise Malformed(f"names {', '.join(lacking)}, which State.metrics lacks")


def _check_episode_metrics(env: Env, probe: Probe | None) -> str:
    names = _names(env, "episode_metrics")
    _require_metrics(names, probe, "episode_metrics")
    return ", ".join(names)


def _check_labels(env: Env, probe: Probe | None) -> str:
    labels = env.metric_labels
    if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
        raise Malformed(f"{labels!r} is not a dict of metric name -> label")
    _require_metrics(tuple(labels), probe, "metric_labels")
    return ""


def _check_rates(env: Env, probe: Probe | None) -> str:
    names = _names(env, "rate_metrics")
    _require_metrics(names, probe, "rate_metrics")
    if probe is not None:
        for name in names:
            _check_unit_metric(name, probe)
    return ", ".join(names)


def _check_layout(env: Env, probe: Probe | None) -> str:
    layout = env.goal_layout
    if not isinstance(layout, GoalLayout):
        raise Malformed(f"is a {type(layout).__name__}, not an rlx.envs.goals.GoalLayout")
    if len(layout.goal_indices) != layout.goal_size:
        raise Malformed(f"{len(layout.goal_indices)} goal_indices for goal_size {layout.goal_size}")
    if not all(0 <= i < layout.state_size for i in layout.goal_indices):
        raise Malformed(
            f"goal_indices {layout.goal_indices} outside the state ({layout.state_size})"
        )
    width = layout.state_size + layout.goal_size
    if probe is not None and width != probe.obs_size:
        raise Malformed(f"state_size + goal_size = {width} != observation_size = {probe.obs_size}")
    return f"state {layout.state_size} + goal {layout.goal_size}"


def _check_tasks(env: Env, probe: Probe | None) -> str:
    if not callable(getattr(env, "reset_task", None)):
        raise Malformed("num_tasks without a callable reset_task(key, task)")
    tasks = _positive_int("num_tasks")(env, probe) if hasattr(env, "num_tasks") else None
    if tasks is None:
        raise Malformed("reset_task without num_tasks")
    if probe is not None:
        keys = jax.ShapeDtypeStruct((probe.batch, 2), jnp.uint32)
        ids = jax.ShapeDtypeStruct((probe.batch,), jnp.int32)
        state = jax.eval_shape(jax.vmap(env.reset_task), keys, ids)
        if _leaves(state).keys() != _leaves(probe.reset).keys() or any(
            (a.shape, a.dtype) != (b.shape, b.dtype)
            for a, b in zip(_leaves(state).values(), _leaves(probe.reset).values(), strict=True)
        ):
            raise Malformed(
                "reset_task's State differs in structure, shapes or dtypes from reset's"
            )
    return f"{tasks} tasks"


def _check_danger(env: Env, probe: Probe | None) -> str:
    if not callable(env.danger):
        raise Malformed("is not callable")
    if probe is not None:
        out = jax.eval_shape(env.danger, probe.reset)
        if jnp.shape(out) != (probe.batch,):
            raise Malformed(f"a batch of {probe.batch} States gives shape {jnp.shape(out)}, "
                            f"not ({probe.batch},)")  # fmt: skip
    return ""


def _check_distances(env: Env, probe: Probe | None) -> str:
    for method in ("exact_distance", "check_distance_table"):
        if not callable(getattr(env, method, None)):
            raise Malformed(f"needs a callable {method} too")
    return "needs a distances asset to run"


def _check_marginal_q(env: Env, probe: Probe | None) -> str:
    exact = bool(getattr(env, "exact_marginal_q", False))
    if exact and not callable(getattr(env, "marginal_q", None)):
        raise Malformed("exact_marginal_q is true but marginal_q is not callable")
    return "exact" if exact else "not exact: no oracle"


def _check_draw(env: Env, probe: Probe | None) -> str:
    if not callable(env.draw):
        raise Malformed("is not callable")
    return ""


def _check_sys(env: Env, probe: Probe | None) -> str:
    dt = float(env.dt)
    if not dt > 0:
        raise Malformed(f"dt = {dt} is not > 0")
    return f"dt = {dt:g}"


_CHECKS: dict[str, tuple[Callable[[Env, Probe | None], bool], Callable[..., str]]] = {
    "episode_length": (_has("episode_length"), _positive_int("episode_length")),
    "action_repeat": (_has("action_repeat"), _positive_int("action_repeat")),
    "resample_resets": (_has("resample_resets"), _check_resample),
    "action_scale": (_has("action_scale"), _check_action_scale),
    "baseline_policy": (_has("baseline_policy"), _check_baseline),
    "goal_reached": (_has_goal, _check_goal),
    "episode_metrics": (_has("episode_metrics"), _check_episode_metrics),
    "metric_labels": (_has("metric_labels"), _check_labels),
    "rate_metrics": (_has("rate_metrics"), _check_rates),
    "goal_layout": (_has("goal_layout"), _check_layout),
    "reset_task": (_has("reset_task", "num_tasks"), _check_tasks),
    "danger": (_has("danger"), _check_danger),
    "exact_distance": (_has("exact_distance", "check_distance_table"), _check_distances),
    "marginal_q": (_has("marginal_q", "exact_marginal_q"), _check_marginal_q),
    "draw": (_has("draw"), _check_draw),
    "sys": (_has("sys"), _check_sys),
}


def _brief(err: BaseException) -> str:
    """``Type: first line of the message``, at most about 120 characters."""
    text = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    return text if len(text) <= 120 else text[:117] + "..."


@runtime_checkable
class InterventionEnv(Protocol):
    """What HABC's simulated interventions (`rlx.algos.finetune.interventions`) need from an
    env, beside the Brax `Env` interface: an expert that takes over, the predicates that say when
    it takes over and when it may hand back, and episodes that end at success.

    The env's ``State.metrics`` must also hold ``goal_reached`` (1 on a step where the goal is
    reached, else 0): the episode outcome HABC's credit is built on. The squeeze-lift tasks
    (`rlx.envs.squeeze_lift.SqueezeLift`, `rlx.envs.bimanual_mjx.BimanualSqueezeLift`) are
    instances. ``isinstance(env, InterventionEnv)`` checks that the names exist, not their
    behaviour (`check_env` steps them).
    """

    ends_at_success: bool
    """True when ``done = 1`` on the success step, so a successful episode's last valid step is
    its success step (HABC anchors its efficiency credit there)."""

    def baseline_policy(self, obs: jax.Array) -> jax.Array:
        """The expert's action in [-1, 1] (``[..., action_size]``) for one observation or a
        batch (``[..., observation_size]``); pure JAX."""
        ...

    def danger(self, state: State) -> jax.Array:
        """bool ``[...]``: the task is being lost now (the expert should take over), on one
        State or a batch of States; pure JAX."""
        ...

    def recovered(self, state: State) -> jax.Array:
        """bool ``[...]``: nothing is being lost, so an expert that took over may hand back
        (implies ``~danger(state)``), on one State or a batch of States; pure JAX."""
        ...


__all__ = [
    "CAPABILITIES",
    "REQUIRED",
    "EnvReport",
    "Finding",
    "InterventionEnv",
    "Item",
    "check_env",
    "contract_error",
    "require_env",
]
