#!/usr/bin/env bash
# fuzz-long.sh — the long fuzzing run: every libFuzzer target in FUZZ_BUILD
# (built by `make fuzz`), one at a time under `nice -n 19`, each to RUNS
# executions (libFuzzer's -runs=), starting from a copy of its seed corpus
# in fuzz/corpus/<target>/ (the tree's corpus is never written).
#
#   tools/fuzz-long.sh [-r RUNS] [-u HH:MM] [-o OUTDIR] [FUZZ_BUILD [TARGET...]]
#
#   -r RUNS    executions per target (default 10000000)
#   -u HH:MM   a deadline (UTC): each target gets an equal share of the time
#              left before it (time a fast target does not use goes to the
#              rest); a target that reaches its share first stops there and
#              its row says how far it got. Without -u there is no time limit.
#   -o OUTDIR  keep each target's grown corpus, log and crash inputs in
#              OUTDIR/<target>/ (default: a temporary folder, removed)
#
# Prints one Markdown table row per target as it ends: target, executions,
# executions per second, corpus size (inputs), coverage (libFuzzer's cov:
# edges and ft: features), crashes (0, or 1 with the input's file: libFuzzer
# stops at the first crash, leak or undefined behaviour), and the seconds it
# ran. Exit status: 0 when no target crashed, 1 otherwise, 2 on usage.
set -u
runs=10000000 until="" out=""
while getopts "r:u:o:" opt; do
        case $opt in
        r) runs=$OPTARG ;;
        u) until=$OPTARG ;;
        o) out=$OPTARG ;;
        *) echo "usage: $0 [-r RUNS] [-u HH:MM] [-o OUTDIR] [FUZZ_BUILD [TARGET...]]" >&2; exit 2 ;;
        esac
done
shift $((OPTIND - 1))
dir=${1:-build/fuzz}
[ $# -gt 0 ] && shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
        for f in "$dir"/fuzz-*; do [ -x "$f" ] && targets+=("$(basename "$f")"); done
fi
[ ${#targets[@]} -gt 0 ] || { echo "no fuzz targets in $dir (make fuzz first)" >&2; exit 2; }
deadline=0
if [ -n "$until" ]; then
        deadline=$(date -u -d "$until" +%s) || exit 2
fi
keep=1
[ -n "$out" ] || { out=$(mktemp -d); keep=0; }

echo "| target | executions | exec/s | corpus (inputs) | coverage (cov/ft) | crashes | seconds |"
echo "| --- | ---: | ---: | ---: | --- | ---: | ---: |"
crashed=0 left=${#targets[@]}
for name in "${targets[@]}"; do
        bin="$dir/$name" work="$out/$name"
        mkdir -p "$work/corpus" "$work/crashes"
        [ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$work/corpus/"
        limit=()
        if [ "$deadline" -gt 0 ]; then
                share=$(( (deadline - $(date -u +%s)) / left ))
                [ "$share" -lt 10 ] && share=10
                limit=(-max_total_time="$share")
        fi
        start=$(date +%s)
        nice -n 19 "$bin" -runs="$runs" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 \
                -print_final_stats=1 -artifact_prefix="$work/crashes/" \
                "$work/corpus" >"$work/log" 2>&1
        secs=$(( $(date +%s) - start ))
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)
        cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$work/log" | tail -1 | sed 's/cov: \([0-9]*\) ft: \([0-9]*\)/\1\/\2/')
        inputs=$(find "$work/corpus" -type f | wc -l)
        found=$(find "$work/crashes" -type f | wc -l)
        what=$found
        if [ "$found" -gt 0 ]; then
                crashed=1
                what="$found ($(find "$work/crashes" -type f | head -1))"
        fi
        echo "| $name | ${execs:-?} | ${rate:-?} | $inputs | ${cov:-?} | $what | $secs |"
        left=$((left - 1))
done
[ "$keep" -eq 1 ] || rm -rf "$out"
exit $crashed
