"""A third backbone end to end: a network from ``featlab train`` extracted beside the two
synthetic backbones, ``featlab fit-head --inputs`` over the three (a linear head), FGSM through all three with
``target=head:NAME`` (checked against FGSM written out in plain torch), probes selected by
that head, staleness after a refit, and ``featlab report`` on the store."""
import glob
import json
import os
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import one_error_line, run_cli as run
from featlab.analyses.heads.run import fit_head
from featlab.extraction.rebuild import rebuild
from featlab.store import FeatureStore
from featlab.store.heads import load_head, stale_heads

BATCH = 16
INPUTS = "synthetic-object,synthetic-scene,third"
HEAD = "linear-synthetic-object+synthetic-scene+third-all"  # the name fit-head --inputs gives
ATTACK = f"fgsm:eps=0.03:target=head:{HEAD}"
PROBE = "isotropy:radius=2:copies=3:samples=32:threshold={:.6f}:select=head:" + HEAD
DEFAULT_HEADS = ("fg-all", "bg-all", "joint-all-alpha=0")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def true_class_probability(store, name, split="test"):
    """Softmax of the stored linear head ``name`` on the clean features (numpy, float64) at
    each row's label, for the rows of ``split``."""
    arrays, attrs = load_head(store.path, name)
    x = np.concatenate([store.read(backbone=b, layer="penultimate", condition="clean",
                                   split=split).astype(np.float64) for b in attrs["inputs"]], 1)
    logits = x @ arrays["coef"].T.astype(np.float64) + arrays["intercept"]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return p[np.arange(len(x)), store.labels(split=split)]


def candidates(store, head, threshold):
    """Test rows (store row numbers) whose true-class probability under ``head`` reaches
    ``threshold``."""
    test = np.flatnonzero(store.samples.split == "test")
    return set(test[true_class_probability(store, head) >= threshold].tolist())


def telling_threshold(store):
    """A threshold (6 decimals) at which HEAD selects other test images than every default
    head does, so that a probe selecting with another head is seen."""
    for t in np.unique(np.floor(true_class_probability(store, HEAD) * 1e6) / 1e6):
        mine = candidates(store, HEAD, t)
        if all(candidates(store, h, t) != mine for h in DEFAULT_HEADS):
            return float(t)
    raise AssertionError("no threshold tells the heads apart on this data")


@pytest.fixture(scope="module")
def three(tmp_path_factory, tiny_weights):
    """(store path, extract args): synthetic-object, synthetic-scene and ``third`` (a
    ResNet-10 from ``featlab train``, 1 epoch), heads fg/bg/joint and HEAD from ``featlab
    fit-head --inputs`` (its result also under ``base/fit``), and FGSM crafted against HEAD
    through all three backbones."""
    from featlab.data.synthetic import generate_synthetic

    base = tmp_path_factory.mktemp("three")
    data = str(base / "data")
    generate_synthetic(data, seed=2, n_images=32, image_size=32, n_supercategories=2,
                       classes_per_supercategory=2)
    net = base / "third.pt"
    code, out = run("train", "--root", data, "--recipe", "standard", "--epochs", 1, "--arch",
                    "resnet10-w16", "--image-size", 32, "--batch-size", 16, "--device", "cpu",
                    "--out", net)
    assert code == 0, out
    store = str(base / "store")
    args = ["extract", "--root", data, "--store", store, "--image-size", 32, "--device", "cpu",
            "--batch-size", BATCH, "--chunk-size", BATCH,
            "--backbones", f"synthetic-object,synthetic-scene,third={net}",
            *[f"--weights={k}={v}" for k, v in tiny_weights.items()]]
    assert run(*args, "--conditions", "clean")[0] == 0
    fs = FeatureStore(store)
    fit_head(fs, alphas=(0.0,))
    code, out = run("fit-head", "--store", store, "--inputs", INPUTS, "--out", base / "fit")
    assert code == 0, out
    assert HEAD in out  # the printed accuracy table has the head's column
    threshold = telling_threshold(fs)
    code, out = run(*args, "--conditions", f"{ATTACK},{PROBE.format(threshold)}")
    assert code == 0, out
    return store, args, threshold


def reference_fgsm(store, head, eps, through=None):
    """FGSM in plain torch: the stored head's ``coef``/``intercept`` over the concatenated
    penultimate features of its inputs, the gradient of the batch-mean cross entropy of the
    true labels (only through the backbones in ``through``; all by default), ``x + eps *
    sign(grad)`` clipped to [0, 1], batch by batch as extracted; returns the features of every
    backbone of the store."""
    dataset, models = rebuild(store)
    if store.manifest["storage"].get("channels_last"):  # the extraction's arithmetic: a few
        # gradients of |g| ~ 1e-10 change sign between memory formats
        models = {n: m.to(memory_format=torch.channels_last) for n, m in models.items()}
    arrays, attrs = load_head(store.path, head)
    coef, intercept = (torch.from_numpy(arrays[k]) for k in ("coef", "intercept"))
    through = attrs["inputs"] if through is None else through
    out = {name: [] for name in models}
    n = len(store.samples)
    for start in range(0, n, BATCH):
        rows = list(range(start, min(start + BATCH, n)))
        x = torch.stack([torch.from_numpy(np.ascontiguousarray(dataset.load(i)[0],
                                                               dtype=np.float32))
                         for i in rows]).requires_grad_(True)
        y = torch.from_numpy(store.samples.label[rows].astype(np.int64))
        feats = [models[b].features(x if b in through else x.detach()) for b in attrs["inputs"]]
        loss = F.cross_entropy(torch.cat(feats, dim=1) @ coef.T + intercept, y)
        (grad,) = torch.autograd.grad(loss, x)
        adv = torch.clamp(x + eps * grad.sign(), 0, 1).detach()
        with torch.no_grad():
            for name, model in models.items():
                out[name].append(model.features(adv).numpy())
    return {name: np.concatenate(v) for name, v in out.items()}


def test_fgsm_through_three_backbones_equals_plain_torch_fgsm(three):
    store = FeatureStore(three[0])
    key = store.resolve_condition(ATTACK)
    info = store.condition_info(key)
    assert info["target"] == f"head:{HEAD}" and info["head"] == HEAD
    assert info["head_settings"]["inputs"] == ["synthetic-object", "synthetic-scene", "third"]
    reference = reference_fgsm(store, HEAD, 0.03)
    two_only = reference_fgsm(store, HEAD, 0.03, through=["synthetic-object", "synthetic-scene"])
    for name in store.backbones:
        stored = store.read(backbone=name, layer="penultimate", condition=key)
        clean = store.read(backbone=name, layer="penultimate", condition="clean")
        np.testing.assert_allclose(stored, reference[name], rtol=1e-4, atol=1e-5)
        assert np.abs(stored - clean).max() > 100 * np.abs(stored - reference[name]).max()
        # the gradient runs through the third backbone too: without it the images differ
        assert not np.allclose(stored, two_only[name], rtol=1e-4, atol=1e-5)
    success = store.read_array("attack/success", key)
    assert success.dtype == bool and len(success) == len(store.samples)


def test_fit_head_in_python_gives_the_cli_head(three):
    store = FeatureStore(three[0])
    result = fit_head(store, inputs=INPUTS.split(","), conditions=["clean"], save=False)
    assert result["heads"] == [HEAD] and result["inputs"] == INPUTS.split(",")
    (cli_json,) = glob.glob(os.path.join(os.path.dirname(three[0]), "fit", "*.json"))
    with open(cli_json, encoding="utf-8") as f:
        cli_rows = {r["condition"]: r for r in json.load(f)["rows"] if r["head"] == HEAD}
    (row,) = result["rows"]
    assert (row["correct"], row["n"]) == (cli_rows["clean"]["correct"], cli_rows["clean"]["n"])
    attrs = load_head(store.path, HEAD)[1]
    assert attrs["inputs"] == INPUTS.split(",") and attrs.get("head_type", "linear") == "linear"
    labels = store.labels(split="test")
    p = true_class_probability(store, HEAD)
    assert row["n"] == len(labels) and 0 < row["correct"] and len(p) == len(labels)


def test_probes_select_with_the_named_head_and_score_it(three):
    store = FeatureStore(three[0])
    key = store.resolve_condition(PROBE.format(three[2]))
    assert HEAD in store.array_names(key, "scores")
    assert set(store.condition_info(key)["heads"]) == {HEAD, *DEFAULT_HEADS}
    probed = store.read_array("probed", key)
    # samples=32 > the test images: every image the head selects is probed, and only those
    assert set(np.flatnonzero(probed).tolist()) == candidates(store, HEAD, three[2])
    test = store.samples.split == "test"
    np.testing.assert_allclose(store.read_array(f"clean_score/{HEAD}", key)[probed],
                               true_class_probability(store, HEAD)[probed[test]], rtol=1e-4)


def test_an_unknown_head_is_one_line_listing_the_stored_heads(three):
    path, args, _ = three
    before = sorted(os.listdir(os.path.join(path, "conditions")))
    stored = f"bg-all, fg-all, joint-all-alpha=0, {HEAD}"
    code, out = run(*args, "--conditions", "fgsm:eps=0.03:target=head:four-all")
    assert code == 2
    line = one_error_line(out)
    assert "no head 'four-all'" in line and f"stored heads: {stored}" in line
    code, out = run(*args, "--conditions", "isotropy:radius=1:copies=3:select=head:four-all")
    assert code == 2
    line = one_error_line(out)
    assert "the head four-all" in line and f"stored heads: {stored}" in line
    assert sorted(os.listdir(os.path.join(path, "conditions"))) == before  # nothing written


def test_a_refit_head_leaves_its_attacks_stale_until_refit_alike(three, tmp_path):
    path, args, _ = three
    copy = str(tmp_path / "store")
    shutil.copytree(path, copy)
    store = FeatureStore(copy)
    key = store.resolve_condition(ATTACK)
    assert stale_heads(copy, store.condition_info(key)) == []
    fit_head(store, inputs=INPUTS, l2=1e-2)
    assert stale_heads(copy, store.condition_info(key)) == [HEAD]
    assert fit_head(store, alphas=(0.0,), save=False)["stale"][key] is True
    at = args.index("--store") + 1
    code, out = run(*args[:at], copy, *args[at + 1:], "--conditions", ATTACK)
    assert code == 2 and "before a refit" in one_error_line(out)
    fit_head(store, inputs=INPUTS)  # the old settings: the same head again
    assert stale_heads(copy, store.condition_info(key)) == []


def test_every_head_type_is_listed_by_fit_head_robustness_and_the_report(three, tmp_path):
    """An mlp and a gated head over the three inputs beside the linear ones: fit-head prints
    each as a column, robustness and the report's Table 1 list each as a row."""
    copy = str(tmp_path / "store")
    shutil.copytree(three[0], copy)
    names = [f"{kind}-{INPUTS.replace(',', '+')}-all" for kind in ("mlp", "gated")]
    for kind, name in zip(("mlp", "gated"), names):
        code, out = run("fit-head", "--store", copy, "--head", kind, "--inputs", INPUTS,
                        *(["--width", 8] if kind == "mlp" else []), "--out", tmp_path / kind)
        assert code == 0, out
        header = next(line for line in out.splitlines() if line.startswith("condition"))
        assert header.split() == ["condition", name]
    every = [*DEFAULT_HEADS, HEAD, *names]
    code, out = run("robustness", "--store", copy, "--n-boot", 100, "--out", tmp_path / "rob",
                    "--json", tmp_path / "rob.json")
    assert code == 0, out
    with open(tmp_path / "rob.json", encoding="utf-8") as f:
        rows = {r["classifier"]: r for r in json.load(f)["rows"]}
    assert set(every) <= set(rows) and all(name in out for name in every)
    assert all(rows[n]["scores"][store_key(copy)]["R"] >= 0 for n in every)
    code, out = run("report", "--store", copy, "--out", tmp_path / "report", "--alpha", 0,
                    "--n-boot", 100)
    assert code == 0, out
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    table1 = page[page.index("mtlat-table-1"):]
    assert "local-figure-1" in page and os.path.getsize(tmp_path / "report" / "report.pdf") > 0
    assert all(f"<td>{name}</td>" in table1 for name in every)


def store_key(path):
    """The stored key of the FGSM condition made against HEAD."""
    return FeatureStore(path).resolve_condition(ATTACK)
