#!/usr/bin/env bash
# Runs the small stress workload (`small_mixed_run_for_valgrind` in
# engine/tests/unique_stress.rs: 2 threads of mixed operations on one registry, partitions 1
# and 8, with and without an entry limit, then every pid down and a full epoch drain) under
# valgrind memcheck, and prints the summary.
#
# Fails on any memcheck error, on any "definitely lost" block, and on any "possibly lost"
# block allocated by regent or crossbeam. std keeps the main thread's `Thread` handle in a
# tagged TLS pointer, which memcheck reports as 48 bytes "possibly lost" (allocated by
# `std::thread::current::init_current`); that one is not ours. "Still reachable" is
# expected and fine: crossbeam-epoch's global collector and the test harness keep some
# allocations until exit on purpose.
#
#   scripts/valgrind.sh                      # 20,000 operations per thread and configuration
#   REGENT_STRESS_OPS=100000 scripts/valgrind.sh
#
# Honours CARGO_TARGET_DIR. Needs valgrind 3.19 or newer.
set -euo pipefail
cd "$(dirname "$0")/.."

ops="${REGENT_STRESS_OPS:-20000}"
bin=$(cargo test -p regent --release --test unique_stress --no-run --message-format=json |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
if [[ -z "$bin" ]]; then
    echo "could not find the unique_stress test binary" >&2
    exit 2
fi

log=$(mktemp -t regent-valgrind.XXXXXX)
echo "==> valgrind $bin small_mixed_run_for_valgrind (REGENT_STRESS_OPS=$ops); full log: $log"
status=0
REGENT_STRESS_OPS="$ops" valgrind \
    --leak-check=full \
    --show-leak-kinds=definite,possible \
    --errors-for-leak-kinds=definite \
    --error-exitcode=1 \
    --log-file="$log" \
    "$bin" small_mixed_run_for_valgrind --exact --test-threads=1 || status=$?

# A possibly-lost block whose allocation stack passes through regent or crossbeam is ours.
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
exit "$status"
