#!/usr/bin/env bash
# run-fuzz.sh FUZZ_BUILD SECONDS — run every libFuzzer target for SECONDS each,
# starting from its seed corpus in fuzz/corpus/<target>/ when there is one.
# FUZZ_JOBS targets run at once (default 2: one per CPU of the CI machines).
# Fails if any target finds a crash, a leak or an undefined behaviour.
set -u
dir=${1:?fuzz build dir} secs=${2:-10} jobs=${FUZZ_JOBS:-2}

# run_one TARGET: one target from a copy of its seed corpus; prints one line
# (and the log's tail on failure); exit status 0 on success.
run_one() {
        local f=$1 name corpus st
        name=$(basename "$f")
        corpus=$(mktemp -d)
        [ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$corpus/"
        if "$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 "$corpus" >"$corpus.log" 2>&1; then
                echo "ok   $name ($(grep -Eo '#[0-9]+' "$corpus.log" | tail -1 | tr -d '#') runs in ${secs}s)"
                st=0
        else
                { echo "FAIL $name"; tail -40 "$corpus.log"; } 
                st=1
        fi
        rm -rf "$corpus" "$corpus.log"
        return $st
}
export -f run_one
export secs

targets=()
for f in "$dir"/fuzz-*; do
        [ -x "$f" ] && targets+=("$f")
done
out=$(mktemp)
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$1" > "$2.$(basename "$1")" 2>&1' _ {} "$out"
fail=0
for f in "${targets[@]}"; do
        r="$out.$(basename "$f")"
        cat "$r"
        grep -q '^ok ' "$r" || fail=$((fail + 1))
        rm -f "$r"
done
rm -f "$out"
echo "fuzz: $((${#targets[@]} - fail)) passed, $fail failed"
[ "${#targets[@]}" -gt 0 ] && [ "$fail" -eq 0 ]
