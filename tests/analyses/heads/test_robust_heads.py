"""Robust heads on cached features: sample-weighted LinearHead, the J_M loss of mixed MAT,
the voted parallel-MAT heads, and ``featlab fit-head --train-on/--recipe/--strengths`` end to
end on a tiny extracted store (the random walk and the voting: tests/mat/test_mat.py)."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression

from featlab.heads.linear import LinearHead
from featlab.analyses.heads.robust import VotedHeads, fit_multiset, half_and_half, row_weights
from featlab.analyses.heads.robust_data import HeadData, carve_validation
from featlab.errors import FeatlabError
from featlab.store.heads import list_heads, load_head


def blobs(n=240, p=10, C=4, seed=0, shift=None):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    centres = np.random.default_rng(99).normal(size=(C, p)) * 1.5
    X = rng.normal(size=(n, p)) + centres[y] + 2.0
    if shift is not None:  # an "attack": push every row toward the next class
        X = X + shift * (centres[(y + 1) % C] - centres[y])
    return X, y


# -- sample weights and the J_M objective ---------------------------------------------------
def test_integer_weights_equal_repeated_rows():
    X, y = blobs()
    w = np.random.default_rng(1).integers(1, 4, len(y))
    weighted = LinearHead(l2=1e-3, tol=1e-10).fit(X, y, sample_weight=w)
    repeated = LinearHead(l2=1e-3, tol=1e-10).fit(np.repeat(X, w, 0), np.repeat(y, w))
    assert np.allclose(weighted.mean_, repeated.mean_) and np.allclose(weighted.scale_,
                                                                       repeated.scale_)
    assert np.abs(weighted.coef_ - repeated.coef_).max() < 1e-6
    assert weighted.objective(X, y, w) == pytest.approx(
        repeated.objective(np.repeat(X, w, 0), np.repeat(y, w)), rel=1e-9)


def test_weighted_head_matches_sklearn_sample_weight():
    X, y = blobs(seed=2)
    w = np.random.default_rng(3).uniform(0.2, 3.0, len(y))
    lam = 1e-3
    head = LinearHead(l2=lam, tol=1e-10).fit(X, y, sample_weight=w)
    Xs = (X - head.mean_) / head.scale_  # weighted standardization
    mean = (w @ X) / w.sum()
    assert np.allclose(head.mean_, mean)
    assert np.allclose(head.scale_, np.sqrt((w @ (X - mean) ** 2) / w.sum()))
    sk = LogisticRegression(C=1 / (2 * lam * w.sum()), tol=1e-12, max_iter=20000)
    sk.fit(Xs, y, sample_weight=w)
    assert np.abs(head.coef_std_ - sk.coef_).max() < 1e-4 * max(1, np.abs(sk.coef_).max())


def _direct_loss(W, b, sets, mean, scale, lam, weights=None):
    """J_M as the paper writes it: a sum over the clean set and every strength's set."""
    total, n = 0.0, 0
    for k, (X, y) in enumerate(sets):
        A = ((X - mean) / scale) @ W.T + b
        ce = torch.logsumexp(A, 1) - A[torch.arange(len(y)), torch.as_tensor(y)]
        total = total + (ce.sum() if weights is None else weights[k] * ce.mean())
        n += len(y)
    data = total / n if weights is None else total / sum(weights)
    return data + lam * (W ** 2).sum()


def test_mat_mixed_minimises_J_M_as_a_direct_sum():
    clean = blobs(seed=4)
    sets = [clean] + [(blobs(seed=4, shift=s)[0], clean[1]) for s in (0.1, 0.2, 0.3)]
    lam = 1e-3
    head = fit_multiset(sets, l2=lam, tol=1e-10, n_classes=4)
    X = np.concatenate([x for x, _ in sets])
    mean, scale = X.mean(0), X.std(0)
    assert np.allclose(head.mean_, mean) and np.allclose(head.scale_, scale)
    W = torch.tensor(head.coef_std_, requires_grad=True)
    b = torch.tensor(head.intercept_std_, requires_grad=True)
    J = _direct_loss(W, b, [(torch.tensor(x), t) for x, t in sets], torch.tensor(mean),
                     torch.tensor(scale), lam)
    y = np.concatenate([t for _, t in sets])
    assert float(J.detach()) == pytest.approx(head.objective(X, y), rel=1e-10)
    J.backward()  # the fitted head is the minimiser of the direct sum
    assert max(W.grad.abs().max(), b.grad.abs().max()) < 1e-8
    # by hand: per-set sums of cross-entropies, added, divided by N_C + S N_A
    lse = logsumexp(head.decision_function(X), axis=1)
    by_set = np.split(lse - head.decision_function(X)[np.arange(len(y)), y], 4)
    assert sum(s.sum() for s in by_set) / len(y) == pytest.approx(
        float(J.detach()) - lam * (head.coef_std_ ** 2).sum(), rel=1e-10)


def test_shares_give_each_set_its_fraction_of_the_loss():
    clean = blobs(n=200, seed=5)
    adv = [(blobs(n=200, seed=5, shift=s)[0][:100], clean[1][:100]) for s in (0.2, 0.4)]
    sets = [clean] + adv
    shares = half_and_half(["clean", "a", "b"])
    assert shares == [0.5, 0.25, 0.25]
    w = row_weights([200, 100, 100], shares)
    assert w[:200].sum() == pytest.approx(0.5) and w[200:300].sum() == pytest.approx(0.25)
    head = fit_multiset(sets, shares=shares, l2=1e-3, tol=1e-10)
    X = np.concatenate([x for x, _ in sets])
    assert np.allclose(head.mean_, w @ X / w.sum())
    assert np.allclose(head.mean_, sum(a * x.mean(0) for a, (x, _) in zip(shares, sets)))
    W = torch.tensor(head.coef_std_, requires_grad=True)
    b = torch.tensor(head.intercept_std_, requires_grad=True)
    J = _direct_loss(W, b, [(torch.tensor(x), t) for x, t in sets], torch.tensor(head.mean_),
                     torch.tensor(head.scale_), 1e-3, weights=shares)
    J.backward()
    assert max(W.grad.abs().max(), b.grad.abs().max()) < 1e-8


def test_adversarial_retraining_is_more_robust_on_constructed_attacks():
    (X, y), (_, yt) = blobs(n=600, seed=6), blobs(n=600, seed=7)
    X_adv, Xt_adv = blobs(n=600, seed=6, shift=0.45)[0], blobs(n=600, seed=7, shift=0.45)[0]
    plain = LinearHead(l2=1e-3).fit(X, y)
    adv = fit_multiset([(X, y), (X_adv, y)], shares=(1, 1), l2=1e-3)
    assert adv.score(Xt_adv, yt) > plain.score(Xt_adv, yt) + 0.05


# -- parallel MAT voting (the coefficients themselves: tests/mat/test_mat.py) ------------------
def test_voted_heads_predict_the_weighted_mixture():
    X, y = blobs(seed=8)
    h1, h2 = LinearHead(l2=1e-2).fit(X, y), LinearHead(l2=1.0).fit(X, y)
    voted = VotedHeads([h1, h2], [0.3, 0.7])
    assert np.allclose(voted.predict_proba(X), 0.3 * h1.predict_proba(X) + 0.7 *
                       h2.predict_proba(X))
    with pytest.raises(FeatlabError, match="summing to 1"):
        VotedHeads([h1, h2], [0.5, 0.6])


# -- validation split -----------------------------------------------------------------------
def test_validation_split_is_stratified_disjoint_and_seeded():
    ids = np.arange(100, 200)
    y = np.repeat(np.arange(4), 25)
    fit, val = carve_validation(ids, y, 0.2, seed=1)
    assert len(np.intersect1d(fit, val)) == 0 and np.array_equal(np.union1d(fit, val), ids)
    assert all(np.sum(np.isin(val, ids[y == c])) == 5 for c in range(4))
    assert np.array_equal(carve_validation(ids, y, 0.2, seed=1)[1], val)
    assert not np.array_equal(carve_validation(ids, y, 0.2, seed=2)[1], val)
    with pytest.raises(FeatlabError, match="val_fraction"):
        carve_validation(ids, y, 1.5)


# -- end to end on a tiny extracted store ---------------------------------------------------
EPS = ("0.01", "0.03", "0.1")
FGSM = "fgsm:eps={}:target=fg"


@pytest.fixture(scope="module")
def attacked(tmp_path_factory, tiny_weights):
    from featlab.analyses.heads.run import fit_head
    from featlab.data.synthetic import generate_synthetic
    from featlab.extraction import ExtractionSpec, extract
    from featlab.store import FeatureStore

    base = tmp_path_factory.mktemp("robust")
    root = str(base / "data")
    generate_synthetic(root, seed=3, n_images=48, image_size=32, n_supercategories=2,
                       classes_per_supercategory=2)

    def run(conditions):
        extract(ExtractionSpec(store=str(base / "store"), root=root, dataset="synthetic",
                               conditions=conditions, device="cpu", batch_size=48,
                               chunk_size=48, image_size=32, weights=tiny_weights))

    run("clean")
    fit_head(FeatureStore(str(base / "store")), alphas=(0.0,))
    run(FGSM.format(":".join(EPS)))
    return base, FeatureStore(str(base / "store"))


def _cli(args):
    from featlab.cli.main import cli

    return CliRunner().invoke(cli, args, catch_exceptions=False)


# a 128-channel BN layer (256-d joint features) keeps the dozen head fits cheap; the
# attacks are crafted on the penultimate heads, every layer's features are stored with them
LAYER = "layer2.1.bn2"
ROBUST_ARGS = ["--alpha", "0", "--alpha", "10", "--layer", LAYER, "--train-on",
               "clean," + FGSM.format("0.1"), "--recipe", "mat-mixed,mat-parallel",
               "--strengths", "auto", "--walks", "40", "--walk-steps", "2"]


@pytest.fixture(scope="module")
def cli_run(attacked):
    base, store = attacked
    out = base / "cli-out"
    res = _cli(["fit-head", "--store", store.path, *ROBUST_ARGS, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out, res.output, json.loads((out / "fit-head-all.json").read_text())


def test_cli_fits_scores_and_saves_the_robust_heads(attacked, cli_run):
    base, store = attacked
    out, output, result = cli_run
    assert "crafted against head fg-all" in output and "mat-parallel voting" in output
    adv = result["robust"]["adv"]
    key = store.resolve_condition(FGSM.format("0.1"))
    assert adv["training_conditions"] == ["clean", key] and adv["shares"] == [0.5, 0.5]
    assert adv["crafted_against"] == [dict(
        condition=key, target="fg", head="fg-all", head_alpha=None, eps_space="pixel",
        head_training_conditions=["clean"])]
    sel = result["robust"]["strengths"]["selection"]
    assert np.array(sel["A"]).shape == (3, 4) and sel["rows"] == [0.01, 0.03, 0.1]
    assert sel["candidates"] and all("G" in c and "strengths" in c for c in sel["candidates"])
    assert result["robust"]["strengths"]["chosen"] == sel["strengths"]
    weights = result["robust"]["mat-parallel"]["voting_weights"]
    assert min(weights) >= 0 and sum(weights) == pytest.approx(1.0)
    heads = {(r["head"], r["alpha"]) for r in result["rows"]}
    assert {("adv", None), ("mat-mixed", None), ("mat-parallel", None), ("joint", 10.0),
            ("fg", None)} <= heads
    assert len(result["rows"]) == 4 * len(heads)  # every head on clean + the three eps
    table = {(r["head"], r["alpha"]) for r in result["range"]["table"]}
    assert table == heads and result["range"]["strengths"] == [0.0, 0.01, 0.03, 0.1]
    for stem in ("robust-all", "strengths-A-all"):
        assert (out / f"{stem}.png").stat().st_size > 0 and (out / f"{stem}.pdf").is_file()
    saved = list_heads(store.path)
    assert {"adv-joint-all", "mat-mixed-joint-all"} <= set(saved)
    _, attrs = load_head(store.path, "adv-joint-all")
    assert attrs["training_conditions"] == ["clean", key]
    assert attrs["crafted_against"][0]["head"] == "fg-all"
    members = [n for n in saved if n.startswith("mat-parallel-joint-all-eps=")]
    assert sum(load_head(store.path, n)[1]["voting_weight"] for n in members) == pytest.approx(1.0)


def test_python_api_equals_the_cli(attacked, cli_run):
    import featlab

    _, store = attacked
    api = featlab.fit_head(store, alphas=(0, 10), layer=LAYER, train_on="clean," +
                           FGSM.format("0.1"), recipe="mat-mixed,mat-parallel", strengths="auto",
                           walks=40, walk_steps=2, save=False)
    cli = cli_run[2]
    assert json.loads(json.dumps(api["rows"])) == cli["rows"]
    assert json.loads(json.dumps(api["robust"])) == cli["robust"]


class _TrainOnly:
    """A store that refuses to read anything but the train split."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        attr = getattr(self._store, name)
        if name in ("read", "read_array", "valid", "labels"):
            def guarded(*args, **kw):
                assert kw.get("split") == "train", f"{name} read split {kw.get('split')!r}"
                return attr(*args, **kw)
            return guarded
        return attr


def test_attacked_features_enter_training_through_train_rows_only(attacked):
    from featlab.analyses.heads.robust_run import fit_robust_heads, plan_robust

    _, store = attacked
    fg, bg = store.backbones
    guarded = _TrainOnly(store)
    plan = plan_robust(guarded, train_on="clean," + FGSM.format("0.1"), recipe="mat-mixed",
                       strengths="0.03,0.1")
    robust = fit_robust_heads(guarded, plan, fg=fg, bg=bg, layer=LAYER, subset="all",
                              classes=store.classes(), head_kw=dict(n_classes=4, l2=1e-4))
    # the retrained head is exactly a head fitted on the train rows read independently
    key = store.resolve_condition(FGSM.format("0.1"))
    sets = []
    for cond in ("clean", key):
        x = np.hstack([store.read(backbone=b, layer=LAYER, condition=cond, split="train")
                       for b in (fg, bg)])
        sets.append((x, store.labels(split="train")))
    direct = fit_multiset(sets, shares=(0.5, 0.5), n_classes=4, l2=1e-4)
    assert np.array_equal(robust["models"]["adv"].coef_, direct.coef_)
    assert robust["info"]["adv"]["n_rows"] == [int((store.samples.split == "train").sum())] * 2


def test_validation_rows_are_train_rows_never_test_rows(attacked):
    _, store = attacked
    fg, bg = store.backbones
    data = HeadData(store, fg=fg, bg=bg, val_fraction=0.25, seed=0)
    train, test = store.rows("train"), store.rows("test")
    assert np.isin(data.val_ids, train).all() and not np.isin(data.val_ids, test).any()
    assert np.array_equal(np.union1d(data.fit_ids, data.val_ids), train)
    (x, y), = data.sets(["clean"], "val")
    assert len(y) == len(data.val_ids)
    with pytest.raises(ValueError, match="part"):
        data.sets(["clean"], "test")


@pytest.mark.parametrize("args, message", [
    (["--strengths", "0.1"], "--strengths applies to --recipe"),
    (["--recipe", "mat-mixed", "--strengths", "0.2"], "not stored for fgsm"),
    (["--recipe", "mat-bogus"], "unknown head recipe 'mat-bogus'; known: mat-mixed, mat-parallel"),
    (["--train-on", "clean,fgsm:eps=0.5:target=fg"], "is not in store"),
    (["--recipe", "mat-mixed", "--attack", "blur:sigma=2"], "no stored conditions of family"),
    (["--recipe", "mat-mixed", "--walk-penalty", "nan"], "--walk-penalty=nan"),
    (["--recipe", "mat-mixed", "--walk-steps", "-3"], "--walk-steps=-3"),
])
def test_user_mistakes_are_one_line(attacked, args, message):
    _, store = attacked
    res = CliRunner().invoke(__import__("featlab.cli.main", fromlist=["cli"]).cli,
                             ["fit-head", "--store", store.path, *args])
    assert res.exit_code == 2 and message in res.output
    assert len(res.output.strip().splitlines()) == 1
