#!/usr/bin/env bash
# run-bench.sh BUILD [ARGS...] — run every benchmark program of a build, one
# after the other (never two at once: the machine has 2 CPUs and each bench
# uses both), each under a time bound, and print their tables.
#
# ARGS go to every benchmark (e.g. --quick for a smoke run). bench-flow also
# runs a second time with --same-core (both processes on one CPU) unless
# BENCH_SAME_CORE=0. Exit status: 0 if every benchmark succeeded.
set -u
build=${1:-build}
shift || true
status=0
ran=0

run_one() {
        local prog=$1
        shift
        echo
        echo "## $(basename "$prog") $*"
        timeout --kill-after=10 "${BENCH_TIMEOUT:-900}" "$prog" "$@"
        local rc=$?
        if [ "$rc" -ne 0 ]; then
                echo "FAILED: $(basename "$prog") $* (exit $rc)"
                status=1
        fi
}

for prog in "$build"/bench/bench-*; do
        [ -x "$prog" ] || continue
        ran=$((ran + 1))
        run_one "$prog" "$@"
        if [ "$(basename "$prog")" = bench-flow ] && [ "${BENCH_SAME_CORE:-1}" != 0 ]; then
                # Same core: fewer round trips, the blocking ones cost more there.
                run_one "$prog" --same-core --rtt=20000 --warmup=2000 "$@"
        fi
done
if [ "$ran" -eq 0 ]; then
        echo "run-bench.sh: no benchmark programs in $build/bench (run 'make' first)" >&2
        exit 1
fi
exit "$status"
