#!/usr/bin/env bash
# The chaos suite at the issue's full sizes (issue 9): runs every test in
# chaos/ with -chaos.soak and prints the FIGURE lines they log as a table.
# Takes minutes, not seconds. Extra arguments go to go test (e.g. -run UDP).
# Usage: bench/soak.sh [go test flags...]
set -u
cd "$(dirname "$0")/.."
log=$(mktemp); trap 'rm -f "$log"' EXIT
go test ./chaos -chaos.soak -v -count=1 -timeout 60m "$@" 2>&1 | tee "$log" | grep -E '^(--- |FAIL|ok )'
status=${PIPESTATUS[0]}
echo
echo "| test | figure | value |"
echo "|---|---|---|"
# Lines look like "    file_test.go:NN: FIGURE name: value", inside "=== RUN TestX".
awk '
  /^=== (RUN|CONT) / { test = $3 }
  / FIGURE / {
    line = $0
    sub(/^.* FIGURE /, "", line)
    i = index(line, ": ")
    name = substr(line, 1, i - 1); value = substr(line, i + 2)
    gsub(/\|/, "\\|", value)
    printf "| %s | %s | %s |\n", test, name, value
  }' "$log"
echo
if [ "$status" -eq 0 ]; then echo "soak: all tests passed"; else echo "soak: FAILED (exit $status)"; fi
exit "$status"
