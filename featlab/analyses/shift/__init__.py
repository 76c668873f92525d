"""``pca-shift``: how a condition moves each backbone's features (fusion paper Figure 2).

* :mod:`.subspace` — PCA/UMAP math: centroid shift, displacement outside the clean
  subspace, permutation test;
* :mod:`.displacement` — the class-centroid shift in the whitened clean PCA coordinates,
  object vs scene paired (decides the Section 3.1 claim);
* :mod:`.membership` — the residual ratio outside the clean subspace (a second number);
* :mod:`.run` — :func:`pca_shift`, the command's function;
* :mod:`.plots` — Figure 2.
"""
from .subspace import fit_pca, project, subspace_shift

__all__ = ["fit_pca", "project", "subspace_shift"]
