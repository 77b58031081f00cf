"""The squeeze-lift SFT recipes are calibrated by one knob: each task (pure JAX, MJX) shares one
demonstration noise and one bc step count across its levels; only the number of demonstration
episodes differs per level."""

from __future__ import annotations


def test_squeeze_sft_has_one_noise_and_step_count_per_task():
    from rlx.envs.recipes import SQUEEZE_EPISODES, SQUEEZE_SFT

    by_task: dict[str, set[tuple[float, int]]] = {}
    for env, (episodes, noise, steps) in SQUEEZE_SFT.items():
        assert episodes == SQUEEZE_EPISODES[env]  # the one knob per level
        by_task.setdefault(env.rsplit("_l", 1)[0], set()).add((noise, steps))
    assert set(by_task) == {"squeeze_lift", "squeeze_lift_mjx"}
    assert all(len(shared) == 1 for shared in by_task.values()), by_task
