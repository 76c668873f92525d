"""The accuracy bootstrap of the head tables (featlab.analyses.heads.scoring)."""
import warnings

import numpy as np

from featlab.analyses.heads.scoring import bootstrap_mean


def test_bootstrap_mean_matches_a_hand_resampled_interval():
    rng = np.random.default_rng(3)
    correct = rng.random((50, 3)) < 0.7
    out = bootstrap_mean(correct, n_boot=500, seed=1)
    per_image = correct.mean(axis=1)
    index = np.random.default_rng(1).integers(50, size=(500, 50))
    low, high = np.percentile(per_image[index].mean(axis=1), [2.5, 97.5])
    assert out == dict(mean=per_image.mean(), ci_low=low, ci_high=high)
    assert out["ci_low"] < out["mean"] < out["ci_high"]


def test_an_empty_subset_gives_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = bootstrap_mean(np.zeros((0, 2)))
    assert all(np.isnan(v) for v in out.values())
