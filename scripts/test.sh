#!/usr/bin/env bash
# Runs the tests of every Go module in the repository with the race
# detector. Extra arguments go to each `go test` call, e.g. -run or -v.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
while IFS= read -r mod; do
	dir=$(dirname "$mod")
	echo "== go test -race ${dir}/..."
	if ! (cd "$dir" && go test -race -count=1 "$@" ./...); then
		status=1
	fi
done < <(git ls-files --cached --others --exclude-standard -- '*go.mod' 'go.mod' | sort -u)
exit "$status"
