#!/bin/sh
# Renders the training curves of a metrics CSV to a PNG with gnuplot: the file History::to_csv
# writes (e.g. examples/train_fashion_mnist --metrics-out metrics.csv) or the one the CSVLogger
# callback writes (any separator among , ; tab; columns found by their header names, so their order
# does not matter; a column that is empty throughout, such as val_loss without validation data, is
# left out).
#   scripts/plot_history.sh metrics.csv curves.png
# The epoch axis has integer ticks only; the legend sits above each plot, off the curves.
# Needs gnuplot (Debian: apt-get install gnuplot-nox).
set -eu
csv=${1:?usage: $0 metrics.csv out.png}
png=${2:?usage: $0 metrics.csv out.png}
if ! command -v gnuplot >/dev/null 2>&1; then
  echo "plot_history: gnuplot is not installed (apt-get install gnuplot-nox)" >&2
  exit 1
fi
[ -r "$csv" ] || { echo "plot_history: cannot read $csv" >&2; exit 1; }

# The separator: the first of , ; tab found in the header line.
header=$(head -n 1 "$csv" | tr -d '\r')
case "$header" in
  *,*) sep=',' ;;
  *\;*) sep=';' ;;
  *"	"*) sep='	' ;;
  *) echo "plot_history: $csv: no , ; or tab in the header line '$header'" >&2; exit 1 ;;
esac

# Column number of a header name, or nothing when absent or empty in every row.
column() {
  awk -F "$sep" -v name="$1" '
    NR == 1 { for (i = 1; i <= NF; i++) { gsub(/\r/, "", $i); if ($i == name) col = i } next }
    col && $col != "" && $col != "nan" { found = 1 }
    END { if (col && found) print col }' "$csv"
}
epoch=$(column epoch)
[ -n "$epoch" ] || { echo "plot_history: $csv has no 'epoch' column with values" >&2; exit 1; }
last=$(awk -F "$sep" -v c="$epoch" 'NR > 1 && $c != "" { if ($c + 0 > m) m = $c + 0 } END { print m + 0 }' "$csv")
# Integer ticks: every epoch up to 10 epochs, then a whole step giving about 10 ticks.
step=$(( (last + 9) / 10 ))
[ "$step" -ge 1 ] || step=1

# One plot command per panel from the columns present.
curves() {
  plot=""
  for pair in "$1:train" "$2:validation"; do
    name=${pair%%:*}
    title=${pair#*:}
    col=$(column "$name")
    [ -n "$col" ] || continue
    [ -z "$plot" ] || plot="$plot, "
    plot="$plot'$csv' using $epoch:$col with linespoints title '$title'"
  done
  if [ -z "$plot" ]; then
    echo "set label 1 'no $1 data' at graph 0.5, 0.5 center; plot [0:1] [0:1] NaN notitle; unset label 1"
  else
    echo "plot $plot"
  fi
}

gnuplot <<GP
set datafile separator '$sep'
set datafile missing ''
set terminal pngcairo size 1000,460 font ',10'
set output '$png'
set multiplot layout 1,2
set xlabel 'epoch'
set xtics $step
set format x '%.0f'
set mxtics 1
set xrange [0.5:$last + 0.5]
set grid
set key tmargin center horizontal
set title 'loss'
$(curves loss val_loss)
set title 'accuracy'
$(curves accuracy val_accuracy)
unset multiplot
GP
echo "wrote $png"
