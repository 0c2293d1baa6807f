#!/usr/bin/env bash
# run-fuzz.sh FUZZ_BUILD SECONDS — run every libFuzzer target for SECONDS each,
# starting from its seed corpus in fuzz/corpus/<target>/ when there is one.
# Fails if any target finds a crash, a leak or an undefined behaviour.
set -u
dir=${1:?fuzz build dir} secs=${2:-10}
fail=0 n=0
for f in "$dir"/fuzz-*; do
        [ -x "$f" ] || continue
        name=$(basename "$f")
        corpus=$(mktemp -d)
        [ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$corpus/"
        if "$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 "$corpus" >"$corpus.log" 2>&1; then
                echo "ok   $name ($(grep -Eo '#[0-9]+' "$corpus.log" | tail -1 | tr -d '#') runs in ${secs}s)"
        else
                echo "FAIL $name"; tail -40 "$corpus.log"; fail=$((fail + 1))
        fi
        n=$((n + 1))
        rm -rf "$corpus" "$corpus.log"
done
echo "fuzz: $((n - fail)) passed, $fail failed"
[ "$fail" -eq 0 ]
