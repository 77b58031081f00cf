"""Environments: every one a `brax.envs.base.Env`, resolved by name with `make`.

Names: our pure-JAX environments (``pendulum_swingup``, ``cartpole_swingup``, ...), Brax's,
prefixed ``brax:`` (``brax:ant``; physics backend chosen with ``backend=``, default ``mjx``), and
MuJoCo Playground's DM Control Suite ports, prefixed ``playground:`` (``playground:CheetahRun``,
on MJX; see `rlx.envs.playground`).

Environments from outside rlx (`rlx.plugins`): factories registered with `register_env`,
installed packages' entry points (group ``rlx.envs``, value ``package.module:ATTR`` naming an
Env class or a factory), and ``package.module:ATTR`` itself; what they build must be a
`brax.envs.base.Env`. A plan given an env object instead of a name names it by `resolve_env`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import inspect
import io
import warnings
from collections.abc import Callable, Iterator
from typing import Any

with contextlib.redirect_stdout(io.StringIO()):  # mujoco.mjx prints when optional `warp` is absent
    from brax.envs.base import Env

import jax
from rlx.envs import playground
from rlx.envs.wrappers import wrap_for_training

from rlx import plugins
from rlx.errors import RlxError, unknown
from rlx.metrics import MetricRule

BRAX_BACKENDS = ("mjx", "generalized", "positional", "spring")
BRAX_EPISODE_LENGTH = 1000


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """A registered environment: how to build it and a one-line description."""

    factory: Callable[..., Env]
    description: str


@dataclasses.dataclass(frozen=True)
class _Lazy:
    """Builds class `cls` of `module`, imported on first use."""

    module: str
    cls: str

    def __call__(self, **kwargs) -> Env:
        return getattr(importlib.import_module(self.module), self.cls)(**kwargs)


def _lazy(module: str, cls: str) -> Callable[..., Env]:
    return _Lazy(module, cls)


_OWN: dict[str, EnvSpec] = {
    "pendulum_swingup": EnvSpec(
        _lazy("rlx.envs.pendulum", "PendulumSwingup"),
        "Pendulum swing-up from hanging down, torque-limited (needs pumping); baseline controller.",
    ),
    "cartpole_swingup": EnvSpec(
        _lazy("rlx.envs.cartpole", "CartpoleSwingup"),
        "Cart-pole swing-up on a bounded track (leaving it terminates); baseline controller.",
    ),
    "underwater_drone": EnvSpec(
        _lazy("rlx.envs.underwater_drone", "UnderwaterDrone"),
        "AUV rising through a hole in the top wall, avoiding a contaminated zone; baseline PD.",
    ),
    "treasure_robot": EnvSpec(
        _lazy("rlx.envs.treasure_robot", "TreasureRobot"),
        "Constant-speed unicycle to a goal, optionally catching a moving treasure; baseline P-law.",
    ),
    "treasure_robot_goal_reward": EnvSpec(
        functools.partial(
            _lazy("rlx.envs.treasure_robot", "TreasureRobot"), reward="goal_after_catch"
        ),
        "Treasure robot with rlx's earlier reward: after the catch, pays the distance to the goal.",
    ),
    "target_matching": EnvSpec(
        _lazy("rlx.envs.target_matching", "TargetMatching"),
        "m-D point to a random target (action_dim=m, default 6), reward separable; baseline P-law.",
    ),
    **{
        f"target_matching_m{m}": EnvSpec(
            functools.partial(_lazy("rlx.envs.target_matching", "TargetMatching"), action_dim=m),
            f"Target matching with a {m}-D action, reward separable per dimension; baseline P-law.",
        )
        for m in (6, 60, 600, 2000)
    },
    **{
        f"target_matching_bandit_m{m}": EnvSpec(
            functools.partial(
                _lazy("rlx.envs.target_matching", "TargetMatching"), action_dim=m, one_step=True
            ),
            f"One-step target matching, {m}-D action: Q = r, exact marginal E_a_i[Q] (oracle).",
        )
        for m in (6, 60, 600, 2000)
    },
    "point_agents": EnvSpec(
        _lazy("rlx.envs.point_agents", "PointAgents"),
        "k point masses to own landmarks (num_agents=k, default 3), collision-coupled; baseline PD.",
    ),
    **{
        f"point_agents_k{k}": EnvSpec(
            functools.partial(_lazy("rlx.envs.point_agents", "PointAgents"), num_agents=k),
            f"Point agents with k={k} (action 2k={2 * k}), collision-coupled reward; baseline PD.",
        )
        for k in (6, 20)
    },
    **{
        f"squeeze_lift_l{level}": EnvSpec(
            functools.partial(_lazy("rlx.envs.squeeze_lift", "SqueezeLift"), level=level),
            f"Two hands squeeze-lift-place a box (level {level} of 3), sparse success; expert.",
        )
        for level in (1, 2, 3)
    },
    **{
        f"squeeze_lift_mjx_l{level}": EnvSpec(
            functools.partial(_lazy("rlx.envs.bimanual_mjx", "BimanualSqueezeLift"), level=level),
            f"MJX: two 3-DoF hands squeeze-lift-place a free box (level {level} of 3); expert.",
        )
        for level in (1, 2, 3)
    },
    **{
        f"pointmaze_{maze}": EnvSpec(
            functools.partial(_lazy("rlx.envs.pointmaze", "GoalPointMaze"), maze=maze),
            f"OGBench point maze ({maze}), goal-conditioned: obs (x, y, gx, gy), 5 tasks; oracle.",
        )
        for maze in ("medium", "large", "giant", "teleport")
    },
    **{
        f"pointmaze_{maze}_singletask": EnvSpec(
            functools.partial(_lazy("rlx.envs.pointmaze", "PointMaze"), maze=maze),
            f"OGBench point maze ({maze}), one task (task=1..5): obs (x, y), reward at the goal.",
        )
        for maze in ("medium", "large", "giant", "teleport")
    },
}

_BRAX: dict[str, str] = {
    "ant": "Quadruped locomotion, 8-D action (Brax).",
    "halfcheetah": "Planar cheetah running, 6-D action (Brax).",
    "hopper": "Planar one-legged hopping, 3-D action (Brax).",
    "humanoid": "3-D humanoid running, 17-D action (Brax).",
    "humanoidstandup": "Humanoid getting up from the floor, 17-D action (Brax).",
    "inverted_pendulum": "Cart-pole balance, 1-D action (Brax); baseline controller.",
    "inverted_double_pendulum": "Double cart-pole balance, 1-D action (Brax).",
    "pusher": "Arm pushing an object to a target, 7-D action (Brax).",
    "reacher": "Two-link arm reaching a target, 2-D action (Brax); baseline controller.",
    "walker2d": "Planar biped walking, 6-D action (Brax).",
}

# Brax environments given a hand-made baseline controller and goal set (``baseline_policy``,
# ``metrics["goal_reached"]``) by a wrapper from rlx.envs.brax_tasks: short name -> class name.
_BRAX_BASELINES: dict[str, str] = {
    "reacher": "ReacherBaseline",
    "inverted_pendulum": "InvertedPendulumBaseline",
}

# Brax environments that do not run on every backend; the first listed is the default. (Brax's
# swimmer, generalized-only, is left out: brax 0.14.2's fluid model calls jnp.clip(a_min=...),
# removed in jax 0.10.)
_BRAX_BACKENDS_ONLY: dict[str, tuple[str, ...]] = {}


def brax_backends(name: str) -> tuple[str, ...]:
    """The physics backends a ``brax:*`` environment supports, its default first."""
    return _BRAX_BACKENDS_ONLY.get(name.removeprefix("brax:"), BRAX_BACKENDS)


ENTRY_POINTS = "rlx.envs"
"""The entry-point group of installed packages' environments: ``name = "package.module:ATTR"``,
ATTR an Env class or a factory ``(**kwargs) -> Env`` (imported when first built or listed)."""

REGISTERED: dict[str, EnvSpec] = {}
"""What `register_env` registered, by name (read it; change it through that function)."""


def _builtin_names() -> dict[str, str]:
    out = {name: spec.description for name, spec in _OWN.items()}
    out.update({f"brax:{name}": desc for name, desc in _BRAX.items()})
    out.update(playground.names())
    return out


def is_builtin(name: str) -> bool:
    """True for a name of rlx's own environments or under the ``brax:`` / ``playground:``
    prefixes (which `register_env` refuses)."""
    return name in _OWN or name.startswith(("brax:", playground.PREFIX))


def register_env(
    name: str, factory: Callable[..., Env], description: str = "", *, replace: bool = False
) -> None:
    """Registers `factory` (an Env class, or a callable ``(**kwargs) -> Env``) under `name`, so
    `make` and every place that takes an env name (`rlx.train`, sweep files, ``rlx train``,
    artifacts) builds it. Raises RlxError for a built-in name (``brax:*`` and ``playground:*``
    included), a name registered to another factory (unless `replace`) or a factory that is
    not callable."""
    if not isinstance(name, str) or not name:
        raise RlxError(f"an environment's name must be a non-empty string, got {name!r}.")
    if is_builtin(name):
        raise RlxError(
            f"environment name {name!r} is a built-in environment's (or uses the reserved "
            f"prefix brax: / {playground.PREFIX}); register it under another name."
        )
    if not callable(factory) or isinstance(factory, Env):
        raise RlxError(
            f"environment {name!r}: the factory must be an Env class or a callable returning "
            f"an Env, got {plugins.kind_of(factory)}."
        )
    held = REGISTERED.get(name)
    if held is not None and held.factory is not factory and not replace:
        raise RlxError(
            f"environment {name!r} is already registered (another factory); pass replace=True "
            "to replace it."
        )
    REGISTERED[name] = EnvSpec(factory, description or _doc_line(factory))


def _doc_line(obj: Any) -> str:
    """The first line of `obj`'s docstring ('' without one)."""
    doc = inspect.getdoc(obj) or ""
    return doc.splitlines()[0] if doc else ""


def _entry_names() -> list[str]:
    return [n for n in plugins.entry_points(ENTRY_POINTS) if not is_builtin(n)]


def _outside_factory(name: str) -> Callable[..., Env]:
    """The factory of a registered, entry-point or ``module:ATTR`` name; RlxError if none."""
    if name in REGISTERED:
        return REGISTERED[name].factory
    if plugins.is_import_path(name):
        return _checked_factory(plugins.import_attr(name, "environment"), repr(name))
    found = plugins.entry_points(ENTRY_POINTS).get(name)
    if found is None or is_builtin(name):
        names_ = [*_builtin_names(), *REGISTERED, *_entry_names()]
        err = unknown("environment", name, names_)
        raise RlxError(f"{err} Or name one as package.module:ATTR.")
    obj = plugins.load_entry_point(found, "environment")
    return _checked_factory(obj, f"{name!r} (entry point {found.value!r})")


def _checked_factory(obj: Any, label: str) -> Callable[..., Env]:
    """`obj` if it is an Env class or another callable (a factory), else RlxError."""
    if (
        isinstance(obj, Env)
        or not callable(obj)
        or (inspect.isclass(obj) and not issubclass(obj, Env))
    ):
        raise RlxError(
            f"environment {label} is {plugins.kind_of(obj)}, not a brax.envs.base.Env class "
            "or a factory returning one."
        )
    return obj


def names() -> dict[str, str]:
    """Every environment name with its one-line description: built-in, registered, then
    installed entry points (one that fails to load is listed with ``failed to load: ...``)."""
    out = _builtin_names()
    out.update({name: spec.description for name, spec in REGISTERED.items()})
    for name in _entry_names():
        if name in out:
            continue
        try:
            out[name] = _doc_line(_outside_factory(name))
        except RlxError as err:
            out[name] = f"failed to load: {err}"
    return out


def check_name(name: str) -> None:
    """Raises RlxError naming the allowed environments if `name` is not one (for a Playground
    task rlx cannot build here, the reason; for a ``module:ATTR`` or an entry point, why it
    does not import or is not an Env class or factory)."""
    if name.startswith(playground.PREFIX):
        playground.check_name(name)
    elif name in _OWN or (name.startswith("brax:") and name.removeprefix("brax:") in _BRAX):
        return
    elif name.startswith("brax:"):
        raise unknown("environment", name, _builtin_names())
    else:
        _outside_factory(name)


def resolve_env(spec: str | Env | Callable[..., Env]) -> tuple[str, Callable[..., Env]]:
    """The name and factory ``(**kwargs) -> Env`` of an environment given as a name, an Env
    instance, or an Env class or factory; raises RlxError for anything else.

    A name is checked (`check_name`) and kept. An object is named by what rebuilds it: a
    built-in or registered name whose factory is that very class or factory, else its (for an
    instance, its class's) ``module:QualName`` where that imports as the same object, else its
    bare class or function name. An artifact of a run on an env object therefore rebuilds the
    env from that path with the run's recorded ``env_kwargs``: an instance built with other
    arguments than those is not what comes back (pass the class and ``env_kwargs`` instead).
    An instance's factory returns the instance itself and takes no keywords.
    """
    if isinstance(spec, str):
        check_name(spec)
        return spec, functools.partial(make, spec)
    if isinstance(spec, Env):
        return _object_name(type(spec)), functools.partial(_same_instance, spec)
    factory = _checked_factory(spec, repr(getattr(spec, "__qualname__", spec))[:80])
    return _object_name(factory), functools.partial(_build, factory, _object_name(factory))


def _same_instance(env: Env, **kwargs) -> Env:
    if kwargs:
        raise RlxError(
            f"env_kwargs {sorted(kwargs)} were given with an env instance "
            f"({type(env).__name__}); pass its class with env_kwargs instead."
        )
    return env


def _object_name(factory: Any) -> str:
    """The name a plan gives an env class or factory (see `resolve_env`)."""
    for name, spec in REGISTERED.items():
        if spec.factory is factory:
            return name
    if inspect.isclass(factory):
        for name, spec in _OWN.items():
            lazy = spec.factory
            if isinstance(lazy, _Lazy) and (lazy.module, lazy.cls) == (
                factory.__module__,
                factory.__qualname__,
            ):
                return name
    path = plugins.import_path_of(factory)
    return path or getattr(factory, "__name__", type(factory).__name__)


def make(name: str, **kwargs) -> Env:
    """Builds the environment `name` (no training wrappers; Brax envs with a hand-made
    controller come with it, see `rlx.envs.brax_tasks`); keyword arguments go to its constructor.

    For ``brax:*`` names, ``backend`` selects the physics (one of BRAX_BACKENDS).
    """
    check_name(name)
    with models_on_local_device():
        return _make(name, **kwargs)


@contextlib.contextmanager
def models_on_local_device() -> Iterator[None]:
    """While active in a multi-process run (`jax.distributed`), an MJX model built without a
    device goes to this process's first device.

    `mujoco.mjx.put_model` otherwise picks ``jax.devices()[0]``, which in such a run is
    process 0's device: the other processes can neither read the model's arrays nor lower a
    program that closes over them. Brax and MuJoCo Playground call it without a device.
    Outside a multi-process run this does nothing.
    """
    if not jax.distributed.is_initialized():
        yield
        return
    from mujoco import mjx

    put_model = mjx.put_model

    def local_put_model(m, device=None, impl=None, **kwargs):
        if device is None and (impl is None or mjx.Impl(impl) is mjx.Impl.JAX):
            device = jax.local_devices()[0]
        return put_model(m, device=device, impl=impl, **kwargs)

    mjx.put_model = local_put_model
    try:
        yield
    finally:
        mjx.put_model = put_model


def _make(name: str, **kwargs) -> Env:
    if not is_builtin(name):
        return _build(_outside_factory(name), name, **kwargs)
    if name.startswith(playground.PREFIX):
        return playground.make(name, **kwargs)
    if name.startswith("brax:"):
        from brax import envs as brax_envs

        short = name.removeprefix("brax:")
        allowed = brax_backends(name)
        backend = kwargs.pop("backend", allowed[0])
        if backend not in allowed:
            raise unknown(f"backend for {name}", backend, allowed)
        warnings.filterwarnings("ignore", message="Brax System, piplines")
        try:
            env = brax_envs.get_environment(short, backend=backend, **kwargs)
        except TypeError as err:
            raise RlxError(f"bad keyword for environment {name!r}: {err}") from None
        if short in _BRAX_BASELINES:
            env = _lazy("rlx.envs.brax_tasks", _BRAX_BASELINES[short])(env=env)
        return env
    try:
        return _OWN[name].factory(**kwargs)
    except TypeError as err:
        raise RlxError(f"bad keyword for environment {name!r}: {err}") from None


def _build(factory: Callable[..., Env], name: str, **kwargs) -> Env:
    """``factory(**kwargs)``, checked to be a `brax.envs.base.Env`; RlxError naming `name`."""
    try:
        with models_on_local_device():
            env = factory(**kwargs)
    except TypeError as err:
        raise RlxError(f"bad keyword for environment {name!r}: {err}") from None
    if not isinstance(env, Env):
        raise RlxError(
            f"environment {name!r} built {plugins.kind_of(env)}, not a brax.envs.base.Env."
        )
    return env


def episode_length(env: Env) -> int:
    """The env's default episode length (its `episode_length` attribute, else Brax's 1000)."""
    return int(getattr(env, "episode_length", BRAX_EPISODE_LENGTH))


def observation_size(env: Env) -> int:
    """The observation width, found by abstract evaluation of `reset`.

    Brax's own `observation_size` property runs a reset op by op (tens of seconds for MJX
    physics on a CPU, even inside a jit trace); `jax.eval_shape` compiles and runs nothing.
    """
    return int(jax.eval_shape(env.reset, jax.random.PRNGKey(0)).obs.shape[-1])


def training_env(env: Env, length: int = 0) -> Env:
    """`env` with an episode limit of `length` steps (0: the env's default), batching and
    auto-reset.

    Physics envs (Brax's, with a ``sys``, and Playground's, ``resample_resets = False``) restart
    from their first initial state, whose reset is costly; pure-JAX envs draw a fresh one (see
    `wrap_for_training`). The env's ``action_repeat`` (default 1) is applied by the episode
    wrapper, whose limit counts physics-level steps as Brax's does.
    """
    limit = length or episode_length(env)
    resample = getattr(env, "resample_resets", not hasattr(env, "sys"))
    return wrap_for_training(env, limit, resample, getattr(env, "action_repeat", 1))


def has_baseline(env: Env) -> bool:
    """True if `env` ships a hand-made controller ``baseline_policy(obs) -> action``."""
    return callable(getattr(env, "baseline_policy", None))


def require_baseline(env: Env, what: str) -> None:
    """Raises RlxError, naming the environments that have one, unless `env` ships a hand-made
    controller (`has_baseline`); `what` names the algorithm that needs it."""
    if has_baseline(env):
        return
    own = [*_builtin_names(), *REGISTERED]
    with_baseline = [n for n in own if not is_brax(n) and has_baseline(make(n))]
    raise RlxError(
        f"{what} needs an environment with a baseline controller (baseline_policy); "
        f"{type(env).__name__} has none. Environments with one: {', '.join(with_baseline)}."
    )


def outcome_metrics(env: Env) -> tuple[str, ...]:
    """Names of ``state.metrics`` whose value at an episode's last step is its outcome.

    The env's ``episode_metrics`` attribute where it has one, else ``("goal_reached",)`` for
    envs that report goal-set membership, else none (Brax's envs).
    """
    names = getattr(env, "episode_metrics", None)
    if names is not None:
        return tuple(names)
    metrics = jax.eval_shape(env.reset, jax.random.PRNGKey(0)).metrics
    return ("goal_reached",) if "goal_reached" in metrics else ()


SHARED_OUTCOMES = {"goal_reached": MetricRule(label="goal rate", percent=True)}
"""Outcomes that many environments share; an env labels its own in ``metric_labels`` and names
those that are shares in [0, 1] in ``rate_metrics``."""


def outcome_rules(env: Env) -> dict[str, MetricRule]:
    """Each outcome metric (`outcome_metrics`) with its table label and whether it is a rate."""
    labels = getattr(env, "metric_labels", {})
    rates = getattr(env, "rate_metrics", ())
    out = {}
    for name in outcome_metrics(env):
        shared = SHARED_OUTCOMES.get(name, MetricRule(label=name))
        out[name] = MetricRule(label=labels.get(name, shared.label),
                               percent=name in rates or shared.percent)  # fmt: skip
    return out


def is_brax(name: str) -> bool:
    """True for Brax physics environments (whose resets are costly: no resampling)."""
    return name.startswith("brax:")


def is_physics(name: str) -> bool:
    """True for MJX/Brax physics environments (Brax's and Playground's): costly resets."""
    return is_brax(name) or name.startswith(playground.PREFIX)


__all__ = [
    "BRAX_BACKENDS",
    "ENTRY_POINTS",
    "REGISTERED",
    "EnvSpec",
    "brax_backends",
    "check_name",
    "episode_length",
    "has_baseline",
    "is_brax",
    "is_builtin",
    "is_physics",
    "make",
    "names",
    "observation_size",
    "outcome_metrics",
    "outcome_rules",
    "register_env",
    "require_baseline",
    "resolve_env",
    "training_env",
    "wrap_for_training",
]
