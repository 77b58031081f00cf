"""Rendering a rollout of a policy: an HTML page (Brax/MJX envs) or an animated GIF (2-D envs).

`rollout` runs one episode of the *unwrapped* env (no auto-reset) as one jitted `lax.scan` and
keeps every state with a mask of the steps that belong to the episode (a termination ends it).
`render_html` hands the physics states to Brax's own viewer (`brax.io.html`); `render_gif` draws
each step with the env's ``draw(ax, states, t)`` capability (see `rlx.envs.drawing`), so this module
knows no environment by name. `render` is the one call behind ``rlx render``: it builds the env,
rolls the policy out and writes the file its suffix names; `render_baseline` does the same with
the env's hand-made controller.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env, State

from rlx import envs, files
from rlx.errors import RlxError, positive_size

Act = Callable[[jax.Array, jax.Array, bool], jax.Array]
"""A policy: ``act(obs, key, deterministic) -> action``."""

HTML, GIF = ".html", ".gif"
GIF_SIZE = 5.0  # inches: the larger side of a GIF frame.
GIF_DPI = 60  # so a frame's larger side is 300 pixels.


class Trajectory(NamedTuple):
    """One rollout, stacked over time: ``steps + 1`` states (the reset state first) and the
    ``steps`` actions and rewards between them."""

    states: State
    """Env states ``[steps + 1]`` (``pipeline_state``, ``obs``, ``reward``, ``done``,
    ``metrics``)."""
    actions: jax.Array
    """``[steps, action_size]``: the action taken in state ``t``."""
    rewards: jax.Array
    """``[steps]``: the reward of the step from state ``t`` to ``t + 1``, 0 after the episode."""
    alive: jax.Array
    """``[steps + 1]``: 1.0 for the states of the episode (up to and including the one that
    terminated it), 0.0 after."""

    @property
    def obs(self) -> jax.Array:
        """Observations ``[steps + 1, observation_size]``."""
        return self.states.obs

    @property
    def metrics(self) -> dict[str, jax.Array]:
        """The env's metrics, each ``[steps + 1]``."""
        return self.states.metrics

    @property
    def length(self) -> int:
        """The number of states that belong to the episode (the frames to draw)."""
        return int(np.asarray(self.alive).sum())

    def returns(self) -> np.ndarray:
        """The return up to each state of the episode, ``[length]`` (0 at the reset state)."""
        partial = np.concatenate([[0.0], np.cumsum(np.asarray(self.rewards, np.float64))])
        return partial[: self.length]

    def episode_states(self) -> Any:
        """The physical states (``pipeline_state``) of the episode as NumPy arrays ``[length]``."""
        n = self.length
        return jax.tree.map(lambda x: np.asarray(x)[:n], jax.device_get(self.states.pipeline_state))


def rollout(
    env: Env, act: Act, key: jax.Array, steps: int, deterministic: bool = True
) -> Trajectory:
    """Runs `act` for `steps` steps of the unwrapped `env` from ``env.reset``, as one jitted scan.

    There is no auto-reset: after a step that sets ``done`` the env keeps stepping, but its
    states are masked out (``Trajectory.alive``) and its rewards zeroed.
    """
    steps = positive_size("steps", steps)
    reset_key, act_key = jax.random.split(key)

    def step(carry: tuple[State, jax.Array], step_key: jax.Array):
        state, live = carry  # live: `state` belongs to the episode and did not end it
        action = act(state.obs, step_key, deterministic)
        nxt = env.step(state, action)
        return (nxt, live * (1.0 - nxt.done)), (nxt, action, nxt.reward * live, live)

    @jax.jit
    def run(reset_key: jax.Array, act_key: jax.Array) -> Trajectory:
        first = env.reset(reset_key)
        init = (first, 1.0 - first.done)
        _, (states, actions, rewards, alive) = jax.lax.scan(
            step, init, jax.random.split(act_key, steps)
        )
        states = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, states)
        alive = jnp.concatenate([jnp.ones((1,), alive.dtype), alive])
        return Trajectory(states, actions, rewards, alive.astype(jnp.float32))

    return run(reset_key, act_key)


# ------------------------------------------------------------------------------ what renders


def is_physics(env: Env) -> bool:
    """True for Brax/MJX physics envs (they carry a ``sys``, through any wrapper): HTML."""
    return hasattr(env, "sys")


def has_drawing(env: Env) -> bool:
    """True if `env` can draw itself, ``draw(ax, states, t)``: GIF."""
    return callable(getattr(env, "draw", None))


def suffix_for(env: Env) -> str | None:
    """The file suffix `env` renders to (``.html`` or ``.gif``), None if it has no renderer."""
    if is_physics(env):
        return HTML
    return GIF if has_drawing(env) else None


def renderable_names() -> list[str]:
    """Every registered env with a renderer: ``brax:*`` (HTML) and the 2-D envs that draw (GIF)."""
    own = [n for n in envs.names() if envs.is_builtin(n) and not envs.is_physics(n)]
    own = [n for n in own if has_drawing(envs.make(n))]
    return [*own, "brax:*"]


def check_output(env: Env, name: str, out: Path) -> str:
    """The suffix of `out` if `env` renders to it; else an RlxError saying what is possible."""
    suffix = suffix_for(env)
    if suffix is None:
        raise RlxError(
            f"environment {name!r} has no renderer. Environments with one: "
            f"{', '.join(renderable_names())} (brax:* render to {HTML}, the others to {GIF})."
        )
    if out.suffix.lower() != suffix:
        raise RlxError(f"environment {name!r} renders to a {suffix} file; got {str(out)!r}.")
    return suffix


# ------------------------------------------------------------------------------ HTML (Brax)


def physics_states(trajectory: Trajectory) -> list[State]:
    """The episode's physics states, one `brax.base.State` per step (what Brax's viewer takes)."""
    stacked = trajectory.episode_states()
    return [jax.tree.map(lambda x, t=t: x[t], stacked) for t in range(trajectory.length)]


def render_html(env: Env, trajectory: Trajectory, out: str | Path) -> Path:
    """Writes Brax's viewer for the episode of `trajectory` to `out` (a standalone page).

    The system's timestep is set to the env's control step (``env.dt``), so the viewer plays the
    rollout in real time. The page loads the viewer's JavaScript (three.js, Brax's viewer.js) from
    public CDNs, as Brax's pages do.
    """
    from brax.io import html

    if not is_physics(env):
        raise RlxError(f"{type(env).__name__} has no physics system (sys); render it to a {GIF}.")
    sys = env.sys.tree_replace({"opt.timestep": float(env.dt)})
    page = html.render(sys, physics_states(trajectory), height="100vh", colab=False)
    return _write(Path(out), page.encode())


# ------------------------------------------------------------------------------ GIF (2-D envs)


def render_gif(env: Env, trajectory: Trajectory, out: str | Path, fps: float = 20.0) -> Path:
    """Writes an animated GIF of the episode of `trajectory` to `out`, one frame per state, each
    drawn by ``env.draw`` under a title with the step and the return so far."""
    from matplotlib.animation import FuncAnimation, PillowWriter
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not has_drawing(env):
        raise RlxError(f"{type(env).__name__} has no draw(ax, states, t); it cannot be a {GIF}.")
    states, returns = trajectory.episode_states(), trajectory.returns()
    fig = Figure()  # the Agg canvas directly, never pyplot: no global backend state
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()

    def frame(t: int) -> None:
        ax.clear()
        env.draw(ax, states, t)
        ax.set_title(f"{type(env).__name__}  step {t}  return {returns[t]:.1f}", fontsize=9)

    frame(0)
    _fit_figure(fig, ax)
    anim = FuncAnimation(fig, frame, frames=len(returns), interval=1000.0 / fps)
    out = Path(out)
    with files.atomic_path(out) as tmp:
        anim.save(tmp, writer=PillowWriter(fps=fps))
    return out


def _fit_figure(fig: Any, ax: Any) -> None:
    """Sizes the figure to the aspect of the axis limits the env fixed (larger side GIF_SIZE)."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    aspect = abs(y1 - y0) / abs(x1 - x0)
    width, height = (GIF_SIZE, GIF_SIZE * aspect) if aspect <= 1 else (GIF_SIZE / aspect, GIF_SIZE)
    fig.set_size_inches(width, height + 0.3)  # room for the title
    fig.set_dpi(GIF_DPI)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.35 / (height + 0.3))


# ------------------------------------------------------------------------------ one call


def render_env(env: Env, name: str, act: Act, out: str | Path, steps: int, seed: int = 0) -> Path:
    """Rolls `act` out on `env` (registered as `name`) for `steps` steps and writes `out`."""
    out = Path(out)
    suffix = check_output(env, name, out)
    trajectory = rollout(env, act, jax.random.PRNGKey(seed), steps)
    if suffix == HTML:
        return render_html(env, trajectory, out)
    return render_gif(env, trajectory, out)


def render(
    env_name: str,
    env_kwargs: dict[str, Any] | None,
    act: Act,
    out: str | Path,
    steps: int | None = None,
    seed: int = 0,
) -> Path:
    """Renders a rollout of `act` on the env `env_name` (built with `env_kwargs`) to `out`:
    ``.html`` for ``brax:*`` envs, ``.gif`` for 2-D envs that draw themselves (any other pairing
    is an RlxError naming the suffix the env takes). `steps` defaults to the env's episode length;
    `seed` picks the initial state. Returns the path written."""
    env = envs.make(env_name, **(env_kwargs or {}))
    steps = envs.episode_length(env) if steps is None else steps
    return render_env(env, env_name, act, out, steps, seed)


def baseline_act(env: Env) -> Act:
    """The env's hand-made controller as an ``act(obs, key, deterministic)`` policy."""

    def act(obs: jax.Array, key: jax.Array, deterministic: bool) -> jax.Array:
        del key, deterministic
        return env.baseline_policy(obs)

    return act


def render_baseline(
    env_name: str,
    out: str | Path,
    steps: int | None = None,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> Path:
    """`render` with the env's hand-made controller (``baseline_policy``) as the policy."""
    env = envs.make(env_name, **(env_kwargs or {}))
    envs.require_baseline(env, "render_baseline")
    steps = envs.episode_length(env) if steps is None else steps
    return render_env(env, env_name, baseline_act(env), out, steps, seed)


class Rendered(NamedTuple):
    """What `render_policy` wrote: the file, the steps rolled out, the policy's algorithm and
    the env it ran on."""

    path: Path
    steps: int
    algorithm: str
    env: str


def render_policy(
    directory: str | Path,
    out: str | Path,
    *,
    env: str | None = None,
    steps: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> Rendered:
    """``rlx render``: a rollout of the policy artifact `directory` on its env (or `env`, of
    the same sizes) written to `out` as `render` does (refused where `out` exists, unless
    `overwrite`). `steps` defaults to the env's episode length; `seed` picks the initial state."""
    from rlx import files, policy

    out = files.check_new(out, overwrite)
    artifact = policy.load_artifact(directory, env=env)
    check_output(artifact.env, artifact.env_name, out)  # before any rollout
    steps = steps or envs.episode_length(artifact.env)
    path = render_env(artifact.env, artifact.env_name, artifact.act, out, steps, seed)
    return Rendered(path, steps, artifact.meta["algorithm"], artifact.env_name)


def _write(out: Path, data: bytes) -> Path:
    """Writes `data` to `out` atomically, creating its directory."""
    return files.write_bytes_atomic(out, data)


__all__ = [
    "Rendered",
    "Trajectory",
    "baseline_act",
    "check_output",
    "render",
    "render_baseline",
    "render_env",
    "render_gif",
    "render_html",
    "render_policy",
    "rollout",
    "suffix_for",
]
