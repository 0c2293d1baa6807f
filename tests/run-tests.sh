#!/usr/bin/env bash
# run-tests.sh BUILD — run every test program of a build, each under a hard time
# bound, and print one closing line "N passed, N failed" over all test cases.
# After each program's output, a line says how long it took: "(test-x: N s)".
set -u
build=${1:-build}
export IPCF_BUILD=$build
total_pass=0 total_fail=0 failed_progs=()
for t in "$build"/tests/test-*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        out=$(mktemp)
        start=$SECONDS
        timeout --kill-after=10 "${TEST_PROGRAM_TIMEOUT:-900}" "$t" >"$out" 2>&1
        rc=$?
        cat "$out"
        echo "($name: $((SECONDS - start)) s)"
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
        rm -f "$out"
done
[ ${#failed_progs[@]} -gt 0 ] && echo "failing programs: ${failed_progs[*]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$total_pass" -gt 0 ]
