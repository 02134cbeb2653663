#!/usr/bin/env bash
# Runs every native fuzz target for a while each, under a memory limit:
#
#   scripts/fuzz.sh [DURATION] [REGEXP]     e.g. scripts/fuzz.sh 30s 'opcua|config'
#
# Every decoder of outside input has a FuzzXxx target, and what a decoder
# must survive includes inputs that claim sizes they do not have (gopcua's
# 25-byte Variant that allocated 3 GiB). So each target runs with
# GOMEMLIMIT (the collector works hard near it) and a hard cap on each
# process's address space (ulimit -v, inherited by the fuzz workers): an
# input that allocates past the cap makes the Go runtime die with "out of
# memory", which the fuzzer reports as a crash and saves under
# testdata/fuzz/. A crash, an out-of-memory, a hang past the watchdog, or a
# target this script does not find, fails the script (exit 1) after every
# target has run.
#
# An idle coverage-instrumented fuzz process already maps 2.0-2.5 GB of
# address space (measured: worker 2.0 GB, coordinator 2.5 GB; VmRSS 60 MB),
# so the 3 GiB cap leaves each worker about 1 GiB to allocate: the 3 GiB
# Variant fails, as it would on a small gateway.
#
# Environment: FUZZ_MEM_MIB (address-space cap per process, default 3072),
# GOMEMLIMIT (default 512MiB), FUZZ_WATCHDOG (seconds per target on top of
# DURATION, default 300), FUZZ_PARALLEL (fuzz workers, default GOMAXPROCS).
set -euo pipefail
dur=${1:-20s}
only=${2:-.}
mem_mib=${FUZZ_MEM_MIB:-3072}
export GOMEMLIMIT=${GOMEMLIMIT:-512MiB}
watchdog=${FUZZ_WATCHDOG:-300}
parallel=()
if [ -n "${FUZZ_PARALLEL:-}" ]; then parallel=(-test.parallel "$FUZZ_PARALLEL"); fi

cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cache=$(go env GOCACHE)/fuzz

# The watchdog gets DURATION's seconds when it is written in s/m/h.
secs=0
case $dur in
*h) secs=$((${dur%h} * 3600)) ;; *m) secs=$((${dur%m} * 60)) ;; *s) secs=${dur%s} ;;
esac

failed=()
ran=0
for dir in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
	pkg=$(go list "$dir")
	bin=$work/$(echo "$pkg" | tr / _).test
	# Built without the cap (the compiler is not what is being tested);
	# -fuzz makes it a coverage-guided binary, as `go test -fuzz` would.
	go test -c -fuzz=. -o "$bin" "$dir"
	listed=$(cd "$dir" && "$bin" -test.list '^Fuzz' | grep '^Fuzz' | sort || true)
	declared=$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$dir"/*_test.go | sort)
	if [ "$listed" != "$declared" ]; then
		echo "FAIL: $pkg declares fuzz targets the test binary does not list (build tags?):"
		diff <(echo "$declared") <(echo "$listed") || true
		failed+=("$pkg (unlisted targets)")
	fi
	for f in $listed; do
		[[ "$pkg.$f" =~ $only ]] || continue
		ran=$((ran + 1))
		echo "== $pkg $f ($dur; GOMEMLIMIT=$GOMEMLIMIT, address space ≤ $mem_mib MiB)"
		if ! (cd "$dir" && ulimit -v $((mem_mib * 1024)) &&
			timeout --kill-after=10s $((secs + watchdog)) "$bin" -test.run '^$' -test.fuzz "^$f\$" \
				-test.fuzztime "$dur" -test.fuzzcachedir "$cache/$pkg" "${parallel[@]}"); then
			failed+=("$pkg $f")
		fi
	done
done
echo "fuzz: $ran targets run"
if [ ${#failed[@]} -gt 0 ]; then
	printf 'FAIL: %s\n' "${failed[@]}"
	exit 1
fi
