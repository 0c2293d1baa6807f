# jobpool.sh — a pool of at most POOL_JOBS background jobs, for the test
# runners (run-tests.sh, run-valgrind.sh). Sourced, not run. The sourcing
# script defines pool_done NAME, which is called in its own shell as each job
# ends, in the order they end (so it may count and print what the job left).
#
#   POOL_JOBS=2; pool_run NAME COMMAND [ARG...]; ...; pool_wait

declare -A pool_running=()

# pool_reap: waits for one job to end and hands its name to pool_done.
pool_reap() {
        local pid name
        wait -n -p pid "${!pool_running[@]}"
        name=${pool_running[$pid]}
        unset "pool_running[$pid]"
        pool_done "$name"
}

# pool_run NAME COMMAND [ARG...]: starts COMMAND in the background once fewer
# than POOL_JOBS are running.
pool_run() {
        local name=$1
        shift
        while [ ${#pool_running[@]} -ge "$POOL_JOBS" ]; do
                pool_reap
        done
        "$@" &
        pool_running[$!]=$name
}

# pool_wait: until every job has ended.
pool_wait() {
        while [ ${#pool_running[@]} -gt 0 ]; do
                pool_reap
        done
}
