"""The extraction pipeline: each image decoded once, perturbed once, fed to every backbone.

For every chunk of rows (``chunk_size`` images) whose part is missing for some condition:
decode the chunk (worker processes with ``workers > 0``; a thread decodes the next chunk
while this one is computed), then for each missing condition perturb it batch by batch,
run every backbone once on the perturbed batch with capture of the stored layers
(``--layers``), and write the chunk's features as one part (see :mod:`featlab.store.layout`)
from a background thread. Memory holds a few chunks at a time, whatever the dataset's size;
a killed run continues from the parts on disk; a complete run repeated does nothing.
Per-image CPU perturbations (the corruptions) are computed by the decode workers
(:mod:`.cpu_perturb`). Under torchrun the chunks are shared among the ranks
(:mod:`.distributed`).

The pieces: :mod:`.spec` (what a run is), :mod:`.run` (one run, one rank), :mod:`.chunks`
(the chunk loop), :mod:`.forward`, :mod:`.storage` (layers, dtype, disk), :mod:`.precision`,
:mod:`.background` (writer and decode threads). This module gathers their public names.
"""
from .chunks import groups, perturb_chunk
from .forward import FeatureForward, forward
from .run import extract, run_extraction
from .spec import (DEFAULT_IMAGE_SIZE, ExtractionSpec, backbone_meta, build_backbones,
                   check_conditions, limit_rows, load_dataset)

__all__ = ["DEFAULT_IMAGE_SIZE", "ExtractionSpec", "FeatureForward", "backbone_meta",
           "build_backbones", "check_conditions", "extract", "forward", "groups",
           "limit_rows", "load_dataset", "perturb_chunk", "run_extraction"]
