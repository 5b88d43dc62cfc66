#!/usr/bin/env bash
# Run one timed command with this machine's training runs paused (SIGSTOP), and resume them
# afterwards however the command ends. On the 2-core development VM training runs share the
# cores with the benchmarks; a paused run loses nothing (it continues where it stopped).
#
#   WRAP=benchmarks/quiet.sh benchmarks/bench_suite.sh
#   benchmarks/quiet.sh edgeirst bench --models shipped ...
#
# PATTERN (default "edgeirst train") selects the processes to pause (pgrep -f).
set -uo pipefail
if [ $# -eq 0 ]; then
  echo "usage: benchmarks/quiet.sh COMMAND [ARGS...]  (runs COMMAND with the training runs paused)" >&2
  exit 2
fi
PATTERN=${PATTERN:-"edgeirst train"}
# (not this script, nor its own subshells, whose command line may contain the pattern too)
pids=$(pgrep -af -- "$PATTERN" | grep -v "quiet\.sh" | cut -d' ' -f1 | tr '\n' ' ' || true)
pids=${pids% }
resume() { [ -n "$pids" ] && kill -CONT $pids 2>/dev/null; }
trap resume EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ -n "$pids" ]; then
  kill -STOP $pids 2>/dev/null
  echo "quiet: paused $(echo $pids | wc -w) process(es) matching '$PATTERN'" >&2
  sleep 2
fi
"$@"
