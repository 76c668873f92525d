"""Multi-strength adversarial training's level-free parts (MAT paper, Song et al.): the
random-walk strength selection of Section 4.3 (:mod:`.random_walk`) and parallel MAT's voting
coefficients of Section 4.2, Eq. 4 (:mod:`.voting`). Pure NumPy on accuracy matrices and
probabilities, so one implementation serves ``featlab train`` (networks,
:mod:`featlab.training`) and ``fit-head`` (heads, :mod:`featlab.analyses.heads`).
"""
from .options import DEFAULT_PENALTY, DEFAULT_WALKS, check_walk_options
from .random_walk import best_subset, random_walk_select
from .voting import fit_voting, label_probabilities, voting_nll

__all__ = ["DEFAULT_PENALTY", "DEFAULT_WALKS", "best_subset", "check_walk_options",
           "fit_voting", "label_probabilities", "random_walk_select", "voting_nll"]
