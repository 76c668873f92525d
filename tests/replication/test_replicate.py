"""``featlab replicate``: the random-effects pool against statsmodels, the verdict across
seeds on constructed rows (effect present -> yes, reversed -> no, too few seeds or no effect
-> inconclusive), seeds that resume and refuse another study, the re-split of a store, and
one end-to-end run of two tiny seeds side by side (in tests/replication/test_replicate_run.py)."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from statsmodels.stats.meta_analysis import combine_effects

from featlab.cli.main import cli
from featlab.errors import FeatlabError
from featlab.replication.meta import across_verdict, decide, random_effects, rule
from featlab.replication.overlay import resplit
from featlab.replication.pool import pool
from featlab.replication.run import parse_seeds, replicate, study_config
from featlab.replication.runner import plan, seed_dir
from featlab.reporting.claims import row
from conftest import one_error_line


@pytest.mark.parametrize("case", range(4))
@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt")  # statsmodels, tau2 < 0
def test_random_effects_equal_statsmodels_dl(case):
    rng = np.random.default_rng(case)
    k = [2, 5, 8, 20][case]
    spread = [0.0, 0.1, 0.2, 0.05][case]  # case 0: homogeneous (tau2 = 0)
    effects = 0.1 + rng.normal(0, spread, k) + rng.normal(0, 0.02, k)
    variances = rng.uniform(0.0001, 0.001, k)
    mine = random_effects(effects, variances)
    ref = combine_effects(effects, variances, method_re="dl", use_t=False)
    assert mine["q"] == pytest.approx(ref.q, rel=1e-10)
    if ref.tau2 >= 0:
        low, high = ref.conf_int(use_t=False)[1]
        effect, se, tau2 = ref.mean_effect_re, ref.sd_eff_w_re, ref.tau2
    else:  # statsmodels leaves a negative moment estimate as it is; DerSimonian-Laird's is 0
        low, high = ref.conf_int(use_t=False)[0]  # and the pool is the fixed-effect one
        effect, se, tau2 = ref.mean_effect_fe, ref.sd_eff_w_fe, 0.0
    assert mine["effect"] == pytest.approx(effect, rel=1e-10)
    assert mine["se"] == pytest.approx(se, rel=1e-10)
    assert (mine["low"], mine["high"]) == (pytest.approx(low, rel=1e-10),
                                           pytest.approx(high, rel=1e-10))
    assert mine["tau2"] == pytest.approx(tau2, abs=1e-14)
    assert mine["i2"] == pytest.approx(max(ref.i2, 0.0), abs=1e-12)


def test_random_effects_ground_truth_and_refusals():
    # identical seeds: the pool is the fixed-effect mean, no heterogeneity
    same = random_effects([0.2, 0.2, 0.2], [0.01, 0.01, 0.01])
    assert same["effect"] == pytest.approx(0.2) and same["tau2"] == 0 and same["i2"] == 0
    assert same["se"] == pytest.approx(np.sqrt(0.01 / 3))
    # widely scattered precise seeds: tau2 dominates and the interval widens accordingly
    wide = random_effects([-0.3, 0.0, 0.3], [1e-4] * 3)
    assert wide["tau2"] == pytest.approx(0.09, rel=0.01) and wide["i2"] > 0.99
    assert wide["low"] < -0.2 and wide["high"] > 0.2
    with pytest.raises(ValueError):
        random_effects([0.1, 0.2], [0.01, 0.0])
    with pytest.raises(ValueError):
        random_effects([], [])


def _rows(effects, se=0.02, claim="joint > fg", cid="1", **kw):
    """One seed's row per effect, with the row's own verdict (as claims.py decides it)."""
    out, kw = [], dict(dict(margin=0.0), **kw)
    for seed, e in enumerate(effects):
        low, high = e - 1.96 * se, e + 1.96 * se
        r = rule(dict(kw))
        out.append(dict(seed=seed, claims=[row(cid, claim, decide(r, low, high), e, low, high,
                                               n=100, **kw)]))
    return out


def test_verdict_across_seeds_on_constructed_rows():
    rng = np.random.default_rng(0)
    present = pool(_rows(0.08 + rng.normal(0, 0.01, 5)))["rows"][0]
    assert present["verdict"] == "yes" and present["agree"] == 5 and not present["flips"]
    reversed_ = pool(_rows(-0.08 + rng.normal(0, 0.01, 5)))["rows"][0]
    assert reversed_["verdict"] == "no"
    # no effect: seeds scatter around 0, some say yes, some no: it flips and pools to nothing
    null = pool(_rows([0.05, -0.05, 0.0, 0.06, -0.06]))["rows"][0]
    assert null["verdict"] == "inconclusive" and null["flips"]
    assert null["counts"] == {"yes": 2, "no": 2, "inconclusive": 1}
    assert null["pooled"]["i2"] > 0.5
    few = pool(_rows([0.1, 0.1]))["rows"][0]  # a clear effect in too few seeds
    assert few["verdict"] == "inconclusive" and few["counts"]["yes"] == 2
    assert pool(_rows([0.1, 0.1]), min_seeds=2)["rows"][0]["verdict"] == "yes"


def test_verdict_across_seeds_keeps_each_rows_rule():
    within = dict(direction="within", margin=0.02)
    assert pool(_rows([0.002, -0.001, 0.0, 0.003], se=0.003, **within))["rows"][0][
        "verdict"] == "yes"
    assert pool(_rows([0.1, 0.11, 0.09], se=0.01, **within))["rows"][0]["verdict"] == "no"
    stays = dict(direction="less", reference=1.25)  # a ratio below its tolerance
    assert pool(_rows([1.0, 1.02, 0.98], **stays))["rows"][0]["verdict"] == "yes"
    assert pool(_rows([1.4, 1.5, 1.45], **stays))["rows"][0]["verdict"] == "no"
    assert across_verdict(rule({}), None) == "inconclusive"
    # a gain claim with a 1-point margin: a pooled effect near 0, tightly, is a "no"
    null = pool(_rows([0.001, 0.0, -0.001, 0.002, 0.0], se=0.002, margin=0.01))["rows"][0]
    assert null["verdict"] == "no"


def test_rows_without_an_interval_are_left_out_and_counted():
    summaries = _rows([0.08, 0.09, 0.07, 0.08])
    summaries[1]["claims"][0].update(low=None, high=None, verdict="inconclusive")
    summaries[2]["claims"][0].update(low=0.07, high=0.07)  # zero width: no variance
    r = pool(summaries)["rows"][0]
    assert r["excluded"] == [1, 2] and r["k"] == 2 and r["verdict"] == "inconclusive"
    assert len(r["seeds"]) == 4


def test_claims_pool_per_claim_and_report_flips():
    a = _rows([0.08, 0.09, 0.07])
    b = _rows([0.05, -0.05, 0.0], cid="5", claim="gain shrinks")
    summaries = [dict(seed=s, claims=a[s]["claims"] + b[s]["claims"]) for s in range(3)]
    result = pool(summaries)
    assert result["claims"]["1"]["verdict"] == "yes" and result["claims"]["1"]["stable"]
    five = result["claims"]["5"]
    assert five["per_seed"] == {0: "yes", 1: "no", 2: "inconclusive"}
    assert five["flips"] and not five["stable"] and five["verdict"] == "inconclusive"


def test_parse_seeds():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0-2,5,2") == [0, 1, 2, 5]
    assert parse_seeds(7) == [7] and parse_seeds([3, 1]) == [1, 3]
    for bad in ("4-0", "a", "1;2", ""):
        with pytest.raises(FeatlabError, match="--seeds"):
            parse_seeds(bad)


def test_resplit_keeps_per_class_counts_and_follows_the_seed():
    labels = np.repeat(np.arange(4), 10)
    split = np.where(np.arange(40) % 10 < 3, "test", "train")
    a, b = resplit(split, labels, 0), resplit(split, labels, 1)
    for s in (a, b):
        for c in range(4):
            assert np.sum(s[labels == c] == "test") == 3
    assert not np.array_equal(a, b) and np.array_equal(a, resplit(split, labels, 0))


def _done_seed(out, seed, config):
    folder = seed_dir(str(out), seed)
    os.makedirs(folder)
    claims = _rows([0.08 + 0.01 * seed])[0]["claims"]
    with open(os.path.join(folder, "summary.json"), "w") as handle:
        json.dump(dict(seed=seed, claims=claims, verdicts={"1": "yes"}, seconds=1.0,
                       config=dict(config, seed=seed)), handle)


def test_completed_seeds_are_skipped_and_another_study_refused(tmp_path):
    base = study_config(True, None, "cpu")
    for s in (0, 1, 2):
        _done_seed(tmp_path / "out", s, base)
    killed = seed_dir(str(tmp_path / "out"), 3)  # started, killed before its summary
    os.makedirs(killed)
    with open(os.path.join(killed, "config.json"), "w") as handle:
        json.dump(dict(base, seed=3), handle)
    assert plan(str(tmp_path / "out"), [0, 1, 2, 3], base) == ([3], [0, 1, 2])
    # every seed complete: nothing runs, the seeds are pooled
    result = replicate("0-2", quick=True, device="cpu", out_dir=str(tmp_path / "out"))
    assert result["run_seconds"] == {} and result["seeds"] == [0, 1, 2]
    assert result["claims"]["1"]["verdict"] == "yes"
    assert os.path.isfile(result["csv"]) and os.path.isfile(result["figures"]["1"][0])
    before = sorted(os.listdir(tmp_path / "out"))
    with pytest.raises(FeatlabError, match="another study"):  # default size over quick seeds
        replicate("0-4", device="cpu", out_dir=str(tmp_path / "out"))
    assert sorted(os.listdir(tmp_path / "out")) == before  # refused: nothing written


def test_cli_merges_folders_and_refuses_mistakes(tmp_path):
    base = study_config(True, None, "cpu")
    for s in (0, 1, 2):
        _done_seed(tmp_path / f"job-{s}", s, base)  # one folder per cluster job
    runner = CliRunner()
    dirs = [str(tmp_path / f"job-{s}") for s in range(3)]
    out = runner.invoke(cli, ["replicate", "--merge", *dirs, "--out", str(tmp_path / "all")])
    assert out.exit_code == 0, out.output
    assert "3/3 seeds' own verdicts agree with it; per seed stable" in out.output
    assert json.load(open(tmp_path / "all" / "replicate.json"))["seeds"] == [0, 1, 2]
    for args, words in ((["--merge"], "name the folders"), (["--seeds", "3-1"], "--seeds"),
                        (["--quick", "--store", str(tmp_path)], "--quick"),
                        (["--merge", str(tmp_path / "none")], "no such folder"),
                        ([str(tmp_path)], "unexpected argument")):
        bad = runner.invoke(cli, ["replicate", *args, "--out", str(tmp_path / "x")])
        assert bad.exit_code == 2 and words in one_error_line(bad.output), bad.output
    for args, words in ((["--replicate", str(tmp_path / "none")], "no replicate.json"),
                        ([], "at least one feature store")):
        bad = runner.invoke(cli, ["report", *args, "--out", str(tmp_path / "x")])
        assert bad.exit_code == 2 and words in one_error_line(bad.output), bad.output
    assert not os.path.exists(tmp_path / "x")


def test_sigterm_stops_the_seeds_processes(tmp_path, monkeypatch):
    import signal
    import subprocess
    import threading

    from featlab.replication import runner

    started = []

    def fake_start(folder, config, threads):
        started.append(subprocess.Popen(["sleep", "60"]))
        return started[-1]

    monkeypatch.setattr(runner, "_start", fake_start)
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
    with pytest.raises(SystemExit):
        runner.run_seeds(str(tmp_path), [0, 1, 2], {}, jobs=2)
    assert len(started) == 2 and all(p.poll() is not None for p in started)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored
