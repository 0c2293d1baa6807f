#!/usr/bin/env bash
# demo.sh BUILD — the live demo of ipcf's local facility (`make demo`).
#
# No configuration, no root. Everything happens in a fresh directory under
# /tmp: the facility's runtime dir (IPCF_RUNTIME_DIR) and the demo's files.
# The demo never starts the daemon itself: the first `ipcf` command makes the
# library start $BUILD/bin/ipcfd (IPCF_DAEMON). It then shows, one step each:
#   1. the facility starting on demand;
#   2. two processes finding each other by name (an echo server and a client);
#   3. a 64 MiB file streamed through a flow, checked with sha256;
#   4. `ipcf ls` while a flow is live;
#   5. `ipcf ping` round trips and 6. `ipcf perf` throughput;
# and finally stops the daemon and removes the directory. Every command is
# time-bounded; the exit status is non-zero if any step failed.
set -u

build=${1:-build}
ipcf_bin=$(realpath "$build/bin/ipcf" 2>/dev/null)
ipcfd_bin=$(realpath "$build/bin/ipcfd" 2>/dev/null)
for p in "$ipcf_bin" "$ipcfd_bin"; do
        if [ ! -x "$p" ]; then
                echo "demo: $build/bin/ipcf and $build/bin/ipcfd must be built (run 'make')" >&2
                exit 1
        fi
done

base=$(mktemp -d /tmp/ipcf-demo.XXXXXX) || exit 1
export IPCF_RUNTIME_DIR=$base/run
export IPCF_DAEMON=$ipcfd_bin
unset IPCF_NO_AUTOSTART
mkdir -m 0700 "$IPCF_RUNTIME_DIR"

bg_pids=()      # background processes this demo started
failed=0 steps=0
bold=$'\e[1m' green=$'\e[32m' red=$'\e[31m' plain=$'\e[0m'
[ -t 1 ] || bold='' green='' red='' plain=''

ipcf() { timeout --kill-after=5 "${DEMO_CMD_TIMEOUT:-60}" "$ipcf_bin" "$@"; }
step() {
        steps=$((steps + 1))
        printf '\n%s== Step %d: %s ==%s\n' "$bold" "$steps" "$1" "$plain"
}
ok() { printf '%sOK%s %s\n' "$green" "$plain" "$*"; }
fail() {
        printf '%sFAILED%s %s\n' "$red" "$plain" "$*"
        failed=$((failed + 1))
}
show() { printf '$ %s\n' "$*"; } # echo a command line before running it

# The daemon's pid: its pid file, else what `ipcf ls --json` says.
daemon_pid() {
        if [ -s "$IPCF_RUNTIME_DIR/ipcfd.pid" ]; then
                cat "$IPCF_RUNTIME_DIR/ipcfd.pid"
        else
                IPCF_NO_AUTOSTART=1 ipcf ls --json 2>/dev/null |
                        sed -n 's/.*"daemon_pid":\([0-9]*\).*/\1/p' | head -n 1
        fi
}

# Wait (at most 5 s) until NAME is registered.
wait_name() {
        for _ in $(seq 100); do
                ipcf ls --json 2>/dev/null | grep -q "\"name\":\"$1\"" && return 0
                sleep 0.05
        done
        return 1
}

# Wait at most SECS for background process PID to end; its exit status
# (killed and 124 if it did not end in time).
wait_exit() {
        for _ in $(seq $(($2 * 20))); do
                kill -0 "$1" 2>/dev/null || break
                sleep 0.05
        done
        if kill -0 "$1" 2>/dev/null; then
                kill "$1" 2>/dev/null
                wait "$1" 2>/dev/null
                return 124
        fi
        wait "$1"
}

cleanup() {
        for pid in "${bg_pids[@]}"; do
                kill "$pid" 2>/dev/null
        done
        wait 2>/dev/null
        local pid
        pid=$(daemon_pid)
        if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
                for _ in $(seq 100); do
                        kill -0 "$pid" 2>/dev/null || break
                        sleep 0.05
                done
        fi
        rm -rf "$base"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

printf '%sipcf live demo%s — runtime dir %s, daemon %s\n' "$bold" "$plain" \
        "$IPCF_RUNTIME_DIR" "$IPCF_DAEMON"

# ---------------------------------------------------------------------------
step "the facility starts on demand"
show "ipcf ls"
if ipcf ls; then
        ok "ipcfd started by the library (pid $(daemon_pid))"
else
        fail "ipcf ls could not reach or start the daemon"
fi

# ---------------------------------------------------------------------------
step "two processes find each other by name"
show "ipcf listen demo.echo --echo -k -v &"
"$ipcf_bin" listen demo.echo --echo -k -v </dev/null 2>"$base/echo.log" &
bg_pids+=($!)
if wait_name demo.echo; then
        show "echo 'hello, ipcf' | ipcf cat demo.echo"
        reply=$(echo "hello, ipcf" | ipcf cat demo.echo)
        echo "$reply"
        sleep 0.1
        echo "what the server saw (ipcf listen -v), identity stamped by the facility:"
        sed 's/^/    /' "$base/echo.log"
        if [ "$reply" = "hello, ipcf" ]; then
                ok "the client reached the echo server by its name and got its words back"
        else
                fail "echo reply was '$reply'"
        fi
else
        fail "demo.echo did not get registered"
fi

# ---------------------------------------------------------------------------
step "stream a 64 MiB file through a flow"
head -c 64M /dev/urandom >"$base/in.bin"
show "ipcf listen demo.file > out.bin &"
"$ipcf_bin" listen demo.file <"/dev/null" >"$base/out.bin" &
listener=$!
bg_pids+=("$listener")
if wait_name demo.file; then
        show "ipcf cat demo.file < in.bin"
        t0=$(date +%s.%N)
        ipcf cat demo.file <"$base/in.bin"
        cat_rc=$?
        wait_exit "$listener" 30
        listen_rc=$?
        t1=$(date +%s.%N)
        sum_in=$(sha256sum <"$base/in.bin" | cut -d' ' -f1)
        sum_out=$(sha256sum <"$base/out.bin" | cut -d' ' -f1)
        echo "sha256 sent:     $sum_in"
        echo "sha256 received: $sum_out"
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
        if [ "$cat_rc" -eq 0 ] && [ "$listen_rc" -eq 0 ] && [ "$sum_in" = "$sum_out" ]; then
                rate=$(awk -v s="$secs" 'BEGIN { printf "%.6f", 64 / (s + 0.000001) }')
                ok "$(printf '64 MiB copied intact in %.2f s (%.0f MiB/s), cat and listen both exited 0' "$secs" "$rate")"
        else
                fail "cat exit $cat_rc, listen exit $listen_rc, checksums $([ "$sum_in" = "$sum_out" ] && echo equal || echo differ)"
        fi
else
        fail "demo.file did not get registered"
fi
rm -f "$base/in.bin" "$base/out.bin"

# ---------------------------------------------------------------------------
step "ipcf ls while a flow is live"
# A client that trickles lines into the echo server for ~2 s.
(for i in $(seq 20); do echo "line $i"; sleep 0.1; done) | "$ipcf_bin" cat demo.echo >/dev/null &
trickle=$!
bg_pids+=("$trickle")
sleep 1
show "ipcf ls"
listing=$(ipcf ls)
echo "$listing"
wait "$trickle"
if grep -q demo.echo <<<"$listing" && grep -q live <<<"$listing"; then
        ok "names and the live flow with its counters"
else
        fail "ipcf ls did not show the live flow"
fi

# ---------------------------------------------------------------------------
step "round trips: ipcf ping"
show "ipcf ping demo.echo -c 10000"
if out=$(ipcf ping demo.echo -c 10000); then
        echo "$out"
        ok "10000 round trips of 64 bytes"
else
        echo "$out"
        fail "ipcf ping failed"
fi

# ---------------------------------------------------------------------------
step "throughput: ipcf perf"
show "ipcf listen demo.sink --sink -k &"
"$ipcf_bin" listen demo.sink --sink -k </dev/null &
bg_pids+=($!)
if wait_name demo.sink; then
        perf_ok=1
        for size in 64 64K; do
                show "ipcf perf demo.sink -s $size -t 2"
                ipcf perf demo.sink -s "$size" -t 2 || perf_ok=0
        done
        if [ "$perf_ok" = 1 ]; then ok "throughput measured"; else fail "ipcf perf failed"; fi
else
        fail "demo.sink did not get registered"
fi

# ---------------------------------------------------------------------------
step "stop the facility"
for pid in "${bg_pids[@]}"; do
        kill "$pid" 2>/dev/null
done
wait 2>/dev/null
bg_pids=()
pid=$(daemon_pid)
show "kill \$(cat $IPCF_RUNTIME_DIR/ipcfd.pid)"
if [ -n "$pid" ] && kill "$pid"; then
        for _ in $(seq 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.05
        done
        if kill -0 "$pid" 2>/dev/null; then
                fail "ipcfd (pid $pid) is still running"
        else
                ok "ipcfd (pid $pid) stopped; removing $base"
        fi
else
        fail "no daemon pid found"
fi

echo
if [ "$failed" -eq 0 ]; then
        printf '%sdemo: all %d steps OK%s\n' "$green" "$steps" "$plain"
else
        printf '%sdemo: %d of %d steps FAILED%s\n' "$red" "$failed" "$steps" "$plain"
fi
[ "$failed" -eq 0 ]
