"""Progress bars (tqdm) that stay quiet when asked or when not on a terminal."""
from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def progress(total=None, desc="", unit="it", **kwargs):
    disable = os.environ.get("FEATLAB_NO_PROGRESS") == "1" or not sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, leave=False,
                dynamic_ncols=True, **kwargs)
