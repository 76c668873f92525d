"""The head family: the contract of every HEADS entry, and each type against a reference
(linear = scikit-learn LogisticRegression, mlp = MLPClassifier's loss on the same weights,
gated with one input = that input's linear head)."""
import json

import h5py
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from featlab.errors import FeatlabError
from featlab.heads import HEADS
from featlab.heads.base import fit_sweep, standardize
from featlab.heads.records import content_digest, head_from_arrays

# small problems, few iterations: the contract holds whether or not a fit converged
FAST = {"linear": dict(tol=1e-6), "mlp": dict(width=6, max_iter=40), "gated": dict(max_iter=40)}
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def three_inputs(n=90, C=3, seed=0, dims=(4, 3, 2)):
    """Blocks of three inputs: the first carries the class, the others noise plus a little."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % C
    blocks = [rng.normal(size=(n, d)) + 0.8 * (y[:, None] == np.arange(d) % C) * (k == 0)
              + 0.2 * (y[:, None] == np.arange(d) % C) for k, d in enumerate(dims)]
    return blocks, y


@pytest.fixture(params=sorted(FAST))
def name(request):
    assert set(FAST) == set(HEADS.names()), "every registered head needs its FAST settings"
    return request.param


def test_registry_lists_the_three_types_and_refuses_unknown_ones():
    assert HEADS.names() == ["gated", "linear", "mlp"]
    with pytest.raises(FeatlabError, match="unknown head 'forest'; known: gated, linear, mlp"):
        HEADS.get("forest")


def test_clone_and_get_params(name):
    head = HEADS.get(name)(penalty=[0.1, 0.0, 0.0], **FAST[name])
    params = head.get_params()
    assert params["penalty"] == [0.1, 0.0, 0.0] and params["l2"] > 0
    blocks, y = three_inputs()
    fitted = head.fit(blocks, y)
    copy = clone(fitted)
    assert copy.get_params() == params and not hasattr(copy, "classes_")


def test_same_settings_give_the_same_bytes(name, fresh_fit_memo):
    fresh_fit_memo.enabled = False  # solve twice
    blocks, y = three_inputs()
    a = HEADS.get(name)(penalty=[0.05, 0, 0], **FAST[name]).fit(blocks, y)
    b = HEADS.get(name)(penalty=[0.05, 0, 0], **FAST[name]).fit(blocks, y)
    (arr_a, att_a), (arr_b, att_b) = a.to_arrays(), b.to_arrays()
    assert att_a == att_b and sorted(arr_a) == sorted(arr_b)
    assert all(arr_a[k].tobytes() == arr_b[k].tobytes() for k in arr_a)
    assert a.digest() == b.digest() == content_digest(arr_a, att_a)


def test_to_torch_equals_predict_proba(name):
    blocks, y = three_inputs()
    head = HEADS.get(name)(**FAST[name]).fit(blocks, y)
    module = head.to_torch(torch.float64)
    logits = module([torch.from_numpy(b) for b in blocks])
    assert logits.shape == (len(y), 3)
    got = torch.softmax(logits, dim=1).detach().numpy()
    assert np.abs(got - head.predict_proba(blocks)).max() < 1e-6
    # float32 (what attacks use) and gradients reach every input
    xs = [torch.tensor(b, dtype=torch.float32, requires_grad=True) for b in blocks]
    head.to_torch()(xs).logsumexp(1).sum().backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in xs)


def _save_load(arrays, attrs, path):
    """The store's file format (featlab.store.heads): datasets and JSON attributes."""
    with h5py.File(path, "w") as handle:
        for key, value in arrays.items():
            handle.create_dataset(key, data=value)
        for key, value in attrs.items():
            handle.attrs[key] = json.dumps(value)
    with h5py.File(path, "r") as handle:
        return ({k: handle[k][()] for k in handle},
                {k: json.loads(v) for k, v in handle.attrs.items()})


def test_save_load_gives_identical_predictions(name, tmp_path):
    blocks, y = three_inputs()
    head = HEADS.get(name)(**FAST[name]).fit(blocks, y)
    arrays, attrs = head.to_arrays()
    # the store records the inputs and their widths beside the head's own attributes
    loaded = head_from_arrays(*_save_load(arrays, dict(attrs, inputs=["a", "b", "c"],
                                                       input_dims=[4, 3, 2]),
                                          tmp_path / "h.h5"))
    assert type(loaded) is type(head) and loaded.input_weights() == pytest.approx(
        head.input_weights(), abs=1e-6)
    again = head_from_arrays(*_save_load(*loaded.to_arrays(), tmp_path / "again.h5"))
    assert np.array_equal(again.predict_proba(blocks), loaded.predict_proba(blocks))
    assert np.array_equal(loaded.predict(blocks), head.predict(blocks))
    if name == "linear":  # stored as float32: the loaded head is the stored one
        assert np.abs(loaded.predict_proba(blocks) - head.predict_proba(blocks)).max() < 1e-6
    else:  # stored as float64: the same head
        assert np.array_equal(loaded.predict_proba(blocks), head.predict_proba(blocks))


def test_bad_penalty_and_blocks_are_one_line_errors(name):
    blocks, y = three_inputs()
    with pytest.raises(FeatlabError, match="penalty must be 3 finite value"):
        HEADS.get(name)(penalty=[1.0, 2.0], **FAST[name]).fit(blocks, y)
    with pytest.raises(FeatlabError, match="penalty must be"):
        HEADS.get(name)(penalty=[-1.0, 0, 0], **FAST[name]).fit(blocks, y)
    with pytest.raises(FeatlabError, match="same rows"):
        HEADS.get(name)(**FAST[name]).fit([blocks[0], blocks[1][:10]], y)
    head = HEADS.get(name)(**FAST[name]).fit(blocks, y)
    with pytest.raises(FeatlabError, match="reads 9 features"):
        head.predict(blocks[:2])


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_a_penalty_on_an_input_shrinks_its_block(kind):
    blocks, y = three_inputs(n=150)
    free = HEADS.get(kind)(**FAST[kind]).fit(blocks, y).input_weights()
    held = HEADS.get(kind)(penalty=[1.0, 0, 0], **FAST[kind]).fit(blocks, y).input_weights()
    assert held[0] < 0.5 * free[0] and len(held) == 3


def test_gate_trusts_the_informative_input():
    """Input 0 carries the class, input 1 is noise: the gate leans on input 0; swapping
    the informative block to input 1 moves the gate with it; both rows sum to 1."""
    rng = np.random.default_rng(3)
    y = np.arange(240) % 3
    signal = rng.normal(size=(240, 3)) + 2.0 * np.eye(3)[y]
    noise = rng.normal(size=(240, 3))
    gate = HEADS.get("gated")(max_iter=100).fit([signal, noise], y)
    swapped = HEADS.get("gated")(max_iter=100).fit([noise, signal], y)
    assert gate.input_weights()[0] > 0.6 and swapped.input_weights()[1] > 0.6
    assert np.allclose(gate.gate_weights([signal, noise]).sum(axis=1), 1.0)


def test_linear_blocks_at_alpha_zero_match_logistic_regression():
    blocks, y = three_inputs(n=120)
    l2 = 1e-2
    head = HEADS.get("linear")(l2=l2, tol=1e-10).fit(blocks, y)
    Xs = standardize(np.hstack(blocks))[2]
    ref = LogisticRegression(C=1 / (2 * l2 * len(y)), tol=1e-12, max_iter=10000).fit(Xs, y)
    assert np.abs(head.predict_proba(blocks) - ref.predict_proba(Xs)).max() < 1e-6
    assert head.input_dims_ == [4, 3, 2]


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_mlp_loss_equals_sklearn_mlp_loss_on_the_same_weights(activation):
    """With no input penalty the MLP head minimises MLPClassifier's loss at alpha = 2 l2 N:
    on the same weights both give the same probabilities and the same loss."""
    blocks, y = three_inputs(n=120)
    l2 = 1e-3
    head = HEADS.get("mlp")(width=5, activation=activation, l2=l2, max_iter=30).fit(blocks, y)
    Xs = standardize(np.hstack(blocks))[2]
    ref = MLPClassifier(hidden_layer_sizes=(5,), activation=activation, alpha=2 * l2 * len(y),
                        max_iter=1)
    with pytest.warns(ConvergenceWarning):
        ref.fit(Xs, y)
    ref.coefs_ = [head.hidden_coef_.T.copy(), head.coef_.T.copy()]
    ref.intercepts_ = [head.hidden_intercept_.copy(), head.intercept_.copy()]
    proba = ref.predict_proba(Xs)
    assert np.abs(head.predict_proba(blocks) - proba).max() < 1e-12
    squares = sum((w ** 2).sum() for w in ref.coefs_)
    sklearn_loss = log_loss(y, proba) + 0.5 * ref.alpha * squares / len(y)
    assert head.objective(blocks, y) == pytest.approx(sklearn_loss, rel=1e-12)


def test_gated_with_one_input_is_that_inputs_linear_head():
    blocks, y = three_inputs(n=120)
    gated = HEADS.get("gated")(l2=1e-2, tol=1e-9, max_iter=2000).fit(blocks[:1], y)
    linear = HEADS.get("linear")(l2=1e-2, tol=1e-10).fit(blocks[:1], y)
    assert gated.input_weights() == [1.0]
    assert np.abs(gated.predict_proba(blocks[:1]) - linear.predict_proba(blocks[:1])).max() < 1e-6


def test_sweep_warm_starts_and_keeps_the_order(name):
    blocks, y = three_inputs()
    heads = fit_sweep(name, blocks, y, [[1.0, 0, 0], [0.0, 0, 0]], **FAST[name])
    assert [h.penalty for h in heads] == [[1.0, 0, 0], [0.0, 0, 0]]


# Digests of the fusion heads (fg, bg, joint at alpha 0, 10, 1000 on the paper's scale) on
# demo-sized data (1,200 train images, 512 + 512 features, 8 classes), computed by the
# linear head's code as it stood in featlab.analyses.heads before it moved to featlab.heads,
# with one BLAS thread. They pin the solutions, the stored bytes and the digest (what attack
# conditions record) to the last bit on this platform (OpenBLAS on x86-64).
FUSION_DIGESTS = {
    "fg": "cecc826abb6c73a21455dd473739462b3b17a1c48f151e4c5480f268d60f0bfc",
    "bg": "cce4f825fd71d8314afe1b94d0dd12333638f567a34cab468542a31cd9e9623f",
    "joint-0": "616e38046d025e5b0895aaf50d3678a057cc4dbfe011108ecebeeec8eef16eb1",
    "joint-10": "f0ea46e54c0bc500c3f552d77992604a47e40785d52cedbaa5bbc78c4b126b90",
    "joint-1000": "a92fe85ceac5171c0eef704683f712dd0634bfbeab9de05b036a780820944d0b",
}


def test_linear_fusion_heads_keep_their_digests():
    from featlab.analyses.heads.alphas import fit_paper_heads
    from featlab.store.heads import head_digest, head_record

    rng = np.random.default_rng(20)
    n, d, C = 1200, 512, 8
    y = np.arange(n) % C
    centers = rng.normal(size=(2, C, d)) * 0.25
    x_fg = (centers[0][y] + rng.normal(size=(n, d))).astype(np.float32)
    x_bg = (centers[1][y] + rng.normal(size=(n, d))).astype(np.float32) * 3 + 1
    with threadpool_limits(limits=1):
        heads = fit_paper_heads(x_fg, x_bg, y, [0.0, 10.0, 1000.0], n_classes=C, l2=1e-4,
                                tol=1e-6, max_iter=500)
    named = {"fg": heads["fg"], "bg": heads["bg"],
             **{f"joint-{a:g}": h for a, h in heads["joint"].items()}}
    assert {k: head_digest(*head_record(h)) for k, h in named.items()} == FUSION_DIGESTS


class _Features(torch.nn.Module):
    """A stand-in backbone: a fixed linear map of the flattened image to d features."""

    def __init__(self, d, seed):
        super().__init__()
        self.map = torch.nn.Linear(12, d)
        torch.nn.init.normal_(self.map.weight, generator=torch.Generator().manual_seed(seed))
        self.input_std = torch.ones(3)

    def features(self, images):
        return self.map(images.flatten(1))


def test_classifier_from_a_stored_head_is_backbones_then_that_head(name):
    """What attacks differentiate through: the stored head of any type on the features its
    backbones compute, in its input order."""
    from featlab.backbones.classifier import classifier_from_head

    models = {"a": _Features(4, 1), "b": _Features(3, 2), "c": _Features(2, 3)}
    images = torch.rand(30, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    blocks = [models[k].features(images).detach().numpy() for k in "abc"]
    head = HEADS.get(name)(**FAST[name]).fit(blocks, np.arange(30) % 3)
    arrays, attrs = head.to_arrays()
    attrs = dict(attrs, inputs=["a", "b", "c"], input_dims=[4, 3, 2], layer="penultimate")
    model = classifier_from_head(arrays, attrs, models)
    loaded = head_from_arrays(arrays, attrs)
    got = torch.softmax(model(images), 1).detach().numpy()
    assert np.abs(got - loaded.predict_proba(blocks)).max() < 1e-4
