#!/usr/bin/env bash
# The fusion study of the README on the embedded synthetic benchmark (CPU, minutes):
# data -> clean + object-blur + attacks -> heads -> PCA shift -> local properties.
# Outputs go to analyses/synth/<command>/ (git-ignored). Rerunning continues or does nothing.
set -euo pipefail
STORE=${STORE:-cache/synth}
DATA=${DATA:-cache/synthetic-data}

featlab data synthetic --out "$DATA" --seed 0
featlab extract --dataset synthetic --root "$DATA" --store "$STORE" \
    --conditions clean,blur:sigma=1:2:4:region=object
featlab fit-head --store "$STORE" --alpha 0 --alpha 1 --alpha 10
featlab pca-shift --store "$STORE" --condition blur:sigma=2
featlab extract --dataset synthetic --root "$DATA" --store "$STORE" \
    --conditions fgsm:eps=0.001:0.003:0.01:0.03:target=fg,pgd:eps=0.01:steps=10:target=joint
featlab fit-head --store "$STORE" --alpha 0 --alpha 10
featlab extract --dataset synthetic --root "$DATA" --store "$STORE" \
    --conditions isotropy:radius=1:5:10,symmetry:radius=1:5:10
featlab isotropy --store "$STORE"
featlab mantel --store "$STORE" --radius 1 --radius 10 --layer layer4.1.bn2 --layer penultimate
featlab lipschitz --store "$STORE"
featlab store info "$STORE"
