#!/bin/sh
# Renders the training curves of a metrics CSV (written by fit's History::to_csv, e.g. by
# examples/train_fashion_mnist --metrics-out metrics.csv) to a PNG with gnuplot.
#   scripts/plot_history.sh metrics.csv curves.png
# Needs gnuplot (Debian: apt-get install gnuplot-nox).
set -eu
csv=${1:?usage: $0 metrics.csv out.png}
png=${2:?usage: $0 metrics.csv out.png}
if ! command -v gnuplot >/dev/null 2>&1; then
  echo "plot_history: gnuplot is not installed (apt-get install gnuplot-nox)" >&2
  exit 1
fi
gnuplot <<GP
set datafile separator ','
set terminal pngcairo size 1000,420 font ',10'
set output '$png'
set multiplot layout 1,2
set key autotitle columnhead
set xlabel 'epoch'
set grid
set title 'loss'
plot '$csv' using 1:2 with linespoints title 'train', '' using 1:4 with linespoints title 'validation'
set title 'accuracy'
plot '$csv' using 1:3 with linespoints title 'train', '' using 1:5 with linespoints title 'validation'
unset multiplot
GP
echo "wrote $png"
