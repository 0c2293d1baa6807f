#!/usr/bin/env bash
# suite.sh BUILD [--quick] [--runs=N] [--out=DIR] [--report-only] — the side-by-side benchmark
# suite: ipcf against pipes, sockets, TCP/UDP, POSIX mq, NNG, ZeroMQ, ONC RPC
# and D-Bus, measured in one run on this machine (method: docs/PERFORMANCE.md).
#
# Runs the cmp-* programs of BUILD one after the other (never two at once:
# each uses both CPUs), each under a time bound, with a progress line on
# stderr, and writes to DIR (default bench/results; --quick: a temporary
# directory, unless --out is given):
#   latest.csv   every measurement: mechanism,metric,size,concurrency,pinned,
#                median,min,max,unit (median/min/max over the runs)
#   latest.md    the tables, ratios against ipcf, targets, where ipcf loses
#   *.png        latency CDF, throughput against size, scaling (gnuplot)
#   machine.txt  the machine and its load, as quoted in latest.md
#   lat-cdf.dat  the latency distributions behind lat-cdf.png
# --report-only measures nothing: it redraws latest.md and the plots from
# the files above (after a change to cmp-report or plot.gp).
# Exit status: 0 if every program succeeded.
set -u
build=${1:-build}
shift || true
quick=0 runs=3 out="" report_only=0
for a in "$@"; do
        case $a in
        --quick) quick=1 ;;
        --report-only) report_only=1 ;;
        --runs=*) runs=${a#--runs=} ;;
        --out=*) out=${a#--out=} ;;
        *) echo "suite.sh: unknown argument $a" >&2; exit 2 ;;
        esac
done
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "$out" ]; then
        if [ "$quick" = 1 ]; then out=$(mktemp -d /tmp/ipcf-suite.XXXXXX); else out=$here/results; fi
fi
mkdir -p "$out"
args=(--runs="$runs")
[ "$quick" = 1 ] && args=(--quick --runs=1)
for p in cmp-lat cmp-thr cmp-rpc cmp-scale cmp-report; do
        if [ ! -x "$build/bench/$p" ]; then
                echo "suite.sh: $build/bench/$p missing (run make first)" >&2
                exit 1
        fi
done

status=0
start=$(date +%s)
if [ "$report_only" = 0 ]; then
# The machine, and how busy it is (colleagues' builds share it).
{
        echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), Linux $(uname -r)."
        echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo '?'), $([ "$quick" = 1 ] && echo '1 run per figure, QUICK smoke run (not representative)' || echo "${runs} runs per figure")."
        echo "Load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
} >"$out/machine.txt.tmp"

steps=(cmp-lat cmp-thr cmp-rpc cmp-scale)
: >"$out/latest.csv.tmp"
i=0
for p in "${steps[@]}"; do
        i=$((i + 1))
        printf 'suite [%d/%d, %ds] %s\n' "$i" "${#steps[@]}" "$(($(date +%s) - start))" "$p" >&2
        extra=()
        [ "$p" = cmp-lat ] && extra=(--cdf="$out/lat-cdf.dat")
        timeout --kill-after=10 "${SUITE_TIMEOUT:-600}" "$build/bench/$p" "${args[@]}" "${extra[@]}" \
                >"$out/$p.csv.tmp"
        rc=$?
        if [ "$rc" -ne 0 ]; then
                echo "suite.sh: $p exited $rc (its failures are listed in the report)" >&2
                status=1
        fi
        # One header for the whole file.
        if [ ! -s "$out/latest.csv.tmp" ]; then
                cat "$out/$p.csv.tmp" >>"$out/latest.csv.tmp"
        else
                grep -v '^mechanism,' "$out/$p.csv.tmp" >>"$out/latest.csv.tmp"
        fi
        rm -f "$out/$p.csv.tmp"
done
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg); the suite took $(($(date +%s) - start)) s." \
        >>"$out/machine.txt.tmp"
mv "$out/latest.csv.tmp" "$out/latest.csv"
mv "$out/machine.txt.tmp" "$out/machine.txt"
fi
"$build/bench/cmp-report" "$out/latest.csv" "$out/machine.txt" >"$out/latest.md" || status=1

# ---- plots ------------------------------------------------------------------
# Data blocks for gnuplot: one block per mechanism (in CSV order), blank-line
# separated; the mechanism names, in block order, on stdout.
blocks() { # METRIC PINNED XCOL(size|conc) SCALE DATFILE
        awk -F, -v metric="$1" -v pin="$2" -v xcol="$3" -v scale="$4" -v dat="$5" '
                $2 == metric && $5 == pin {
                        if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 }
                        x = (xcol == "size") ? $3 : $4
                        data[$1] = data[$1] x " " $6 * scale " " $7 * scale " " $8 * scale "\n"
                }
                END {
                        printf "" > dat
                        for (i = 0; i < n; i++) {
                                printf "# %s\n%s\n\n", order[i], data[order[i]] >> dat
                                printf "%s ", order[i]
                        }
                }' "$out/latest.csv"
}
if command -v gnuplot >/dev/null 2>&1; then
        printf 'suite: plots\n' >&2
        cdf_names=$(grep '^# ' "$out/lat-cdf.dat" 2>/dev/null | cut -c3- | tr '\n' ' ')
        thr_names=$(blocks thr_bytes yes size 1e-9 "$out/thr-bytes.dat")
        msg_names=$(blocks thr_msgs yes size 1e-6 "$out/thr-msgs.dat")
        fl_names=$(blocks flows_rate yes conc 1e-3 "$out/flows-rate.dat")
        fl50_names=$(blocks flows_p50 yes conc 1 "$out/flows-p50.dat")
        cl_names=$(blocks clients_rate yes conc 1e-3 "$out/clients-rate.dat")
        cl50_names=$(blocks clients_p50 yes conc 1 "$out/clients-p50.dat")
        gnuplot -e "dir='$out'; cdf_names='$cdf_names'; thr_names='$thr_names'; \
                msg_names='$msg_names'; fl_names='$fl_names'; fl50_names='$fl50_names'; \
                cl_names='$cl_names'; cl50_names='$cl50_names'" "$here/plot.gp" || status=1
        rm -f "$out"/thr-*.dat "$out"/flows-*.dat "$out"/clients-*.dat
        find "$out" -maxdepth 1 -name '*.png' -size 0 -delete # nothing to draw
else
        echo "suite.sh: gnuplot not installed (tools/setup.sh): no plots" >&2
fi
printf 'suite: done in %ds: %s/latest.md\n' "$(($(date +%s) - start))" "$out" >&2
exit "$status"
