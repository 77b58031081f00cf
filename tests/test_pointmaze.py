"""The point maze: OGBench's layouts and tasks, the contact model, teleporters, success, the
oracle, and the dynamics against an MJX model of the same geometry built here."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rlx.envs.maze import LAYOUTS, RADIUS, TASKS, Maze, cell_xy

from rlx import envs
from rlx.errors import RlxError

# Cell-level BFS distances of the five tasks, measured independently in the research notes
# (teleport: walking, teleporters ignored).
TASK_CELL_DISTANCES = {
    "medium": [10, 10, 6, 10, 8],
    "large": [15, 19, 12, 14, 15],
    "giant": [30, 26, 30, 26, 17],
    "teleport": [19, 15, 10, 21, 15],
}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_layouts_and_tasks_match_ogbench(name):
    maze = Maze.named(name)
    shape = {"medium": (8, 8), "large": (9, 12), "giant": (12, 16), "teleport": (9, 12)}[name]
    assert maze.shape == shape
    assert (maze.walls[0] == 1).all() and (maze.walls[-1] == 1).all()
    assert (maze.walls[:, 0] == 1).all() and (maze.walls[:, -1] == 1).all()
    got = [int(maze.cell_bfs[g][s]) for s, g in TASKS[name]]
    assert got == TASK_CELL_DISTANCES[name]


def test_cell_centres_follow_ogbench_geometry():
    np.testing.assert_allclose(cell_xy((1, 1)), [0.0, 0.0])
    np.testing.assert_allclose(cell_xy((4, 6)), [20.0, 12.0])  # a teleporter's in-cell


@functools.cache
def _jitted_step(env):
    return jax.jit(env.step)


def _step(env, state, action):
    return _jitted_step(env)(state, jnp.asarray(action, jnp.float32))


def _state_at(env, xy, goal=(100.0, 100.0)):
    state = env.reset(jax.random.PRNGKey(0))
    ms = state.pipeline_state.replace(xy=jnp.asarray(xy, jnp.float32),
                                      goal=jnp.asarray(goal, jnp.float32))  # fmt: skip
    return state.replace(pipeline_state=ms, obs=env._obs(ms))


def test_free_motion_moves_point_two_times_the_clipped_action():
    env = envs.make("pointmaze_medium")
    state = _state_at(env, (0.0, 0.0))  # centre of cell (1, 1)
    nxt = _step(env, state, [0.5, -3.0])
    np.testing.assert_allclose(nxt.pipeline_state.xy, [0.1, -0.2], atol=1e-6)


def test_pushing_into_a_wall_settles_at_the_measured_residual_penetration():
    # Cell (1, 1) of the medium maze has a wall to the south (row 0): face at y = -2. MuJoCo
    # 3.17 on this model settles at a penetration of 0.044325 (measured once; the research
    # notes' linear fit, leaving K = 0.17718 of each step's penetration, gives 0.0431).
    env = envs.make("pointmaze_medium")
    state = _state_at(env, (0.0, 0.0))
    for _ in range(40):
        state = _step(env, state, [0.0, -1.0])
    penetration = RADIUS - (state.pipeline_state.xy[1] + 2.0)
    np.testing.assert_allclose(penetration, 0.044325, rtol=1e-3)
    assert abs(float(state.pipeline_state.xy[0])) < 1e-6  # a straight push slides nowhere


def test_long_random_rollouts_never_enter_walls_or_turn_nan():
    env = envs.make("pointmaze_giant")
    maze = env.maze

    def run(key):
        k_reset, k_steps = jax.random.split(key)

        def body(state, k):
            nxt = env.step(state, jax.random.uniform(k, (2,), minval=-1.5, maxval=1.5))
            return nxt, nxt.pipeline_state.xy

        _, xy = jax.lax.scan(body, env.reset(k_reset), jax.random.split(k_steps, 2000))
        return xy

    xy = np.asarray(jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(3), 32)))
    assert np.isfinite(xy).all()
    cells = np.floor((xy + 6.0) / 4.0).astype(int)
    assert not maze.walls[cells[..., 1], cells[..., 0]].any(), "a centre entered a wall cell"
    # Distance from every wall box stays above the radius minus the soft-contact sink.
    walls = cell_xy(np.argwhere(maze.walls == 1))
    flat = xy.reshape(-1, 2)[::7]
    gap = np.maximum(np.abs(flat[:, None, :] - walls[None]) - 2.0, 0.0)
    assert np.sqrt((gap**2).sum(-1)).min() > RADIUS - 0.1


def test_reaching_the_goal_pays_one_and_ends_the_episode():
    env = envs.make("pointmaze_medium")
    state = _state_at(env, (0.0, 0.0), goal=(1.1, 0.0))
    nxt = _step(env, state, [1.0, 0.0])  # |xy - goal| = 0.9 <= 1
    assert float(nxt.reward) == 1.0 and float(nxt.done) == 1.0
    assert float(nxt.metrics["goal_reached"]) == 1.0
    far = _step(env, _state_at(env, (0.0, 0.0), goal=(1.3, 0.0)), [1.0, 0.0])  # 1.1 > 1
    assert float(far.reward) == 0.0 and float(far.done) == 0.0


def test_teleporter_follows_ogbench_step_order():
    """OGBench's ``MazeEnv.step``: the observation is the position reached (the entry side),
    then the state moves to an out-cell, where success is judged and the next step starts."""
    env = envs.make("pointmaze_teleport")
    outs = cell_xy(np.array([(1, 7), (6, 1), (6, 10)]))
    entry = np.array([20.0, 10.6])  # 1.4 below the in-cell (4, 6): within the trigger of 1.5
    landed = set()
    for seed in range(12):
        # The goal sits on the entry position: judged there (before teleporting) it would count.
        state = env.reset(jax.random.PRNGKey(seed))
        ms = state.pipeline_state.replace(xy=jnp.asarray([20.0, 10.4]), goal=jnp.asarray(entry))
        nxt = _step(env, state.replace(pipeline_state=ms), [0.0, 1.0])
        np.testing.assert_allclose(nxt.obs[:2], entry, atol=1e-5)  # observed: the entry side
        np.testing.assert_allclose(nxt.obs[2:], entry, atol=1e-6)
        xy = np.asarray(nxt.pipeline_state.xy)
        hit = np.nonzero(np.linalg.norm(outs - xy, axis=1) < 1e-5)[0]
        assert hit.size == 1, xy  # the state is an out-cell centre
        landed.add(int(hit[0]))
        assert float(nxt.reward) == 0.0 and float(nxt.done) == 0.0  # judged after teleporting
        after = _step(env, nxt, [1.0, 0.0])  # the next step starts from the out-cell
        np.testing.assert_allclose(after.obs[:2], xy + np.array([0.2, 0.0]), atol=1e-5)
    assert landed == {0, 1, 2}
    # Success is judged at the out-cell: a goal there is reached on the entering step.
    state = env.reset(jax.random.PRNGKey(0))
    hits = []
    for seed in range(12):
        ms = state.pipeline_state.replace(xy=jnp.asarray([20.0, 10.4]),
                                          goal=jnp.asarray(outs[0]), key=jax.random.PRNGKey(seed))  # fmt: skip
        nxt = _step(env, state.replace(pipeline_state=ms), [0.0, 1.0])
        at_goal = np.linalg.norm(np.asarray(nxt.pipeline_state.xy) - outs[0]) < 1e-5
        assert float(nxt.reward) == float(at_goal)
        hits.append(at_goal)
    assert 0 < sum(hits) < 12
    plain = envs.make("pointmaze_large")  # no teleporters elsewhere
    state = _state_at(plain, (0.0, 0.0))
    np.testing.assert_allclose(_step(plain, state, [1, 0]).pipeline_state.xy, [0.2, 0.0])


def test_teleport_dataset_records_what_the_env_returns():
    """Navigate rows follow the env's step: a row whose next observation triggers a teleporter
    is followed by a row observing that same entry position while the sphere moves on from an
    out-cell (OGBench's recorded datasets)."""
    from rlx.envs import pointmaze_data

    maze = Maze.named("teleport")
    ins, outs = maze.teleporters()
    rows = pointmaze_data.navigate(maze, jax.random.PRNGKey(0), 8, 400, 0.5)
    obs, nxt = rows["observations"].reshape(8, 400, 2), rows["next_observations"].reshape(8, 400, 2)
    np.testing.assert_array_equal(obs[:, 1:], nxt[:, :-1])  # rows chain within an episode
    near_in = np.linalg.norm(nxt[:, :-1, None] - ins, axis=-1).min(-1) <= 1.5
    assert near_in.sum() >= 3, near_in.sum()  # teleports happened
    from_out = np.linalg.norm(nxt[:, 1:, None] - outs, axis=-1).min(-1)[near_in]
    assert from_out.max() <= 0.2 * np.sqrt(2) + 1e-4, from_out  # moved on from an out-cell


def test_tasks_start_and_end_within_one_unit_of_their_cells():
    env = envs.make("pointmaze_large")
    for task, (start, goal) in enumerate(TASKS["large"]):
        states = jax.vmap(lambda k, t=task: env.reset_task(k, t))(
            jax.random.split(jax.random.PRNGKey(task), 64)
        )
        assert np.abs(np.asarray(states.pipeline_state.xy) - cell_xy(start)).max() <= 1.0
        assert np.abs(np.asarray(states.obs[:, 2:]) - cell_xy(goal)).max() <= 1.0
        assert np.abs(np.asarray(states.obs[:, 2:]) - cell_xy(goal)).max() > 0.8  # noise used


def _oracle_success(env, episodes=64, noise=0.5, seed=0):
    def run(key):
        k_reset, k_steps = jax.random.split(key)
        t = jax.random.randint(k_reset, (), 0, 5)

        def body(carry, k):
            state, alive = carry
            action = jnp.clip(env.baseline_policy(state.obs) + noise * jax.random.normal(k, (2,)),
                              -1.0, 1.0)  # fmt: skip
            nxt = env.step(state, action)
            return (nxt, alive * (1.0 - nxt.done)), None

        (_, alive), _ = jax.lax.scan(body, (env.reset_task(k_reset, t), 1.0),
                                     jax.random.split(k_steps, env.episode_length))  # fmt: skip
        return 1.0 - alive

    return float(
        jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(seed), episodes)).mean()
    )


def test_noisy_oracle_solves_the_medium_maze():
    # The research notes measured 0.98 for OGBench's oracle with noise 0.5 in MuJoCo.
    assert _oracle_success(envs.make("pointmaze_medium")) >= 0.95


def test_bad_maze_and_task_are_refused_with_close_matches():
    from rlx.envs.pointmaze import PointMaze

    with pytest.raises(RlxError, match=r"unknown maze 'mediun'.*Did you mean 'medium'"):
        PointMaze(maze="mediun")
    with pytest.raises(RlxError, match=r"task must be an integer in 1\.\.5"):
        PointMaze(maze="medium", task=6)
    with pytest.raises(RlxError, match=r"unknown environment 'pointmaze_gaint'.*pointmaze_giant"):
        envs.make("pointmaze_gaint")


# -- against MJX -------------------------------------------------------------------------------


def _mjx_model(maze: Maze):
    """OGBench's point model as facts (research notes): RK4 at dt 0.02; a sphere of radius 0.7
    at z = 0.7 on x/y slide joints; a floor plane; one 2 x 2 x 1 half-size box per wall cell."""
    import mujoco
    from mujoco import mjx

    boxes = "\n".join(
        f'<geom type="box" pos="{x} {y} 1.0" size="2 2 1.0" contype="1" conaffinity="1"/>'
        for x, y in cell_xy(np.argwhere(maze.walls == 1))
    )
    xml = f"""<mujoco><option timestep="0.02" integrator="RK4"/>
      <default><joint limited="false" armature="0" damping="0"/>
        <geom condim="3" conaffinity="0" margin="0" friction="1 .5 .5" density="100"/></default>
      <worldbody><geom type="plane" size="40 40 0.2" conaffinity="1" condim="3"/>{boxes}
        <body pos="0 0 0.7"><joint type="slide" axis="1 0 0"/><joint type="slide" axis="0 1 0"/>
          <geom type="sphere" size="0.7"/></body></worldbody></mujoco>"""
    model = mjx.put_model(mujoco.MjModel.from_xml_string(xml))
    return model, mjx.make_data(model), mjx


def _mjx_mover(maze: Maze):
    """OGBench's step on the MJX model: qpos += 0.2 clip(a), qvel = 0, five RK4 substeps."""
    model, data0, mjx = _mjx_model(maze)

    def mjx_move(xy, action):
        d = data0.replace(qpos=xy + 0.2 * jnp.clip(action, -1, 1), qvel=jnp.zeros(2))
        d, _ = jax.lax.scan(lambda d, _: (mjx.step(model, d), None), d, None, length=5)
        return d.qpos

    return mjx_move


CONTACT_BOUND = 5e-6
"""Largest one-step error against MJX at a concave corner and along a seam: measured 4.3e-7
(float32 both; the frictionless push-out model it replaced: 0.06 at corners, 0.03 at seams)."""


@pytest.mark.slow
def test_contact_at_a_concave_corner_and_a_seam_matches_mjx():
    """Medium maze, cell (1, 1) (centre (0, 0)): walls south (y = -2) and west (x = -2), a
    concave corner at (-2, -2); the south wall is two boxes meeting at a seam at x = 2. MJX
    rolls out each push; at every state our one step is compared with MJX's."""
    maze = Maze.named("medium")
    mjx_move = _mjx_mover(maze)
    rng = np.random.default_rng(0)
    n = 24
    # (a) diagonal pushes into the corner; (b) slides along the south wall across the seam,
    # pressing into it, in both directions.
    corner = (rng.uniform(-1.2, -0.4, (n, 2)), -rng.uniform(0.3, 1.0, (n, 2)))
    seam = (
        np.stack([rng.uniform(0.9, 3.1, n), rng.uniform(-1.33, -1.2, n)], -1),
        np.stack([rng.choice([-1.0, 1.0], n) * rng.uniform(0.4, 1.0, n),
                  -rng.uniform(0.3, 1.0, n)], -1),
    )  # fmt: skip

    def rollout(xy, action):
        def body(xy, _):
            nxt = mjx_move(xy, action)
            return nxt, (jnp.linalg.norm(maze.move(xy, action) - nxt), nxt)

        return jax.lax.scan(body, xy, None, length=8)[1]

    run = jax.jit(jax.vmap(rollout))
    for name, (starts, actions) in {"corner": corner, "seam": seam}.items():
        err, nxt = (np.asarray(z) for z in run(jnp.asarray(starts, jnp.float32),
                                                    jnp.asarray(actions, jnp.float32)))  # fmt: skip
        if name == "corner":  # pressed against both walls
            assert (np.maximum(nxt[..., 0], nxt[..., 1]) < -1.25).sum() > 50
        else:  # touching both boxes of the seam (within 0.7 of x = 2)
            assert (np.abs(nxt[..., 0] - 2.0) < 0.6).sum() > 30 and (nxt[..., 1] < -1.25).all()
        print(f"{name}: one-step error vs MJX over {err.size} states: max {err.max():.2e}")
        assert err.max() <= CONTACT_BOUND, (
            f"{name}: one-step error {err.max():.2e} above the measured bound {CONTACT_BOUND}"
        )


@pytest.mark.slow
def test_dynamics_match_an_mjx_model_of_the_same_geometry():
    """Closed-loop noisy-oracle episodes stepped by MJX (OGBench's step: qpos += 0.2 a,
    qvel = 0, five RK4 substeps); at every visited state our model's one-step prediction is
    compared with MJX's next state, and the episodes' success is compared with our env's own
    episodes under the same noise."""
    env = envs.make("pointmaze_medium")
    maze = env.maze
    mjx_move = _mjx_mover(maze)
    episodes, steps = 10, 300

    def episode(key, noise, physics):
        k_reset, k_steps = jax.random.split(key)
        start = env.reset_task(k_reset, jax.random.randint(k_reset, (), 0, 5))
        goal = start.obs[2:]

        def body(carry, k):
            xy, alive = carry
            obs = jnp.concatenate([xy, goal])
            action = jnp.clip(env.baseline_policy(obs) + noise * jax.random.normal(k, (2,)), -1, 1)
            nxt = physics(xy, action)
            ours = maze.move(xy, action)
            commanded = xy + 0.2 * jnp.clip(action, -1, 1)
            contact = jnp.linalg.norm(ours - commanded) > 1e-6
            alive = alive * (jnp.linalg.norm(nxt - goal) > 1.0)
            return (nxt, alive), (jnp.linalg.norm(ours - nxt), alive, contact)

        (_, alive), rows = jax.lax.scan(body, (start.pipeline_state.xy, 1.0),
                                        jax.random.split(k_steps, steps))  # fmt: skip
        return 1.0 - alive, rows

    # Half the episodes under OGBench's noise 0.5 (closed-loop success compared), half under
    # noise 3 (nearly random saturated actions: many wall contacts).
    keys = jax.random.split(jax.random.PRNGKey(7), 2 * episodes)
    noise = jnp.asarray([0.5] * episodes + [3.0] * episodes)
    mjx_success, (err, live, contact) = jax.jit(jax.vmap(
        lambda k, n: episode(k, n, mjx_move)))(keys, noise)  # fmt: skip
    ours_success, _ = jax.jit(jax.vmap(lambda k, n: episode(k, n, maze.move)))(keys, noise)
    mjx_success, ours_success = mjx_success[:episodes], ours_success[:episodes]
    live = np.asarray(live) > 0  # states of episodes still running (after success: idling)
    err, contact = np.asarray(err)[live], np.asarray(contact)[live]
    print(
        f"one-step error vs MJX over {err.size} states: mean {err.mean():.2e}, max "
        f"{err.max():.2e}; at {contact.sum()} wall contacts: mean {err[contact].mean():.2e}; "
        f"success MJX {float(mjx_success.mean()):.2f}, ours {float(ours_success.mean()):.2f}"
    )
    assert err.size > 500 and contact.sum() > 100
    # Measured: mean 2.4e-9, at contacts 5.4e-8 (the frictionless push-out model: mean 2.7e-5,
    # max 0.022 on these states).
    assert err.max() <= CONTACT_BOUND, f"max one-step error {err.max():.2e} > {CONTACT_BOUND}"
    assert err[contact].mean() <= 1e-6, err[contact].mean()
    assert abs(float(mjx_success.mean()) - float(ours_success.mean())) <= 0.1
