"""featlab/utils/memory.py: the command line keeps freed memory in its process (fewer page
faults in forward passes), can be turned off, and extracts the same bytes either way."""
import json
import os
import subprocess
import sys

import pytest

from featlab.store.layout import condition_dir, list_parts

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")

FAULTS = r"""
import json, resource, sys
import numpy as np
from featlab.utils.memory import keep_freed_memory
applied = keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    block = np.ones(4 << 20, np.float32)  # 16 MB, allocated, touched and freed
    del block
print(json.dumps(dict(applied=applied,
                      faults=resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)))
"""


def _run(code, keep, *args):
    env = dict(os.environ, FEATLAB_KEEP_FREED_MEMORY=keep, FEATLAB_NO_PROGRESS="1")
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_freed_blocks_are_reused_without_faulting_pages_in_again():
    default = json.loads(_run(FAULTS, "0"))
    kept = json.loads(_run(FAULTS, "1"))
    assert default["applied"] is False and kept["applied"] is True
    # glibc defaults: the first frees raise the adaptive threshold to 32 MB at most, still
    # every 16 MB block is returned and faulted in again until then; kept: faulted in once
    assert kept["faults"] < 2 * 4096 + 1000, kept  # one 16 MB block = 4,096 pages
    assert default["faults"] > kept["faults"], (default, kept)


EXTRACT = r"""
import sys
from featlab.cli.main import main
main(sys.argv[1:])
"""


def test_the_command_line_extracts_the_same_bytes_either_way(tmp_path, tiny_weights):
    from featlab.data.synthetic import generate_synthetic

    data = tmp_path / "data"
    generate_synthetic(str(data), seed=4, n_images=16, image_size=32)
    weights = [a for k, v in tiny_weights.items() for a in ("--weights", f"{k}={v}")]
    stores = {}
    for keep in ("0", "1"):
        store = tmp_path / f"store-{keep}"
        _run(EXTRACT, keep, "extract", "--dataset", "synthetic", "--root", str(data),
             "--store", str(store), "--conditions", "clean,blur:sigma=2:region=object", "--device", "cpu",
             "--batch-size", "8", "--chunk-size", "8", "--image-size", "32", *weights)
        stores[keep] = {}
        for key in ("clean", "blur:sigma=2:region=object"):
            for _, _, path in list_parts(condition_dir(str(store), key)):
                with open(path, "rb") as handle:
                    stores[keep][(key, os.path.basename(path))] = handle.read()
    assert len(stores["1"]) == 4 and stores["0"] == stores["1"]
