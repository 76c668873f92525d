#!/usr/bin/env bash
# The M-TLAT robustness table (Table 1, R = A/A_clean) on the embedded
# synthetic benchmark: the 15 ImageNet-C corruptions and the paper's 4 extra ones at 5
# severities, and its 5 attacks (FGSM, PGD, PGD-LL, CW-L2, MI-FGSM) crafted on the object
# backbone's head, scored for the fg / bg / joint heads. CW-L2 as the paper's Section 4.1:
# 40 iterations, confidence kappa = 50. Wall time: see the Benchmarks page.
# Outputs go to analyses/robust-synth/robustness/ (git-ignored). Rerunning continues.
set -euo pipefail
STORE=${STORE:-cache/robust-synth}
DATA=${DATA:-cache/synthetic-data}
WORKERS=${WORKERS:-0}  # decode workers pay only when a GPU runs the forward passes

featlab data synthetic --out "$DATA" --seed 0
featlab extract --dataset synthetic --root "$DATA" --store "$STORE" --conditions clean \
    --layers penultimate,logits
featlab fit-head --store "$STORE" --alpha 0 --alpha 12000
featlab extract --dataset synthetic --root "$DATA" --store "$STORE" --workers "$WORKERS" \
    --layers penultimate,logits \
    --conditions corrupt:name=imagenet-c:severity=1:2:3:4:5,rotate:severity=1:2:3:4:5,translate:severity=1:2:3:4:5,color:severity=1:2:3:4:5,occlude:severity=1:2:3:4:5
# MI-FGSM is the paper's black-box transfer: crafted on a separately trained network (the
# surrogate, a standard ResNet18 featlab trains on the same images), scored on the heads.
[ -f cache/weights/robust-synth-surrogate.pt ] || featlab train --dataset synthetic \
    --root "$DATA" --recipe standard --epochs 3 --seed 1 --out cache/weights/robust-synth-surrogate.pt
featlab extract --dataset synthetic --root "$DATA" --store "$STORE" --layers penultimate,logits \
    --conditions fgsm:eps=0.01:target=fg,pgd:eps=0.01:steps=10:target=fg,pgdll:eps=0.01:steps=10:target=fg,cw:steps=40:kappa=50:target=fg,mifgsm:eps=0.01:steps=10:target=surrogate:surrogate=robust-synth-surrogate
featlab fit-head --store "$STORE" --alpha 0 --alpha 12000
featlab robustness --store "$STORE"
