"""Shared fixtures: tiny checkpoints in the real formats, quiet progress bars."""
import json
import os

import h5py
import pytest
import torch
import torchvision

from featlab.store.checksums import image_record, sidecar

os.environ.setdefault("FEATLAB_NO_PROGRESS", "1")


def save_synthetic_checkpoint(path, num_classes=5, seed=0):
    """A random-init ResNet18 in featlab's synthetic-backbone checkpoint format."""
    torch.manual_seed(seed)
    net = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    # non-trivial BN statistics so captured features differ from a fresh net
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    torch.save({"state_dict": net.state_dict(), "report": {"test": True}}, path)
    return str(path)


@pytest.fixture(scope="session", autouse=True)
def analyses_elsewhere(tmp_path_factory):
    """Commands run without --out write under $FEATLAB_ANALYSES: a temporary folder here,
    never the checkout's analyses/ (tests that check the default set their own)."""
    if "FEATLAB_ANALYSES" not in os.environ:
        os.environ["FEATLAB_ANALYSES"] = str(tmp_path_factory.mktemp("analyses"))
    return os.environ["FEATLAB_ANALYSES"]


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests (``pytestmark = pytest.mark.usefixtures(
    "one_torch_thread")``): tiny models gain nothing from threads, and on a shared 2-core
    machine idle threads spin."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def fresh_fit_memo():
    """Each test starts with an empty head-solution memo (featlab.heads.linear), so
    no test passes on another's solutions; tests of determinism turn the memo off."""
    from featlab.heads.memo import FIT_MEMO

    FIT_MEMO.clear()
    FIT_MEMO.enabled = True
    yield FIT_MEMO
    FIT_MEMO.clear()
    FIT_MEMO.enabled = True


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """weights={name: path} for the two synthetic backbones, random-initialised."""
    folder = tmp_path_factory.mktemp("weights")
    return {"synthetic-object": save_synthetic_checkpoint(folder / "object.pt", 6, seed=1),
            "synthetic-scene": save_synthetic_checkpoint(folder / "scene.pt", 4, seed=2)}


def run_cli(*args):
    """(exit code, output) of ``featlab -q ARGS`` in process (exceptions propagate)."""
    from click.testing import CliRunner

    from featlab.cli.main import cli

    result = CliRunner().invoke(cli, ["-q", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.output


def one_error_line(output: str) -> str:
    """The single ``featlab: error:`` line of a refused command; progress lines the command
    logged before it (e.g. what a dataset holds) may precede it, a traceback may not."""
    lines = output.strip().splitlines()
    errors = [line for line in lines if line.startswith("featlab: error:")]
    assert len(errors) == 1 and "Traceback" not in output, output
    assert lines[-1] == errors[0], output
    return errors[0]


def read_only_mount(monkeypatch, mount):
    """Folders and files under ``mount`` cannot be made, as on a read-only mount (chmod does
    not stop root, who runs these tests); everywhere else writes work."""
    import errno
    import tempfile

    def guard(real, path_of):
        def call(*args, **kwargs):
            path = str(path_of(args, kwargs))
            if os.path.abspath(path).startswith(str(mount)):
                raise OSError(errno.EROFS, "Read-only file system", path)
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(os, "makedirs", guard(os.makedirs, lambda a, k: a[0]))
    monkeypatch.setattr(os, "mkdir", guard(os.mkdir, lambda a, k: a[0]))
    monkeypatch.setattr(tempfile, "mkstemp",
                        guard(tempfile.mkstemp, lambda a, k: k.get("dir") or os.getcwd()))


def edit_recorded_h5(path, edit):
    """Open the store file ``path`` r+, call ``edit(handle)``, then record the checksum of
    the edited bytes: what a writer that stored these values would have left (checksums
    catch damage after writing; these tests are about values that were written bad)."""
    with h5py.File(path, "r+") as handle:
        edit(handle)
    with open(path, "rb") as handle:
        record = image_record(os.path.basename(str(path)), handle.read())
    with open(sidecar(str(path)), "w") as handle:
        json.dump(record, handle)
