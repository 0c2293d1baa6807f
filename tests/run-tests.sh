#!/usr/bin/env bash
# run-tests.sh BUILD [TEST...] — run every test program of a build (or the
# ones named, from BUILD/tests), each under a hard time bound, and print one
# closing line "N passed, N failed" over all test cases (exit status 0 only
# when none failed and some passed; a named program not built fails).
# After each program's output, a line says how long it took: "(test-x: N s)".
#
# TEST_JOBS=N (default 1) runs N programs at a time: each one's output goes to
# a file of its own and is printed whole when it ends (so the order is the
# order they ended), then the same line. The programs named in ALONE run
# first, one at a time, with nothing else running: they pin threads to CPUs
# or run the benchmark programs. The rest start longest first (LONG, from
# the runner's own figures), so that no long one is left to run by itself at
# the end.
set -u
build=${1:-build}
shift || true
export IPCF_BUILD=$build
jobs=${TEST_JOBS:-1}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "TEST_JOBS: want a count, not '$jobs'" >&2; exit 2; }

ALONE=(test-bench-smoke test-call-busy-hostile test-mbox)
LONG=(test-rpc-hosts test-rpc test-daemon-directory test-python test-chaos test-hosts-hostile
      test-hostile-campaign test-hosts test-dir-daemons test-fanin-hostile test-hostile test-dir-hostile
      test-efcp-sim test-man test-group-hostile test-daemon-etcd test-relay-spin test-dir-probe test-dir-health-probe test-dir-hostname-probe)

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
total_pass=0 total_fail=0 failed_progs=()

# run_one PROGRAM: runs it under its time bound; its output, exit status and
# seconds go to $logs/NAME.{out,rc,secs}.
run_one() {
        local name start
        name=$(basename "$1")
        start=$SECONDS
        timeout --kill-after=10 "${TEST_PROGRAM_TIMEOUT:-900}" "$1" >"$logs/$name.out" 2>&1
        echo $? >"$logs/$name.rc"
        echo $((SECONDS - start)) >"$logs/$name.secs"
}

# report NAME: prints what run_one kept and counts its cases.
report() {
        local name=$1 out=$logs/$1.out rc line p f
        rc=$(cat "$logs/$name.rc")
        cat "$out"
        echo "($name: $(cat "$logs/$name.secs") s)"
        line=$(grep -E '^[^ ]+: [0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
        if [ -n "$line" ]; then
                p=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/' <<<"$line")
                f=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/' <<<"$line")
        else
                p=0 f=1
                echo "FAIL $name ended without a summary (exit $rc)"
        fi
        [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
        total_pass=$((total_pass + p)) total_fail=$((total_fail + f))
        [ "$f" -ne 0 ] && failed_progs+=("$name")
}

progs=("$@") alone=() first=() rest=()
if [ ${#progs[@]} -eq 0 ]; then
        for t in "$build"/tests/test-*; do
                [ -x "$t" ] && progs+=("$(basename "$t")")
        done
fi
listed() { [[ " $2 " == *" $1 "* ]]; }
for name in "${progs[@]}"; do
        if [ "$jobs" -gt 1 ] && listed "$name" "${ALONE[*]}"; then
                alone+=("$name")
        elif [ "$jobs" -gt 1 ] && listed "$name" "${LONG[*]}"; then
                :
        else
                rest+=("$name")
        fi
done
if [ "$jobs" -gt 1 ]; then
        for name in "${LONG[@]}"; do
                listed "$name" "${progs[*]}" && ! listed "$name" "${ALONE[*]}" && first+=("$name")
        done
fi

for name in "${alone[@]}"; do
        run_one "$build/tests/$name"
        report "$name"
done

# The pool: at most $jobs running; each one that ends is reported at once.
source "$(dirname "$0")/jobpool.sh"
POOL_JOBS=$jobs
pool_done() { report "$1"; }
for name in "${first[@]}" "${rest[@]}"; do
        pool_run "$name" run_one "$build/tests/$name"
done
pool_wait

[ ${#failed_progs[@]} -gt 0 ] && echo "failing programs: ${failed_progs[*]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$total_pass" -gt 0 ]
