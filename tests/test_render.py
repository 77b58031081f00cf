"""`rlx.report.render`: rollouts, GIFs of the 2-D envs, Brax's HTML viewer, and the refusals."""

from __future__ import annotations

import base64
import itertools
import json
import re
import zlib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from rlx import envs
from rlx.errors import RlxError
from rlx.report import render

DRAWN = ("pendulum_swingup", "cartpole_swingup", "underwater_drone", "treasure_robot")
RED = np.array([214, 39, 40])  # matplotlib's tab:red, the pendulum's pole


def gif_frames(path: Path) -> list[np.ndarray]:
    """Every frame of a GIF as an RGB array."""
    with Image.open(path) as im:
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB")))
    return frames


def pole_pixels(frame: np.ndarray) -> np.ndarray:
    """Mask of the pixels of a frame in the pole's colour."""
    return np.abs(frame.astype(int) - RED).sum(-1) < 30


def pole_angle(frame: np.ndarray) -> float:
    """The pendulum's angle from upright (positive leaning right) as drawn in a frame: the
    direction from the pivot (the black dot) to the centroid of the pole's pixels."""
    scene = frame[40:].astype(int)  # below the title
    pole_y, pole_x = np.nonzero(pole_pixels(frame[40:]))
    pivot_y, pivot_x = np.nonzero(scene.sum(-1) < 60)
    return float(np.arctan2(pole_x.mean() - pivot_x.mean(), pivot_y.mean() - pole_y.mean()))


def page_system(page: str) -> dict:
    """The system JSON Brax's page carries (base64 of zlib), decoded."""
    blob = re.search(r'var system = "([^"]+)"', page).group(1)
    return json.loads(zlib.decompress(base64.b64decode(blob)))


def test_pendulum_gif_has_one_changing_frame_per_state(tmp_path):
    """40 baseline steps give 41 frames of the expected size; the pole is drawn and moves."""
    out = render.render_baseline("pendulum_swingup", tmp_path / "p.gif", steps=40, seed=0)
    frames = gif_frames(out)
    assert len(frames) == 41
    width = round(render.GIF_SIZE * render.GIF_DPI)
    assert frames[0].shape[1] == width and frames[0].shape[0] > width  # square scene + title
    poles = [pole_pixels(f[40:]) for f in frames]  # below the title (it changes every frame)
    assert all(p.sum() > 200 for p in poles)  # the pole is drawn in every frame ...
    assert (poles[0] ^ poles[-1]).sum() > 200  # ... and it moved


def test_gif_draws_the_given_policys_rollout_from_the_initial_state(tmp_path):
    """`render` (what ``rlx render`` calls) with full torque one way or the other: frame 0 is
    the same initial state for both, every frame differs from the one before, and the pole
    drawn in frame t is at the angle of the state reached by stepping the env by hand with
    that policy (read from the pixels to about 0.01 rad)."""
    env = envs.make("pendulum_swingup")
    drawn = {}
    for torque in (1.0, -1.0):

        def act(obs, key, deterministic, torque=torque):
            return jnp.full((1,), torque, jnp.float32)

        out = render.render("pendulum_swingup", {}, act, tmp_path / f"{torque}.gif", steps=20,
                            seed=3)  # fmt: skip
        frames = drawn[torque] = gif_frames(out)
        assert all((a[40:] != b[40:]).any() for a, b in itertools.pairwise(frames))
        state = jax.tree.map(
            lambda x: x[0], render.rollout(env, act, jax.random.PRNGKey(3), 1).states
        )
        angles = [float(state.pipeline_state[0])]
        for _ in range(20):
            state = env.step(state, jnp.full((1,), torque))
            angles.append(float(state.pipeline_state[0]))
        error = np.angle(np.exp(1j * (np.array([pole_angle(f) for f in frames]) - angles)))
        assert np.abs(error).max() < 0.03, error
    np.testing.assert_array_equal(drawn[1.0][0], drawn[-1.0][0])
    apart = pole_angle(drawn[1.0][-1]) - pole_angle(drawn[-1.0][-1])
    assert abs(np.angle(np.exp(1j * apart))) > 1.0, apart  # the two policies' poles


@pytest.mark.parametrize("name", DRAWN)
@pytest.mark.slow
def test_every_drawn_env_makes_a_gif(name, tmp_path):
    """Each 2-D env with ``draw`` renders a short rollout, one frame per state."""
    out = render.render_baseline(name, tmp_path / f"{name}.gif", steps=4, seed=1)
    assert len(gif_frames(out)) == 5


def test_rollout_stops_recording_at_termination(tmp_path):
    """Cart-pole pushed right leaves the track: the terminal state is the last one recorded, the
    rewards after it are zero, and the GIF has exactly the recorded frames."""
    env = envs.make("cartpole_swingup")

    def push(obs, key, deterministic):
        return jnp.ones((1,), jnp.float32)

    traj = render.rollout(env, push, jax.random.PRNGKey(0), steps=80)
    done = np.asarray(traj.states.done)
    first_done = int(np.argmax(done > 0))
    assert 0 < first_done < 80
    np.testing.assert_array_equal(np.asarray(traj.alive), np.arange(81) <= first_done)
    assert traj.length == first_done + 1
    assert np.all(np.asarray(traj.rewards)[first_done:] == 0)
    assert traj.obs.shape == (81, env.observation_size) and traj.actions.shape == (80, 1)
    out = render.render_gif(env, traj, tmp_path / "c.gif")
    assert len(gif_frames(out)) == first_done + 1


@pytest.mark.slow
def test_reacher_html_carries_the_viewer_and_every_state(tmp_path):
    """brax:reacher (MJX) to HTML: Brax's viewer script, the system JSON with one pose per state
    at the env's control timestep, and a full-window viewer."""
    out = render.render_baseline("brax:reacher", tmp_path / "r.html", steps=20, seed=0)
    page = out.read_text()
    assert "import {Viewer} from 'viewer'" in page
    assert re.search(r"brax@v[\d.]+/brax/visualizer/js/viewer\.js", page)
    assert "height: 100vh;" in page
    system = page_system(page)
    assert len(system["states"]["x"]) == 21
    assert {"body0", "body1", "target"} <= set(system["link_names"])
    env = envs.make("brax:reacher")
    assert system["opt"]["timestep"] == pytest.approx(env.dt)


@pytest.mark.parametrize("name", ["target_matching_m6", "point_agents_k6"])
def test_env_without_renderer_is_refused(name, tmp_path):
    """Envs that cannot draw are refused, naming those that can; nothing is written."""
    out = tmp_path / "x.gif"
    with pytest.raises(RlxError, match="has no renderer") as err:
        render.render(name, {}, lambda o, k, d: o, out, steps=3)
    assert all(n in str(err.value) for n in DRAWN) and "brax:*" in str(err.value)
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "suffix", "wanted"),
    [("pendulum_swingup", ".html", ".gif"), ("brax:reacher", ".gif", ".html")],
)
def test_wrong_suffix_is_refused(name, suffix, wanted, tmp_path):
    """A 2-D env asked for HTML or a Brax env for a GIF: an RlxError naming the right suffix."""
    out = tmp_path / f"x{suffix}"
    with pytest.raises(RlxError, match=f"renders to a \\{wanted} file"):
        render.render(name, {}, lambda o, k, d: o, out, steps=3)
    assert not out.exists()
