#!/usr/bin/env bash
# Runs five suites under valgrind memcheck and prints each summary:
#
# - the small stress workload (`small_mixed_run_for_valgrind` in
#   engine/tests/unique_stress.rs: 2 threads of mixed operations on one registry, partitions
#   1 and 8, with and without an entry limit, then every pid down and a full epoch drain);
# - every test of engine/tests/duplicate_api.rs (each method of `Duplicate` over both
#   partitionings, drop counting), which exercises the bags' hand-made segment and key-list
#   allocations;
# - every test of engine/tests/migration_reads.rs: reads of tables left mid-migration after
#   the records a migration copied changed and what the old copies point to was freed (the
#   read of freed memory they would catch shows only to memcheck, or as a rare crash);
# - every test of engine/tests/hash_panics.rs: registrations undone when a key's or pid's
#   `Eq` panics, among them a duplicate entry given back to its bag unpublished (a bag
#   reference miscounted there frees the bag before its last slot is reclaimed, a
#   use-after-free that only memcheck sees);
# - every test of engine/tests/exit_atomicity.rs: exits that show their pid's monitor as
#   down while they retire its key list, racing readers that probe that monitor.
#
# Fails on any memcheck error, on any "definitely lost" block, and on any "possibly lost"
# block allocated by regent or crossbeam. std keeps the main thread's `Thread` handle in a
# tagged TLS pointer, which memcheck reports as 48 bytes "possibly lost" (allocated by
# `std::thread::current::init_current`); that one is not ours. "Still reachable" is
# expected and fine: crossbeam-epoch's global collector and the test harness keep some
# allocations until exit on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."

ops="${REGENT_STRESS_OPS:-20000}"

# The test binary of engine/tests/$1.rs.
binary() {
    cargo test -p regent --release --test "$1" --no-run --message-format=json |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1
}

# memcheck <test file> <test-harness arguments...>
memcheck() {
    local test=$1
    shift
    local bin
    bin=$(binary "$test")
    if [[ -z "$bin" ]]; then
        echo "could not find the $test test binary" >&2
        return 2
    fi
    local log status=0
    log=$(mktemp -t regent-valgrind.XXXXXX)
    echo "==> valgrind $test $* (REGENT_STRESS_OPS=$ops); full log: $log"
    REGENT_STRESS_OPS="$ops" valgrind \
        --leak-check=full \
        --show-leak-kinds=definite,possible \
        --errors-for-leak-kinds=definite \
        --error-exitcode=1 \
        --log-file="$log" \
        "$bin" "$@" --test-threads=1 || status=$?

    # A possibly-lost block whose allocation stack passes through regent or crossbeam is ours.
    local ours
    ours=$(awk '/are possibly lost in loss record/ { p = 1 } p && /^==[0-9]+== *$/ { p = 0 } p' "$log" |
        grep -cE 'regent::|crossbeam' || true)
    if [[ "$ours" -gt 0 ]]; then
        echo "possibly lost blocks allocated through regent or crossbeam ($ours frames)" >&2
        status=1
    fi

    grep -E "in use at exit|total heap usage|definitely lost|indirectly lost|possibly lost|still reachable|suppressed|ERROR SUMMARY" "$log" |
        sed 's/^==[0-9]*== *//'
    if [[ $status -eq 0 ]]; then
        echo "<== valgrind: clean (no errors, nothing definitely lost, nothing of ours possibly lost)"
    else
        echo "<== valgrind: FAILED (exit $status); see $log" >&2
    fi
    return "$status"
}

status=0
memcheck unique_stress small_mixed_run_for_valgrind --exact || status=$?
memcheck duplicate_api || status=$?
memcheck migration_reads || status=$?
memcheck hash_panics || status=$?
memcheck exit_atomicity || status=$?
exit "$status"
