"""The demo exploration's decision on constructed correctness vectors: a head that is right
on more of the same images is 'yes', an identical head 'no', a few images 'inconclusive';
the adaptive rows are accuracies with the Wilson interval (statsmodels' reference); the
demo command passes ``--explore/--no-explore``."""
import numpy as np
import pytest
from click.testing import CliRunner
from statsmodels.stats.proportion import proportion_confint

from featlab.cli.main import cli
from featlab.errors import FeatlabError
from featlab.reporting.claims import GAIN_MARGIN
from featlab.reporting.demo_explore import adaptive, compare

KW = dict(n_boot=500, seed=0)


def _hits(n, k, seed):
    out = np.zeros(n, bool)
    out[np.random.default_rng(seed).permutation(n)[:k]] = True
    return out


def test_a_better_head_on_the_same_images_is_yes():
    linear = _hits(400, 200, 1)
    better = linear | _hits(400, 120, 2)  # right wherever linear is, and on more images
    r = compare("mlp", "blur", "joint", better, linear, **KW)
    assert r["verdict"] == "yes" and r["low"] > 0 and r["margin"] == GAIN_MARGIN
    assert r["effect"] == pytest.approx(better.mean() - linear.mean()) and r["n"] == 400
    assert 0 <= r["p_value"] < 0.001


def test_an_identical_or_worse_head_is_no():
    linear = _hits(400, 200, 1)
    same = compare("mlp", "blur", "joint", linear.copy(), linear, **KW)
    assert same["verdict"] == "no" and same["low"] == same["high"] == 0.0
    worse = compare("gated", "blur", "joint", linear & _hits(400, 300, 3), linear, **KW)
    assert worse["verdict"] == "no" and worse["high"] < 0


def test_few_images_are_inconclusive():
    linear = np.array([True, False, True, False, True, False])
    r = compare("mlp", "blur", "joint", linear | np.array([0, 1, 0, 0, 0, 0], bool), linear, **KW)
    assert r["verdict"] == "inconclusive" and r["low"] <= 0 < GAIN_MARGIN <= r["high"]
    empty = compare("mlp", "blur", "joint", np.zeros(0, bool), np.zeros(0, bool), **KW)
    assert empty["verdict"] == "inconclusive" and empty["n"] == 0 and empty["effect"] is None


def test_adaptive_rows_are_accuracies_with_the_wilson_interval():
    correct = _hits(50, 17, 4)
    r = adaptive("gated", "fgsm:eps=0.01:target=head:gated", correct)
    low, high = proportion_confint(17, 50, alpha=0.05, method="wilson")
    assert r["effect"] == pytest.approx(17 / 50) and r["verdict"] == "reported"
    assert (r["low"], r["high"]) == pytest.approx((low, high)) and r["versus"] is None


@pytest.mark.parametrize("flag, explore", [([], True), (["--no-explore"], False)])
def test_the_demo_command_passes_explore(monkeypatch, flag, explore):
    from featlab.reporting import demo as demo_module

    seen = []

    def stop(spec):
        seen.append(spec)
        raise FeatlabError("stopped before any work")

    monkeypatch.setattr(demo_module, "demo", stop)
    result = CliRunner().invoke(cli, ["demo", *flag])
    assert result.exit_code == 2 and [s.explore for s in seen] == [explore]
