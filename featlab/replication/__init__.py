"""``featlab replicate``: a study repeated over seeds, each claim pooled across them.

One seed of the demo's study regenerates the synthetic data, pretrains both backbones,
extracts, fits and decides every claim (:mod:`.seed_run`); on a user's store a seed re-splits
train/test and refits the heads (:mod:`.overlay`, :mod:`.store_study`). Seeds run as separate
processes (:mod:`.worker`, scheduled by :mod:`.runner`), each in its own folder, so a killed
run resumes and a seed can run anywhere. :mod:`.pool` combines each claim row across seeds
with a DerSimonian-Laird random-effects meta-analysis and decides it with the claims' own
rule; :mod:`.figures` draws the forest plots; :mod:`.run` is the command.
"""
