#!/usr/bin/env bash
# make test's pytest: the suite in two processes at once, then the modules that
# must run alone (conftest.SERIAL).
#
# Most tests wait on timers, the broker and the database, so two processes on
# the machine's two cores take little more than half the time of one.
# pytest-split divides the tests by their recorded durations (.test_durations;
# refresh with: .venv/bin/pytest --store-durations). Each process gets its own
# RabbitMQ virtual host (TEST_WORKER; see shared.testing.amqp_uri), since both
# run services of the same names, and its own temporary directory. pytest-xdist
# cannot do this here: its workers hang under eventlet's monkey-patching.
#
# Arguments go to every pytest run (a -m of your own replaces "not serial").
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST=${PYTEST:-.venv/bin/pytest}
scratch=$(mktemp -d)
second=""
cleanup() {
  if [[ -n "$second" ]]; then
    kill "$second" 2>/dev/null
    wait "$second" 2>/dev/null
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# pytest's exit code, where "no test selected" (5: arguments naming tests of
# one run only) counts as passed.
passed() { (($1 == 0 || $1 == 5)); }

split=(--splits 2 --splitting-algorithm least_duration -m "not serial")
TEST_WORKER=g2 "$PYTEST" "${split[@]}" --group 2 --basetemp="$scratch/g2" "$@" \
  >"$scratch/g2.log" 2>&1 &
second=$!
TEST_WORKER=g1 "$PYTEST" "${split[@]}" --group 1 --basetemp="$scratch/g1" "$@"
first=$?
wait "$second"
other=$?
second=""
echo "=== the second process's run ==="
cat "$scratch/g2.log"
if ! passed "$first" || ! passed "$other"; then
  echo "pytest failed (first process: exit $first, second: exit $other)" >&2
  exit 1
fi
echo "=== the modules that run alone ==="
"$PYTEST" -m serial --basetemp="$scratch/serial" "$@"
alone=$?
passed "$alone" || exit "$alone"
