"""Head identity and stale conditions, the alpha scale, head_subset with
white-box / transfer labels, and analyses that skip or refuse probe conditions."""
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from featlab.analyses.heads.run import fit_head
from featlab.errors import FeatlabError
from featlab.extraction import ExtractionSpec, extract
from featlab.store import FeatureStore
from featlab.store.heads import current_digest, head_digest, load_head

ATTACKS = ("fgsm:eps=0.05:target=joint,pgd:eps=0.05:steps=2:target=joint,"
           "fgsm:eps=0.05:target=fg:head_subset=similar")
PROBE = "isotropy:radius=1:copies=3:samples=2:threshold=0"


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_weights):
    """A store with clean features, heads of subsets all and similar, three attacks and a
    probe set made against them; ``copy()`` gives a private copy to refit."""
    from featlab.data.synthetic import generate_synthetic

    base = tmp_path_factory.mktemp("trust")
    root = str(base / "data")
    generate_synthetic(root, seed=2, n_images=32, image_size=32, n_supercategories=2,
                       classes_per_supercategory=2)

    def run(conditions, store):
        return extract(ExtractionSpec(store=store, root=root, dataset="synthetic",
                                      conditions=conditions, device="cpu", batch_size=32,
                                      chunk_size=32, image_size=32, weights=tiny_weights))

    path = str(base / "store")
    run("clean", path)
    fit_head(FeatureStore(path), alphas=(0.0,))
    fit_head(FeatureStore(path), alphas=(0.0,), subset="similar")
    run(f"{ATTACKS},{PROBE}", path)
    counter = iter(range(100))

    def copy():
        dest = str(base / f"copy{next(counter)}")
        shutil.copytree(path, dest)
        return dest

    return path, run, copy


def _key(store, text):
    return store.resolve_condition(text)


def _rows(result, condition):
    return [r for r in result["rows"] if r["condition"] == condition]


# ---------------------------------------------------------------- 1. head identity
def test_conditions_record_the_digest_of_their_heads(made):
    path, _, _ = made
    store = FeatureStore(path)
    info = store.condition_info("fgsm:eps=0.05:target=joint")
    assert info["heads"] == {"joint-all-alpha=0": current_digest(path, "joint-all-alpha=0")}
    probe = store.condition_info(_key(store, PROBE))
    assert set(probe["heads"]) == {"fg-all", "bg-all", "joint-all-alpha=0"}
    arrays, attrs = load_head(path, "fg-all")
    assert head_digest(arrays, attrs) == probe["heads"]["fg-all"]
    arrays["coef"][0, 0] += 1e-6  # any change of content changes the digest
    assert head_digest(arrays, attrs) != probe["heads"]["fg-all"]


def test_refit_with_other_l2_labels_attacks_and_probes_stale(made):
    from featlab.analyses.local.run import isotropy, lipschitz
    from featlab.analyses.robustness.run import robustness
    from featlab.analyses.shift.run import pca_shift

    path = made[2]()
    store = FeatureStore(path)
    same = fit_head(store, alphas=(0.0,))  # identical refit: same bytes, same digests
    assert not any(same["stale"].values()) and not any(r["stale"] for r in same["rows"])
    changed = fit_head(store, alphas=(0.0,), l2=0.5)
    joint = [_key(store, c) for c in ("fgsm:eps=0.05:target=joint",
                                      "pgd:eps=0.05:steps=2:target=joint")]
    for key in joint:
        assert changed["stale"][key] is True and changed["attacks"][key]["stale"] is True
        assert all(r["stale"] is True for r in _rows(changed, key))
    assert changed["stale"]["clean"] is False
    assert changed["stale"][_key(store, "fgsm:eps=0.05:target=fg:head_subset=similar")] is False
    assert all(r["stale"] is True for r in isotropy(store)["rows"])
    assert all(r["stale"] is True for r in lipschitz(store)["samples"])
    table = robustness(store)
    assert table["stale"][joint[0]] is True and table["stale"]["clean"] is False
    assert table["rows"][0]["scores"][joint[0]]["stale"] is True
    assert pca_shift(store, condition=joint[0], k=2, permutations=9)["stale"] is True
    subset_key = _key(store, "fgsm:eps=0.05:target=fg:head_subset=similar")
    assert pca_shift(store, condition=subset_key, k=2, permutations=9)["stale"] is False
    status = FeatureStore(path).info()["conditions"]
    assert status[joint[0]] == "complete; stale (head joint-all-alpha=0 refit since)"
    assert status["clean"] == "complete"
    back = fit_head(store, alphas=(0.0,))  # the old settings make them current again
    assert not any(back["stale"].values())


def test_unsaved_refit_is_judged_against_the_heads_it_fits(made):
    path = made[0]
    store = FeatureStore(path)
    result = fit_head(store, alphas=(0.0,), l2=0.5, save=False)
    assert result["stale"][_key(store, "fgsm:eps=0.05:target=joint")] is True
    assert not any(fit_head(FeatureStore(path), alphas=(0.0,), save=False)["stale"].values())


def test_robust_heads_trained_on_stale_attacks_say_so(made):
    """--train-on an attack crafted against a head refit since: the adversarially retrained
    head records which of its training conditions are stale (JSON and the saved head)."""
    path = made[2]()
    store = FeatureStore(path)
    attack = _key(store, "fgsm:eps=0.05:target=joint")
    current = fit_head(store, alphas=(0.0,), train_on=f"clean,{attack}")
    assert current["robust"]["trained_on_stale"] == []
    fit_head(store, alphas=(0.0,), l2=0.5)  # the attacked head changes
    stale = fit_head(store, alphas=(0.5,), train_on=f"clean,{attack}")
    assert stale["robust"]["trained_on_stale"] == [attack]
    robust = [n for n in stale["heads"] if n.startswith("adv")]
    assert robust and load_head(path, robust[0])[1]["trained_on_stale"] == [attack]


def test_extract_refuses_to_extend_a_stale_condition(made):
    _, run, copy = made
    path = copy()
    fit_head(FeatureStore(path), alphas=(0.0,), l2=0.5)
    with pytest.raises(FeatlabError, match="stale: delete"):
        run("clean,fgsm:eps=0.05:target=joint", path)
    run("clean,fgsm:eps=0.05:target=fg:head_subset=similar", path)  # untouched heads: fine


# ---------------------------------------------------------------- 6. alpha scale
def _summed_gradient(store, name, alpha):
    """Gradient, over N, of the paper's objective (Section 3.4: summed cross-entropy +
    alpha |theta_fg|^2, plus the head's ridge N * l2 |theta|^2) at the saved head, in the
    standardized space the penalty acts on."""
    from featlab.analyses.inputs import block

    arrays, attrs = load_head(store.path, name)
    (x_fg, x_bg), y, _ = block(store, attrs["inputs"], split="train")
    X = np.hstack([x_fg, x_bg]).astype(np.float64)
    coef, coef_std = arrays["coef"].astype(np.float64), arrays["coef_std"].astype(np.float64)
    logits = X @ coef.T + arrays["intercept"]
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    xs = (X - arrays["mean"]) / arrays["scale"]
    mask = np.arange(X.shape[1]) < x_fg.shape[1]
    n = len(y)
    grad = p.T @ xs + 2 * alpha * mask * coef_std + 2 * n * attrs["l2"] * coef_std
    return np.abs(grad / n).max(), n


def test_alpha_is_the_papers_summed_loss_penalty_by_default(made):
    _, _, copy = made
    store = FeatureStore(copy())
    result = fit_head(store, alphas=(0.0, 10.0))
    n = result["n_train"]
    assert result["alphas"] == [0.0, 10.0] and result["alpha_scale"] == "sum"
    assert result["alphas_mean"] == [0.0, 10.0 / n] and result["alpha_scale_given"] == "sum"
    # the saved head is the optimum of the paper's objective with alpha = 10 (not 10 * N)
    residual, n = _summed_gradient(store, "joint-all-alpha=10", 10.0)
    assert residual < 1e-4, residual
    assert _summed_gradient(store, "joint-all-alpha=10", 10.0 * n)[0] > 100 * residual
    attrs = load_head(store.path, "joint-all-alpha=10")[1]
    assert (attrs["alpha"], attrs["alpha_scale"], attrs["alpha_mean"]) == (10.0, "sum", 10.0 / n)
    assert "alpha_scale" not in load_head(store.path, "joint-all-alpha=0")[1]  # 0 on any scale
    weights = {w["alpha"]: w for w in result["weights"]}
    assert set(weights) == {0.0, 10.0}
    coef = load_head(store.path, "joint-all-alpha=10")[0]["coef"]
    n_fg = coef.shape[1] // 2  # both backbones give 512 features
    assert weights[10.0]["fg_raw"] == pytest.approx(np.abs(coef[:, :n_fg]).mean(), rel=1e-5)
    assert weights[10.0]["bg_raw"] == pytest.approx(np.abs(coef[:, n_fg:]).mean(), rel=1e-5)
    assert {r["alpha"] for r in result["rows"] if r["head"] == "joint"} == {0.0, 10.0}


def test_mean_scale_is_an_option_naming_the_same_head_by_the_papers_alpha(made):
    store = FeatureStore(made[0])
    paper = fit_head(store, alphas=(12.0,), save=False)
    n = paper["n_train"]
    mean = fit_head(store, alphas=(12.0 / n,), alpha_scale="mean", save=False)
    assert mean["alphas"] == paper["alphas"] == [12.0] and mean["alpha_scale"] == "sum"
    assert mean["alphas_given"] == [12.0 / n] and mean["alpha_scale_given"] == "mean"
    assert "joint-all-alpha=12" in mean["heads"]
    assert mean["weights"] == paper["weights"]  # the same heads, weight for weight
    assert [r["accuracy"] for r in mean["rows"]] == [r["accuracy"] for r in paper["rows"]]
    with pytest.raises(FeatlabError, match="alpha-scale"):
        fit_head(store, alpha_scale="total", save=False)


def test_a_mean_scale_head_of_an_older_store_loads_and_goes_stale_on_refit(made, caplog):
    """A head saved with alpha on the mean scale (no alpha_scale attribute): readable, its
    paper alpha is alpha * n_train, a note says to refit; an attack on it reads stale once
    the paper-scale fit replaces it."""
    from featlab.store.heads import paper_alpha, save_heads

    _, run, copy = made
    path = copy()
    arrays, attrs = load_head(path, "joint-all-alpha=0")
    save_heads(path, {"joint-all-alpha=10": (arrays, dict(attrs, alpha=10.0))})
    run("fgsm:eps=0.05:target=joint:head_alpha=10", path)
    with caplog.at_level("WARNING"):
        old = load_head(path, "joint-all-alpha=10")[1]
    assert paper_alpha(old) == 10.0 * old["n_train"]
    assert "mean scale" in caplog.text and "refit it: featlab fit-head" in caplog.text
    store = FeatureStore(path)
    key = _key(store, "fgsm:eps=0.05:target=joint:head_alpha=10")
    assert fit_head(store, alphas=(10.0 * old["n_train"],))["stale"][key] is False
    assert fit_head(store, alphas=(10.0,))["stale"][key] is True


def test_alpha_help_states_the_scale():
    from featlab.cli.main import cli as main

    out = " ".join(CliRunner().invoke(main, ["fit-head", "--help"]).output.split())
    assert "--alpha-scale [sum|mean]" in out and "paper's scale" in out
    assert "SUMMED over the N training images" in out


# ---------------------------------------------------------------- 7. white-box / transfer
def test_rows_are_white_box_only_for_the_attacked_head(made):
    store = FeatureStore(made[0])
    every = fit_head(store, alphas=(0.0, 1.0), save=False)
    joint = _key(store, "fgsm:eps=0.05:target=joint")
    threats = {(r["head"], r["alpha"]): r["threat"] for r in _rows(every, joint)}
    assert threats == {("fg", None): "transfer", ("bg", None): "transfer",
                       ("joint", 0.0): "white-box", ("joint", 1.0): "transfer"}
    assert {r["threat"] for r in _rows(every, "clean")} == {None}
    subset_key = _key(store, "fgsm:eps=0.05:target=fg:head_subset=similar")
    assert {r["threat"] for r in _rows(every, subset_key)} == {"transfer"}
    similar = fit_head(store, alphas=(0.0,), subset="similar", save=False)
    threats = {r["head"]: r["threat"] for r in _rows(similar, subset_key)}
    assert threats == {"fg": "white-box", "bg": "transfer", "joint": "transfer"}
    assert {r["threat"] for r in _rows(similar, joint)} == {"transfer"}


def test_subset_attack_targets_the_subset_head(made):
    store = FeatureStore(made[0])
    key = _key(store, "fgsm:eps=0.05:target=fg:head_subset=similar")
    assert key == "fgsm:eps=0.05:eps_space=pixel:target=fg:surrogate=:head_alpha=0:" \
                  "head_subset=similar"
    assert store.condition_info(key)["head"] == "fg-similar"
    # the default stays out of the key: stores made before head_subset keep their names
    assert _key(store, "fgsm:eps=0.05:target=joint:head_subset=all") == \
        "fgsm:eps=0.05:eps_space=pixel:target=joint:surrogate=:head_alpha=0"
    rows = store.rows("test", "similar")
    pred = store.read_array("attack/prediction", key)[rows]
    classes = [store.samples.classes.index(c) for c in store.classes("similar")]
    assert np.isin(pred, classes).all()  # the subset head only ever predicts its classes


def test_missing_subset_head_names_the_fit_command(made):
    _, run, copy = made
    with pytest.raises(FeatlabError, match="no head 'fg-dissimilar'.*--subset dissimilar"):
        run("fgsm:eps=0.05:target=fg:head_subset=dissimilar", copy())


# ---------------------------------------------------------------- 10. probe conditions
def test_analyses_skip_or_refuse_probe_conditions(made):
    from featlab.analyses.shift.run import pca_shift

    store = FeatureStore(made[0])
    probe = _key(store, PROBE)
    result = fit_head(store, alphas=(0.0,), conditions=["clean", PROBE], save=False)
    assert result["skipped"] == [probe] and {r["condition"] for r in result["rows"]} == {"clean"}
    with pytest.raises(FeatlabError, match="probe set"):
        pca_shift(store, condition=PROBE)


def test_cli_prints_labels_and_one_line_for_a_probe(made):
    from featlab.cli.main import cli as main

    path = made[2]()
    runner = CliRunner()
    out = runner.invoke(main, ["fit-head", "--store", path, "--l2", "0.5", "--out",
                               path + "/out"])
    assert out.exit_code == 0, out.output
    assert "fgsm:eps=0.05:eps_space=pixel:target=joint:surrogate=:head_alpha=0: white-box " \
           "for joint(alpha=0); transfer for the others [STALE" in out.output
    bad = runner.invoke(main, ["pca-shift", "--store", path, "--condition", PROBE])
    assert bad.exit_code == 2 and "probe set" in bad.output and "Traceback" not in bad.output


# ---------------------------------------------------------------- refused runs, mixed fits
def test_refused_probe_extract_writes_nothing_and_later_refits_are_stale(made):
    import json
    import os

    from featlab.conditions import parse_condition
    from featlab.store.layout import condition_dir

    _, run, copy = made
    path = copy()
    shutil.rmtree(os.path.join(path, "heads"))
    probe = "isotropy:radius=2:copies=3:samples=2:threshold=0"
    key = parse_condition(probe)[0].key
    before = sorted(os.listdir(os.path.join(path, "conditions")))
    with pytest.raises(FeatlabError, match="select images with the head fg-all"):
        run(probe, path)
    assert sorted(os.listdir(os.path.join(path, "conditions"))) == before
    # a record naming no heads, as such a refusal used to leave, is rewritten by the next run
    os.makedirs(condition_dir(path, key))
    with open(os.path.join(condition_dir(path, key), "condition.json"), "w") as handle:
        json.dump(dict(key=key, name="isotropy", params=parse_condition(probe)[0].params,
                       heads={}), handle)
    fit_head(FeatureStore(path), alphas=(0.0,))
    run(probe, path)
    assert set(FeatureStore(path).condition_info(key)["heads"]) == \
        {"fg-all", "bg-all", "joint-all-alpha=0"}
    refit = fit_head(FeatureStore(path), alphas=(0.0,), l2=0.5, conditions=["clean"])
    assert refit["stale"] == {"clean": False}
    assert FeatureStore(path).info()["conditions"][key] == \
        "complete; stale (head bg-all, fg-all, joint-all-alpha=0 refit since)"


def _mix(path):
    from featlab.store.integrity import check_store

    return [p["problem"] for p in check_store(path, full=True)["problems"]
            if p["file"] == "heads/"]


def test_heads_of_a_stopped_fit_are_flagged_until_refit(made, monkeypatch, caplog):
    """A fit-head run killed between head files leaves one new head beside the older run's
    and an unfinished temporary file: verify, info and robustness name the mix; rerunning the
    command removes the file and the mix. Fits of other alphas with the same settings do not
    mix; other settings do."""
    import os

    from featlab.analyses.robustness.run import robustness
    from featlab.store import heads as store_heads
    from featlab.store.integrity import check_store

    path = made[2]()
    real, calls = store_heads.write_h5, []

    def stopped(target, fill, **kw):
        calls.append(target)
        if len(calls) == 2:  # the process dies while writing the second head file
            with open(os.path.join(os.path.dirname(target), ".tmp-x" +
                                   os.path.basename(target)), "wb") as handle:
                handle.write(b"part of a head")
            raise KeyboardInterrupt
        return real(target, fill, **kw)

    monkeypatch.setattr(store_heads, "write_h5", stopped)
    with pytest.raises(KeyboardInterrupt):
        fit_head(FeatureStore(path), alphas=(0.0,), l2=0.5)
    monkeypatch.undo()
    assert _mix(path) == [
        "heads of different fit-head runs are mixed (a run stopped between head files, or "
        "refit some heads with other settings): bg-all, joint-all-alpha=0 were saved with "
        "fg-all as it no longer is; fg-all was saved with bg-all, joint-all-alpha=0 as they "
        "no longer are"]
    result = check_store(path, full=True)
    assert result["status"] == "DAMAGED" and result["checked"]["unfinished"] == 1
    assert any(p["file"] == "heads/" for p in FeatureStore(path).info()["problems"])
    table = robustness(FeatureStore(path), n_boot=100)
    assert table["mixed_heads"] == ["bg-all", "fg-all", "joint-all-alpha=0"]
    assert all(row["mixed"] for row in table["rows"])
    assert "heads of different fit-head runs are mixed" in caplog.text
    fit_head(FeatureStore(path), alphas=(0.0,), l2=0.5)  # the same command again
    assert _mix(path) == [] and check_store(path, full=True)["checked"]["unfinished"] == 0
    assert not robustness(FeatureStore(path), n_boot=100)["mixed_heads"]
    fit_head(FeatureStore(path), alphas=(1.0,), l2=0.5)
    assert _mix(path) == []
    fit_head(FeatureStore(path), alphas=(1.0,), l2=0.25)
    assert _mix(path) == [
        "heads of different fit-head runs are mixed (a run stopped between head files, or "
        "refit some heads with other settings): joint-all-alpha=0 was saved with bg-all, "
        "fg-all as they no longer are"]
