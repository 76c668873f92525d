"""The demo's claim logic on constructed correctness vectors (featlab.reporting.claims)."""
import numpy as np
import pytest

from featlab.reporting import claims as C

N = 200
KW = dict(n_boot=500, seed=0)


def _pair(gain, base=0.5, n=N, seed=0):
    """(joint, fg) correctness: fg right on ``base`` of the images; joint is fg with
    ``round(gain * n)`` extra images right (gain > 0) or fg's right images wrong (< 0)."""
    rng = np.random.default_rng(seed)
    fg = rng.permutation(np.arange(n) < int(base * n))
    joint = fg.copy()
    k = int(round(abs(gain) * n))
    joint[np.flatnonzero(~fg if gain > 0 else fg)[:k]] = gain > 0
    return joint, fg


def test_paired_claim_reaches_yes_no_inconclusive():
    assert C.paired("1", "t", *_pair(0.15), **KW)["verdict"] == "yes"
    assert C.paired("1", "t", *_pair(-0.15), **KW)["verdict"] == "no"
    joint, fg = _pair(0.0)
    joint[:4], fg[:4] = [True, False, True, False], [False, True, False, True]  # +2 / -2
    row = C.paired("1", "t", joint, fg, **KW)
    assert row["verdict"] == "inconclusive" and row["low"] < 0 < row["high"]
    assert row["p_value"] == pytest.approx(1.0) and row["n"] == N and row["by_construction"]


def test_blur_claims_hold_per_sigma_and_a_missing_subset_is_inconclusive():
    good = {"sigma=1": _pair(0.2), "sigma=2": _pair(0.1, seed=1)}
    bad = {"sigma=1": _pair(0.2), "sigma=2": _pair(-0.1, seed=1)}  # fails at one sigma only
    rows = C.blur_claims({"all": good, "similar": {"sigma=1": _pair(0.05, seed=2),
                                                   "sigma=2": _pair(0.05, seed=3)},
                          "dissimilar": bad}, **KW)
    got = {r["claim"]: r["verdict"] for r in rows}
    assert got["joint > fg under blur sigma=1 (all)"] == "yes"
    assert got["joint > fg under blur sigma=2 (dissimilar)"] == "no"
    assert got["gain(dissimilar) > gain(similar) under blur sigma=1"] == "yes"
    assert got["gain(dissimilar) > gain(similar) under blur sigma=2"] == "no"
    assert C.overall(rows) == {"1": "no"}
    missing = C.blur_claims({"all": good, "similar": None, "dissimilar": good}, **KW)
    verdicts = {r["claim"]: r["verdict"] for r in missing}
    assert verdicts["joint > fg under blur sigma=1 (similar)"] == "inconclusive"
    assert verdicts["gain(dissimilar) > gain(similar) under blur sigma=2"] == "inconclusive"
    assert C.overall(missing) == {"1": "inconclusive"}  # never a pass


def test_subspace_claims_scene_stays_object_leaves():
    def m(role, low, high):
        return dict(role=role, k=10, ratio=(low + high) / 2, ratio_low=low, ratio_high=high,
                    tolerance=1.25, n=100)
    rows = C.subspace_claims({"scene": m("scene", 1.0, 1.1), "object": m("object", 2.0, 3.0)})
    assert [r["verdict"] for r in rows] == ["yes", "yes"]
    rows = C.subspace_claims({"scene": m("scene", 1.3, 1.6), "object": m("object", 1.0, 1.2)})
    assert [r["verdict"] for r in rows] == ["no", "no"]
    rows = C.subspace_claims({"scene": m("scene", 1.1, 1.4), "object": m("object", 1.1, 1.4)})
    assert [r["verdict"] for r in rows] == ["inconclusive", "inconclusive"]


def _attack(adv=True, adaptive=True):
    joint, fg = _pair(0.0)
    fgsm = {}
    for i, label in enumerate(["eps=0.01", "eps=0.02"]):
        j, f = _pair(0.2, base=0.3, seed=i)
        hi, _ = _pair(0.3, base=0.3, seed=i)
        a0, ahi = _pair(0.0, base=0.6, seed=i)[1], _pair(0.3, base=0.6, seed=i)[0]
        fgsm[label] = dict(fg=f, joint=j, joint_hi=hi, adv=j if adv else None, agree0=a0,
                           agree_hi=ahi)
    return dict(alpha=10.0, clean=dict(fg=fg, joint=joint, joint_hi=joint), fgsm=fgsm,
                adaptive={k: (v["fg"], v["fg"]) for k, v in fgsm.items()} if adaptive else {})


def test_attack_claims():
    rows = C.attack_claims(_attack(), **KW)
    got = {r["claim"]: r["verdict"] for r in rows}
    assert got["clean accuracy: joint (alpha=0) = fg within ±2 points"] == "yes"
    assert got["joint > fg under fg-FGSM eps=0.01"] == "yes"
    assert got["under fg-FGSM eps=0.02: joint (alpha=10) agrees with the bg head more than "
               "alpha=0"] == "yes"
    assert got["under fg-FGSM eps=0.01: joint (alpha=10) > adversarially retrained joint"] == "yes"
    assert got["joint under adaptive FGSM eps=0.01 (target=joint) > fg under fg-FGSM"] == \
        "inconclusive"  # equal vectors
    assert C.overall(rows) == {"3": "yes", "3b": "inconclusive", "4": "yes"}
    rows = C.attack_claims(_attack(adv=False, adaptive=False), **KW)
    assert all(r["verdict"] == "inconclusive" for r in rows if r["id"] == "3b"
               or "retrained" in r["claim"])
    far = _attack()
    far["clean"]["joint_hi"] = _pair(-0.1)[0]
    rows = C.attack_claims(far, **KW)
    assert {r["claim"]: r["verdict"] for r in rows}[
        "clean accuracy: joint (alpha=10) within ±2 points of alpha=0"] == "no"


def test_dose_claims_are_not_by_construction():
    rows = C.dose_claims({1.0: _pair(0.2), 0.5: _pair(0.1, seed=1), 0.0: _pair(0.0, seed=2)}, **KW)
    assert [r["verdict"] for r in rows] == ["yes", "yes", "inconclusive", "yes"]
    assert not any(r["by_construction"] for r in rows)
    flat = C.dose_claims({1.0: _pair(0.1), 0.0: _pair(0.1, seed=2)}, **KW)
    assert flat[-1]["verdict"] == "inconclusive"
    assert C.dose_claims({1.0: _pair(0.1), 0.0: None}, **KW)[-1]["verdict"] == "inconclusive"
    assert C.dose_claims({1.0: _pair(0.1)}, **KW)[-1]["verdict"] == "inconclusive"


def test_rows_carry_every_field_of_the_report_hook():
    rows = C.dose_claims({1.0: _pair(0.2), 0.0: None}, **KW)
    for r in rows:
        assert {"claim", "section", "verdict", "effect", "low", "high", "test", "n",
                "by_construction"} <= set(r)
        assert r["verdict"] in ("yes", "no", "inconclusive")
