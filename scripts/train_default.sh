#!/usr/bin/env bash
# Reproduce the shipped model, models/default.pt, from the corpus: synth -> prep -> train ->
# export -> eval on the test split. Every step resumes: after an interruption (or to continue a
# run in a later session), run the script again with the same settings.
#
#   bash scripts/train_default.sh                    # everything under runs/default/
#   STEPS=7000 bash scripts/train_default.sh         # continue the same run to more steps
#   ARCH=paper bash scripts/train_default.sh         # the paper's network on the same data
#
# Time on the reference machine (2 CPU cores): synth ~6 min, prep ~2 min, training ~15 examples/s
# for tcn (5000 steps of 8 = 40,000 examples: about 45 minutes on idle cores), eval ~3 min.
set -euo pipefail
cd "$(dirname "$0")/.."

CORPUS=${CORPUS:-../shared/corpus}
WORK=${WORK:-runs/default}
ARCH=${ARCH:-tcn}
STEPS=${STEPS:-5000}
OUT=${OUT:-models/default.pt}
COCKTAIL=${COCKTAIL:-cocktail}

# Mixtures: the paper's recipe (one clip a target class with probability 0.7, two "other" clips,
# pitch +-2/4 semitones, stretch 1.2x) at the model's 22050 Hz, 4 s (prep crops 3 s at random),
# a wider level range (+-8 dB), and 30% of sources band-limited at 3-8 kHz so the model cannot
# tell baby_cry (all 8 kHz phone recordings) by its bandwidth.
SYNTH=(--sample-rate 22050 --seconds 4 --lowpass-prob 0.3 --gain-db 8 --jobs 2 --seed 7)
$COCKTAIL synth "$CORPUS" -o "$WORK/synth" --split val --count 400 "${SYNTH[@]}"
$COCKTAIL synth "$CORPUS" -o "$WORK/synth" --split test --count 600 "${SYNTH[@]}"
$COCKTAIL synth "$CORPUS" -o "$WORK/synth" --split train --count 20000 "${SYNTH[@]}"

$COCKTAIL prep "$WORK/synth" -o "$WORK/store" --jobs 2

# Training: random per-stem gains (+-6 dB) remix every example; validation on the val split.
# tcn: small batches (more updates per CPU-second), AdamW 3e-3, warmup + cosine. paper: its own
# recipe (Adam 1e-3, n_fft 512, summed magnitude MSE) from the train defaults.
if [ "$ARCH" = tcn ]; then OPTS=(--batch-size 8 --lr 3e-3); else OPTS=(--batch-size 16); fi
$COCKTAIL train "$WORK/store" -o "$WORK/$ARCH.pt" --arch "$ARCH" --steps "$STEPS" "${OPTS[@]}" \
    --eval-every 250 --val-examples 200 --checkpoint-minutes 5 --threads 2 --seed 0 --resume \
    --json >> "$WORK/$ARCH-train.jsonl"

if [ "$ARCH" = tcn ]; then
    # Ship without the optimizer state (resume stays possible from $WORK/tcn.pt).
    python -c "import sys; from cocktail_cli.checkpoint import export; export(sys.argv[1], sys.argv[2])" \
        "$WORK/$ARCH.pt" "$OUT"
    MODEL=$OUT
else
    MODEL=$WORK/$ARCH.pt
fi

# The card's table: mixture floor, the model and the oracle ideal ratio mask on the test split.
$COCKTAIL eval "$WORK/synth" --split test --model "$MODEL" --oracle irm1 --json > "$WORK/$ARCH-eval-test.jsonl"
tail -n 1 "$WORK/$ARCH-eval-test.jsonl"
