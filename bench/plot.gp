# plot.gp — the suite's pictures (gnuplot, called by bench/suite.sh).
#
# Variables set by suite.sh with -e: dir (the results folder) and, for each
# data file, the mechanism names of its blocks in order (*_names); the data
# files hold one block per mechanism: "x median min max".
#   lat-cdf.png     distribution of 64 B round trips (pinned, one run)
#   throughput.png  messages/s and GB/s against message size (log-log)
#   scaling.png     concurrent flows and clients of one service
# A data set with no mechanism (a run with --only) leaves its panel out.
set terminal pngcairo size 1200,700 font "DejaVu Sans,10" noenhanced
set grid
set key outside right top

set output dir."/lat-cdf.png"
set title "Round trip of 64 B messages, two processes pinned to CPUs 0 and 1 (one run)"
set logscale x
set xlabel "round-trip time (µs, log scale)"
set ylabel "fraction of round trips"
set yrange [0:1]
set format x "%g"
# eight colours, then the same colours dashed; the four ipcf lines (first) thicker
if (words(cdf_names) > 0) {
    plot for [i=1:words(cdf_names)] dir."/lat-cdf.dat" index (i-1) using 2:1 with lines \
            lw (i <= 4 ? 3 : 1.5) dt int(1 + (i-1)/8) \
            title word(cdf_names, i)
}

set output dir."/throughput.png"
set multiplot layout 1,2 title "One-way throughput against message size (pinned; median, bars: min–max)"
unset title
set logscale xy
set yrange [*:*]
set xlabel "message size (bytes)"
set format x "%.0s%cB"
set ylabel "million messages/s"
set key inside bottom left
if (words(msg_names) > 0) {
    plot for [i=1:words(msg_names)] dir."/thr-msgs.dat" index (i-1) using 1:2:3:4 \
            with yerrorlines dt int(1 + (i-1)/8) title word(msg_names, i)
}
set ylabel "GB/s"
set key inside top left
if (words(thr_names) > 0) {
    plot for [i=1:words(thr_names)] dir."/thr-bytes.dat" index (i-1) using 1:2:3:4 \
            with yerrorlines dt int(1 + (i-1)/8) title word(thr_names, i)
}
unset multiplot

set output dir."/scaling.png"
set multiplot layout 2,2 title "Scaling (pinned; median, bars: min–max)"
set format x "%g"
set key inside top left
set xlabel "concurrent flows (one client, one epoll server)"
set ylabel "thousand messages/s"
if (words(fl_names) > 0) {
    plot for [i=1:words(fl_names)] dir."/flows-rate.dat" index (i-1) using 1:2:3:4 \
            with yerrorlines title word(fl_names, i)
}
set ylabel "round time, median (µs)"
if (words(fl50_names) > 0) {
    plot for [i=1:words(fl50_names)] dir."/flows-p50.dat" index (i-1) using 1:2:3:4 \
            with yerrorlines title word(fl50_names, i)
}
set xlabel "client processes of one service"
set ylabel "thousand calls/s (all clients)"
if (words(cl_names) > 0) {
    plot for [i=1:words(cl_names)] dir."/clients-rate.dat" index (i-1) using 1:2:3:4 \
            with yerrorlines title word(cl_names, i)
}
set ylabel "call round trip, median (µs)"
if (words(cl50_names) > 0) {
    plot for [i=1:words(cl50_names)] dir."/clients-p50.dat" index (i-1) using 1:2:3:4 \
            with yerrorlines title word(cl50_names, i)
}
unset multiplot
