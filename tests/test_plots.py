"""Both plots write a valid, readable PNG, with failed (NaN) runs mixed in."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from rlx.report.plots import learning_curves, performance_profile

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(path):
    assert path.exists() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = matplotlib.image.imread(path)
    assert img.shape[0] >= 100 and img.shape[1] >= 100


def _curves(rng):
    steps = np.linspace(0, 2e6, 21)
    out = {}
    for env, scale in [("hopper", 3000.0), ("cartpole", 500.0)]:
        out[env] = {}
        for label, speed in [("ppo", 1.0), ("sac", 2.0)]:
            mean = scale * (1 - np.exp(-speed * steps / 1e6))
            out[env][label] = (steps, mean + rng.normal(0, scale / 10, size=(5, steps.size)))
    return out


def test_learning_curves_png(tmp_path):
    curves = _curves(np.random.default_rng(0))
    curves["hopper"]["ppo"][1][1, 3:] = np.nan  # run 1 failed at step 3
    curves["cartpole"]["sac"][1][:, 5] = np.nan  # every run missing at step 5: a gap
    out = learning_curves(curves, tmp_path / "sub" / "curves.png", title="IQM", reps=100)
    assert out == tmp_path / "sub" / "curves.png"
    _check_png(out)


def test_performance_profile_png(tmp_path):
    rng = np.random.default_rng(0)
    scores = {
        "ppo": {"hopper": rng.normal(2000, 300, 5), "cartpole": rng.normal(400, 50, 5)},
        "sac": {"hopper": rng.normal(2500, 300, 5), "cartpole": rng.normal(450, 50, 5)},
    }
    scores["sac"]["hopper"][2] = np.nan
    _check_png(performance_profile(scores, tmp_path / "profile.png", title="final", reps=100))
    norm = {"hopper": (0.0, 3500.0), "cartpole": (0.0, 500.0)}
    _check_png(performance_profile(scores, tmp_path / "norm.png", normalize=norm, reps=0))


def test_plot_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="no envs"):
        learning_curves({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"'hopper'\]\['ppo'\]"):
        learning_curves({"hopper": {"ppo": (np.arange(3), np.ones((2, 4)))}}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="'ppo' has no scores on 'walker'"):
        performance_profile(
            {"ppo": {"hopper": np.ones(3)}, "sac": {"walker": np.ones(3)}}, tmp_path / "x.png"
        )
    with pytest.raises(ValueError, match="need min < max"):
        performance_profile({"ppo": {"h": np.ones(3)}}, tmp_path / "x.png", normalize={"h": (1, 1)})
