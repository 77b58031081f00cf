"""Both plots write a PNG of the figure's size with the labels' colours drawn, with failed (NaN)
runs mixed in, and their lines are the IQM of the runs / the hand-computed profile."""

from __future__ import annotations

import matplotlib.colors
import matplotlib.image
import numpy as np
import pytest
import scipy.stats

from rlx.report.plots import (
    DPI,
    learning_curves,
    learning_curves_figure,
    performance_profile,
    performance_profile_figure,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BLUE, ORANGE = (matplotlib.colors.to_rgb(f"tab:{c}") for c in ("blue", "orange"))


def _check_png(path, inches: tuple[float, float]):
    """A PNG of `inches` at `DPI`, not blank: tab:blue and tab:orange (the first two labels'
    lines) are drawn on a white background."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = matplotlib.image.imread(path)[..., :3]
    assert img.shape[:2] == (round(inches[1] * DPI), round(inches[0] * DPI)), img.shape
    white = (img > 0.99).all(-1).mean()
    assert 0.3 < white < 0.98, white  # mostly background, but something is drawn
    for color in (BLUE, ORANGE):
        assert (np.abs(img - color).max(-1) < 0.02).sum() > 100, color


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
    _check_png(out, (4.2 * 2, 3.6))  # one 4.2-inch subplot per env


def test_learning_curve_lines_are_the_iqm_of_the_finite_runs():
    curves = _curves(np.random.default_rng(0))
    curves["hopper"]["ppo"][1][1, 3:] = np.nan
    curves["cartpole"]["sac"][1][:, 5] = np.nan
    fig = learning_curves_figure(curves, reps=10)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["hopper", "cartpole"]
    for ax, per_env in zip(axes, curves.values(), strict=True):
        for line, (label, (steps, scores)) in zip(ax.lines, per_env.items(), strict=False):
            assert line.get_label() == label
            np.testing.assert_array_equal(line.get_xdata(), steps)
            want = [scipy.stats.trim_mean(c[~np.isnan(c)], 0.25) if (~np.isnan(c)).any()
                    else np.nan for c in scores.T]  # fmt: skip
            np.testing.assert_allclose(line.get_ydata(), want, rtol=1e-12)
    assert np.isnan(axes[1].lines[1].get_ydata()[5])  # the gap


def test_performance_profile_png(tmp_path):
    rng = np.random.default_rng(0)
    scores = {
        "ppo": {"hopper": rng.normal(2000, 300, 5), "cartpole": rng.normal(400, 50, 5)},
        "sac": {"hopper": rng.normal(2500, 300, 5), "cartpole": rng.normal(450, 50, 5)},
    }
    scores["sac"]["hopper"][2] = np.nan
    size = (5.2, 3.8)
    _check_png(performance_profile(scores, tmp_path / "p.png", title="final", reps=100), size)
    norm = {"hopper": (0.0, 3500.0), "cartpole": (0.0, 500.0)}
    _check_png(performance_profile(scores, tmp_path / "norm.png", normalize=norm, reps=0), size)


def test_performance_profile_lines_by_hand():
    # Env e normalised by (0, 1): a = {0, 1}, b = {0.5, 0.5}. Env f by its pooled min and max
    # (2, 4): a = {0, 1}, b = {1, 1} (b's NaN run dropped). F(tau) = mean over the two envs of
    # the share of runs above tau, on tau = 0, 0.01, ..., 1.
    scores = {"a": {"e": [0.0, 1.0], "f": [2.0, 4.0]}, "b": {"e": [0.5, 0.5], "f": [4, 4, np.nan]}}
    fig = performance_profile_figure(scores, normalize={"e": (0.0, 1.0)}, reps=0)
    a, b = fig.axes[0].lines
    taus = np.linspace(0.0, 1.0, 101)
    np.testing.assert_array_equal(a.get_xdata(), taus)
    np.testing.assert_array_equal(a.get_ydata(), np.r_[np.full(100, 0.5), 0.0])
    np.testing.assert_array_equal(b.get_ydata(), np.r_[np.ones(50), np.full(50, 0.5), 0.0])
    assert (a.get_label(), b.get_label()) == ("a", "b")


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
