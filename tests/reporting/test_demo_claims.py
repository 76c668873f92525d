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


def test_a_null_effect_is_no_a_large_gain_yes_a_small_sample_inconclusive():
    """Every gain claim carries a 1-point margin: identical heads give [0, 0] -> no at any n;
    equal accuracy with different errors -> no once n pins the difference inside ±0.01."""
    joint, fg = _pair(0.0, n=2000)
    same = C.paired("1", "t", joint, fg, **KW)
    assert (same["low"], same["high"], same["margin"], same["verdict"]) == (0, 0, 0.01, "no")
    assert C.paired("1", "t", *_pair(0.0, n=40), **KW)["verdict"] == "no"
    joint, fg = _pair(0.0, n=4000)
    joint[np.flatnonzero(fg)[:100]] = False  # 100 images lost and 100 won: effect 0
    joint[np.flatnonzero(~fg)[:100]] = True
    balanced = C.paired("1", "t", joint, fg, **KW)
    assert balanced["effect"] == 0 and -0.01 < balanced["low"] < 0 < balanced["high"] < 0.01
    assert balanced["verdict"] == "no"
    large = C.paired("1", "t", *_pair(0.15), **KW)
    assert large["verdict"] == "yes" and large["margin"] == 0.01
    small = C.paired("1", "t", *_pair(0.05, n=40), **KW)  # +2 images of 40
    assert small["low"] <= 0 < 0.01 < small["high"] and small["verdict"] == "inconclusive"
    assert C.within("3", "t", *_pair(0.0), **KW)["margin"] == C.MARGIN == 0.02


def _split(n=400, p=10, C=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % C
    X = rng.normal(size=(n, p)) * np.geomspace(3.0, 0.3, p) + rng.normal(size=(C, p))[labels]
    train = np.arange(n) // C % 2 == 0
    return X[train], labels[train], X[~train], labels[~train]


def _comparison(object_step, scene_step, seed=0):
    """``pca_shift``'s comparison for an object and a scene backbone on the same images."""
    from featlab.analyses.shift.displacement import compare_shifts, pca_centroid_shift

    Xtr, ltr, Xte, lte = _split(seed=seed)
    jitter = 0.1 * np.random.default_rng(seed + 1).normal(size=Xte.shape)
    kw = dict(k=3, n_boot=300, return_boots=True)
    moved, still = (pca_centroid_shift(Xtr, ltr, Xte, Xte + step * np.eye(10)[0] + jitter,
                                       lte, **kw) for step in (object_step, scene_step))
    return dict(object="obj", scene="scn", **compare_shifts(moved, still),
                scene_shift=still["shift"], scene_low=still["low"], scene_high=still["high"],
                scene_stays=still["stays"])


def test_subspace_claims_object_moves_more_and_scene_stays():
    """Moves of 3 within-class SD along the first clean axis (inside the PCA plane)."""
    rows = C.subspace_claims(_comparison(9.0, 0.0))
    assert [r["verdict"] for r in rows] == ["yes", "yes"]
    assert all(r["margin"] == 0.5 and r["id"] == "2" for r in rows)
    assert rows[0]["low"] > 2 and "obj (object)" in rows[0]["claim"]
    assert [r["verdict"] for r in C.subspace_claims(_comparison(0.0, 0.0))] == ["no", "yes"]
    assert [r["verdict"] for r in C.subspace_claims(_comparison(9.0, 9.0))] == ["no", "no"]
    missing = C.subspace_claims(None)
    assert [r["verdict"] for r in missing] == ["inconclusive"] * 2
    assert all(r["margin"] == 0.5 for r in missing)


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
        "no"  # equal vectors: [0, 0] lies inside the 1-point margin
    assert C.overall(rows) == {"3": "yes", "3b": "no", "4": "yes"}
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
    assert [r["verdict"] for r in rows] == ["yes", "yes", "no", "yes"]  # gain 0: no
    # only the highest level's gain and the shrinkage decide: no gain at 0 is as predicted
    assert [r["decides"] for r in rows] == [True, False, False, True]
    assert C.overall(rows) == {"5": "yes"}
    null_top = C.dose_claims({1.0: _pair(0.0), 0.0: _pair(-0.2, seed=2)}, **KW)
    assert null_top[0]["verdict"] == "no" and C.overall(null_top) == {"5": "no"}
    assert not any(r["by_construction"] for r in rows)
    flat = C.dose_claims({1.0: _pair(0.1), 0.0: _pair(0.1, seed=2)}, **KW)
    assert flat[-1]["verdict"] == "inconclusive"
    assert C.dose_claims({1.0: _pair(0.1), 0.0: None}, **KW)[-1]["verdict"] == "inconclusive"
    assert C.dose_claims({1.0: _pair(0.1)}, **KW)[-1]["verdict"] == "inconclusive"


def test_rows_carry_every_field_of_the_report_hook():
    rows = C.dose_claims({1.0: _pair(0.2), 0.0: None}, **KW)
    for r in rows:
        assert {"claim", "section", "verdict", "effect", "low", "high", "margin", "test", "n",
                "by_construction", "decides"} <= set(r)
        assert r["verdict"] in ("yes", "no", "inconclusive")
