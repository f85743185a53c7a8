#!/usr/bin/env bash
# Runs the benchmarks of the core module and of benchmarks/prometheus, then
# prints benchstat summaries, the retained memory and the ratios that
# BENCHMARKS.md checks against its targets.
#
# Environment:
#   BENCH_COUNT  runs of each benchmark (go test -count), default 10;
#                benchstat needs at least 6 for confidence intervals.
#   BENCH_OUT    directory for the raw go test output, default a new
#                temporary directory. Its path is printed at the end.
#
# Run nothing else heavy at the same time. The serial benchmarks also
# report their thread's CPU time (cpu-ns/op), which other jobs disturb
# less than wall time, and the serial targets are checked in both.
set -euo pipefail
cd "$(dirname "$0")/.."

count=${BENCH_COUNT:-10}
out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"

# golang.org/x/perf has no tagged releases, so a pseudo-version pins the
# benchstat commit.
benchstat_version=v0.0.0-20260908200009-22c9c6c9d4da
go install "golang.org/x/perf/cmd/benchstat@${benchstat_version}"
bin=$(go env GOBIN)
if [ -z "$bin" ]; then
	bin="$(go env GOPATH)/bin"
fi
benchstat="$bin/benchstat"

echo "== machine"
echo "nproc: $(nproc)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
go version
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: go test -run '^\$' -bench . -benchmem -count ${count} ."

# run_bench DIR NAME runs the benchmarks of the package in DIR and keeps
# the output in $out/NAME.txt.
run_bench() {
	echo "== benchmarks in $1"
	(cd "$1" && go test -run '^$' -bench . -benchmem -count "$count" .) | tee "$out/$2.txt"
}

run_bench . core
run_bench benchmarks/prometheus prometheus
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "== core module (time, bytes and allocations per op)"
"$benchstat" -filter '-.name:RetainedMemory' "$out/core.txt"
echo
echo "== benchmarks/prometheus"
"$benchstat" "$out/prometheus.txt"

# medians FILE UNIT prints "name median" for each benchmark of FILE in
# UNIT, without the -GOMAXPROCS suffix of the name.
medians() {
	"$benchstat" -format csv -filter ".unit:$2" "$1" 2>/dev/null |
		awk -F, '$1 != "" && $1 != "geomean" && $2 ~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/ {
			sub(/-[0-9]+$/, "", $1)
			print $1, $2
		}'
}

echo
echo "== retained memory (medians, bytes)"
for unit in B/tracker B/provider B/pair B/provider-day B/third-day B/worst-case; do
	medians "$out/core.txt" "$unit" | awk -v unit="$unit" '{ printf "%-16s %s\n", unit, $2 }'
done

echo
echo "== targets (ratios of medians)"
{
	medians "$out/core.txt" sec/op | sed 's/^/core /'
	medians "$out/core.txt" allocs/op | sed 's/^/allocs /'
	medians "$out/prometheus.txt" sec/op | sed 's/^/prometheus /'
	medians "$out/core.txt" cpu-ns/op | sed 's/^/cpu /'
	medians "$out/prometheus.txt" cpu-ns/op | sed 's/^/prometheus-cpu /'
} | awk '
	{ v[$1 " " $2] = $3 }
	function verdict(ok) { return ok ? "met" : "missed" }
	END {
		for (i = 1; i <= 2; i++) {
			m = i == 1 ? "serial" : "parallel"
			rec = v["core Record/" m]
			printf "Record allocs/op (%s): %d, target 0: %s\n", m,
				v["allocs Record/" m], verdict(v["allocs Record/" m] == 0)
			r = rec / v["core Floor/" m]
			printf "Record / floor (%s): %.2fx, target <= 1.30x: %s\n", m, r, verdict(r <= 1.3)
			r = v["core NaiveRecord/" m] / rec
			printf "naive / Record (%s): %.2fx, target >= 2.5x: %s\n", m, r, verdict(r >= 2.5)
			r = v["core NaiveRecord/" m] / v["core RecordCoarseClock/" m]
			printf "naive / Record with a coarse clock (%s): %.2fx, target >= 2.5x: %s\n", m, r, verdict(r >= 2.5)
			r = v["prometheus PrometheusPair/" m] / v["prometheus Record/" m]
			printf "Prometheus pair / Record (%s): %.2fx, target >= 1.5x: %s\n", m, r, verdict(r >= 1.5)
			d = (v["core HandleRecord/" m] - v["core ClockRead/" m]) * 1e9
			printf "Handle.Record - clock read (%s): %.1f ns, target <= 15 ns: %s\n", m, d, verdict(d <= 15)
		}
		# The same serial targets in thread CPU time, if it was measured.
		if (v["cpu Record/serial"] != "") {
			rec = v["cpu Record/serial"]
			r = rec / v["cpu Floor/serial"]
			printf "Record / floor (serial, CPU time): %.2fx, target <= 1.30x: %s\n", r, verdict(r <= 1.3)
			r = v["cpu NaiveRecord/serial"] / rec
			printf "naive / Record (serial, CPU time): %.2fx, target >= 2.5x: %s\n", r, verdict(r >= 2.5)
			r = v["prometheus-cpu PrometheusPair/serial"] / v["prometheus-cpu Record/serial"]
			printf "Prometheus pair / Record (serial, CPU time): %.2fx, target >= 1.5x: %s\n", r, verdict(r >= 1.5)
			d = (v["cpu HandleRecord/serial"] - v["cpu ClockRead/serial"]) * 1e9
			printf "Handle.Record - clock read (serial, CPU time): %.1f ns, target <= 15 ns: %s\n", d, verdict(d <= 15)
		}
		for (k in v) {
			split(k, part, " ")
			# Only the benchmarks of the tracker itself have this target, not
			# the baselines or the HTTP clients of the Transport benchmarks.
			if (part[1] != "core" || part[2] !~ /\/serial$/ || part[2] ~ /^(ClockRead|Floor|NaiveRecord|Transport)\//) {
				continue
			}
			name = part[2]
			sub(/\/serial$/, "", name)
			par = v["core " name "/parallel"]
			if (par == "") {
				continue
			}
			r = par / v[k]
			printf "%s parallel / serial: %.2fx, target <= 1.00x: %s\n", name, r, verdict(r <= 1)
		}
	}' | sort

echo
echo "raw output: $out"
