#!/usr/bin/env bash
# The test suite as CI runs it (make test), in several processes at once,
# each test binary built once:
#   tasks    the modules' package, started first: its adversarial lab tests
#            are the longest of all (-parallel 4);
#   lint     make lint (with `scripts/test.sh lint`): it needs only the CPU
#            while the lab tests mostly wait on sshd, so it runs beside them;
#   race     the packages that run hosts concurrently, under -race, then
#            internal/cli's in-process tests (-short) under -race too; all
#            their race builds first (running no test), then the tests;
#   cli      internal/cli, built once: the tests that call t.Parallel()
#            (every lab test: each starts its own fleet of sshd hosts on its
#            own network and gives its commands their own environment, AWS
#            included) run together (-parallel, default 10: they wait on
#            sshd, on bake times and on each other's CPU, and more at once
#            leave the two cores less idle); the few others (signals to the
#            process, a test hook, process variables, a load test) run one
#            at a time in a second process of the same binary, beside the
#            first once the race builds are done;
#   others   every other package (TEST_PACKAGES, default 6, at once);
#   nonroot  (with `scripts/test.sh nonroot`) cmd/ferry's CLI scripts again,
#            as an unprivileged user (make test-nonroot).
# The 100- and 1,000-host scale runs are make scale; here TestScale is a
# 20-host smoke of the same path. Every process's output is printed when
# all have ended, in the order above, under a header with its wall time
# ("=== tasks (95 s)": the longest is the critical path); the exit status
# fails if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
make=${MAKE:-make}
timeout=${TEST_TIMEOUT:-30m}
parallel=${TEST_PARALLEL:-10}
mod=github.com/ferrydeploy/ferry
# -trimpath for every go command below (tests, vet, the builds tests run):
# without it the build cache keys each package by its directory, so a
# fresh clone (CI's, a worktree) compiled and linked the whole module again
# (about 75 s of CPU, a sixth of make test); with it, a clone anywhere
# reuses what any other already built.
export GOFLAGS="-trimpath${GOFLAGS:+ $GOFLAGS}"
# With lint (make lint runs go vet ./... in full), go test's own vet pass
# would check every package a second time, in each of the processes below.
vet=
[[ " $* " == *" lint "* ]] && vet=-vet=off
race=(playbooks ssh environments internal/worker output tui)

tmp=$(mktemp -d)
chmod 755 "$tmp"
pids=()
logs=()
names=()
began=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT

start() { # start NAME COMMAND...: run it in the background, output to a log
	local name=$1
	shift
	"$@" >"$tmp/$name.log" 2>&1 &
	pids+=($!)
	logs+=("$tmp/$name.log")
	names+=("$name")
	began+=("$SECONDS")
}

for arg in "$@"; do
	case $arg in
	lint) start lint "$make" --no-print-directory lint ;;
	nonroot) ;;
	*)
		echo "usage: scripts/test.sh [lint] [nonroot]" >&2
		exit 2
		;;
	esac
done

# tasks first, in a process of its own: its adversarial lab tests (racers
# swapping paths while a module runs as root) are the longest package, and
# in the others' process they began only after compiles and other labs.
# They run in parts, each on a lab of its own; -parallel (default 4, not
# go test's one per CPU) lets four at once share the CPU with the rest of
# make test; more would leave each racer too little of it to race a call.
start tasks $go test $vet -count=1 -parallel "${TASKS_PARALLEL:-4}" -timeout "$timeout" ./tasks

# The race builds first (-run '^$': every binary built, no test run), so
# that internal/cli's other tests can start once they are done; a build
# that fails shows in the runs after it.
start race sh -c "$go test $vet -race -count=1 -run '^\$' ${race[*]/#/./} ./internal/cli >/dev/null 2>&1; touch $tmp/race.built; $go test $vet -race -count=1 -timeout $timeout ${race[*]/#/./} && $go test $vet -race -short -count=1 -timeout $timeout ./internal/cli"
race_pid=$!

# internal/cli: the names of the tests that call t.Parallel() (within the
# first lines of their body), for -run and -skip.
mapfile -t par < <(awk '
/^func Test[A-Za-z0-9_]*\(t \*testing\.T\)/ { match($0, /Test[A-Za-z0-9_]*/); name = substr($0, RSTART, RLENGTH); n = 0; next }
name != "" { n++; if ($0 ~ /t\.Parallel\(\)/) { print name; name = "" } else if (n > 8 || $0 ~ /^}/) name = "" }
' internal/cli/*_test.go | sort -u)
runre() { local IFS='|'; echo "^($*)\$"; }
clitest() { # clitest ARGS...: internal/cli's test binary, in its directory
	(cd internal/cli && "$tmp/cli.test" -test.count=1 -test.timeout "$timeout" "$@")
}
cli() {
	$go test $vet -c -o "$tmp/cli.test" ./internal/cli || return
	local rc=0 t0=$SECONDS t1 t2
	{
		r=0
		clitest -test.parallel "$parallel" -test.run "$(runre "${par[@]}")" || r=$?
		echo $((SECONDS - t0)) >"$tmp/cli-parallel.secs"
		exit $r
	} >"$tmp/cli-parallel.log" 2>&1 &
	local parallel_pid=$!
	# The other tests (TestZeroDowntimeUnderLoad's load among them) start
	# once the race builds are done, not in the thick of every compile.
	while [ ! -e "$tmp/race.built" ] && kill -0 "$race_pid" 2>/dev/null; do sleep 1; done
	t1=$SECONDS
	clitest -test.skip "$(runre "${par[@]}")" >"$tmp/cli-serial.log" 2>&1 || rc=1
	t2=$((SECONDS - t1))
	wait $parallel_pid || rc=1
	echo "=== internal/cli, the parallel tests (-parallel $parallel, $(cat "$tmp/cli-parallel.secs" 2>/dev/null || echo ?) s):"
	cat "$tmp/cli-parallel.log"
	echo "=== internal/cli, the other tests ($t2 s, from $((t1 - t0)) s on):"
	cat "$tmp/cli-serial.log"
	[ $rc = 0 ] && echo "ok  	$mod/internal/cli" || echo "FAIL	$mod/internal/cli"
	return $rc
}
start cli cli

others=$($go list ./... | grep -vxF -e "$mod/internal/cli" -e "$mod/tasks" $(printf -- "-e $mod/%s " "${race[@]}"))
# -p: packages at once (go test's default is the number of CPUs); the lab,
# tasks and docs packages mostly wait on sshd and a browser, and with two
# at a time the tasks package began only after the others' labs ended.
start others $go test $vet -count=1 -p "${TEST_PACKAGES:-6}" -timeout "$timeout" $others

if [[ " $* " == *" nonroot "* ]]; then
	start nonroot "$make" --no-print-directory test-nonroot
fi

# Wait for whichever ends first, to know each one's wall time.
rc=0
took=()
left=("${pids[@]}")
while [ ${#left[@]} -gt 0 ]; do
	ended=
	wait -n -p ended "${left[@]}" || rc=1
	if [ -z "$ended" ]; then # not ours (cannot happen): wait for the rest
		for p in "${left[@]}"; do wait "$p" || rc=1; done
		break
	fi
	rest=()
	for k in "${!pids[@]}"; do
		if [ "${pids[k]}" = "$ended" ]; then
			took[k]=$((SECONDS - began[k]))
		elif [[ " ${left[*]} " == *" ${pids[k]} "* ]]; then
			rest+=("${pids[k]}")
		fi
	done
	left=("${rest[@]}")
done
for k in "${!pids[@]}"; do
	echo "=== ${names[k]} (${took[k]:-?} s)"
	cat "${logs[k]}"
done
pids=()
exit $rc
