"""The registry of network-level training recipes, ``featlab train --recipe`` (entries
register themselves on import of the package). The head-level recipes of ``fit-head
--recipe`` are :data:`featlab.analyses.heads.robust.HEAD_RECIPES`; ``mat-mixed`` and
``mat-parallel`` name the same MAT method at both levels."""
from ...registry import Registry

TRAIN_RECIPES = Registry("training recipe")
