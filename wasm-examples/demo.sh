#!/usr/bin/env bash
# make demo: Ferry end to end on this machine with nothing but Go and bash.
# A job runs in-process; a blueprint is built into a bundle; `ferry host
# serve` on loopback plays a remote FaaS provider; the policy names it and
# `ferry plan` says where each job may run; `ferry serve` deploys and routes
# every call; `ferry invoke` and `ferry jobs` say where each call ran, why,
# how long it took and what it cost. Both servers are stopped on exit, also
# when a step fails, and a failed step fails the demo.
set -uo pipefail
F=${1:-bin/ferry}
BUILD=${2:-wasm-examples/build}
WAT=${3:-wasm-examples/wat}
work=$(mktemp -d)
cache="$work/cache"
host_pid='' serve_pid=''

bold=$'\e[1m'; dim=$'\e[2m'; green=$'\e[32m'; red=$'\e[31m'; off=$'\e[0m'
[ -t 1 ] || { bold=; dim=; green=; red=; off=; }

step() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
show() { printf '%s$ %s%s\n' "$dim" "$*" "$off"; }
fail() { printf '%sdemo failed: %s%s\n' "$red" "$*" "$off"; exit 1; }

# stop NAME PID: SIGTERM, then wait; a server that does not exit 0 fails the demo.
stop() {
  local rc
  kill -TERM "$2" 2>/dev/null || return 0
  wait "$2"; rc=$?
  [ "$rc" -eq 0 ] || { printf '%s%s exited with status %d%s\n' "$red" "$1" "$rc" "$off"; return 1; }
}
cleanup() {
  local rc=$? log
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ]; then
    for log in serve host; do
      [ -s "$work/$log.log" ] && { echo "-- the end of $log.log:"; tail -n 5 "$work/$log.log"; }
    done
  fi
  [ -n "$serve_pid" ] && { stop "ferry serve" "$serve_pid" || rc=1; }
  [ -n "$host_pid" ] && { stop "ferry host serve" "$host_pid" || rc=1; }
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_url LOG PID WHAT: the URL a server logs once it listens (60 s at most).
wait_url() {
  local line
  for _ in $(seq 600); do
    if line=$(grep -m1 -o "msg=\"$3 listening\" url=http://[^ ]*" "$1"); then echo "${line##*url=}"; return 0; fi
    kill -0 "$2" 2>/dev/null || { cat "$1" >&2; return 1; }
    sleep 0.1
  done
  return 1
}

# must CMD...: runs CMD and prints its output; a failure fails the demo.
must() {
  local out rc
  out=$("$@" 2>&1); rc=$?
  printf '%s\n' "$out"
  [ "$rc" -eq 0 ] || fail "ferry ${2:-} exited with status $rc"
}
# refused WANT CMD...: CMD must fail with exit status WANT; prints its one-line error.
refused() {
  local want=$1 out rc; shift
  out=$("$@" 2>&1); rc=$?
  [ "$rc" -eq "$want" ] || { printf '%s\n' "$out"; fail "expected exit status $want, got $rc"; }
  printf '%s %s-> exit status %d%s\n' "$out" "$green" "$rc" "$off"
}
# explain ARGS...: `ferry invoke ARGS --explain`: the output, then the decision.
explain() {
  local out
  out=$("$F" invoke "$@" --explain 2>"$work/explain") || { cat "$work/explain"; fail "ferry invoke $1"; }
  printf '%s\n' "$out"; cat "$work/explain"
}
# calls JOB INPUT...: one `ferry invoke` per input; prints a line per call:
# the output (cut short), then where it ran, why, how long, what it cost.
calls() {
  local job=$1 in out line; shift
  for in in "$@"; do
    out=$("$F" invoke "$job" --input "$in" 2>"$work/line") || { cat "$work/line"; fail "ferry invoke $job"; }
    line=$(<"$work/line")
    [ ${#out} -le 20 ] || out="${out:0:19}…"
    printf '  %-20s  %s\n' "$out" "$line"
  done
}

step "Ferry $("$F" version | awk '/^ferry/{print $2}'): a job compiled once to WebAssembly, run in-process"
show "ferry inspect incredible-squaring.wasm"
"$F" inspect "$BUILD/incredible-squaring.wasm" | grep -E '^(shape|abi version|capabilities|pure) ' || fail "ferry inspect"
show "ferry run incredible-squaring.wasm --input 12345"
must "$F" run "$BUILD/incredible-squaring.wasm" --input 12345 --cache-dir "$cache/compile" --state memory -q
show "ferry run loop.wasm --timeout 200ms      (a bad job gets a typed one-line error)"
refused 1 "$F" run "$WAT/loop.wasm" --timeout 200ms --cache-dir "$cache/compile" --state memory -q

step "A blueprint of five jobs, built into a bundle"
bp="$work/demo-blueprint"; mkdir -p "$bp/jobs"
cp "$BUILD"/{incredible-squaring,sha256,jsontransform,counter}.wasm "$WAT/cat.wasm" "$bp/jobs/" || fail "copy the example jobs"
cat > "$bp/blueprint.toml" <<'TOML'
[blueprint]
name = "demo"

[blueprint.serverless]
providers = ["custom"]          # a host speaking the custom FaaS protocol

[blueprint.jobs.square]         # pure and deterministic: may be hedged
source = "jobs/incredible-squaring.wasm"
inline_samples = ["12345", "18446744073709551615"]

[blueprint.jobs.sha256]
source = "jobs/sha256.wasm"
inline_samples = ["hello ferry"]
force_serverless = true         # always remote; this machine only as the fallback

[blueprint.jobs.jsontransform]
source = "jobs/jsontransform.wasm"
inline_samples = ['{"items":[{"name":"tea","price":2.5,"qty":2}]}']

[blueprint.jobs.counter]        # keeps state: local unless there is an external store
source = "jobs/counter.wasm"
inline_samples = ["1"]

[blueprint.jobs.cat]            # any WASI program, no Ferry SDK
source = "jobs/cat.wasm"
inline_samples = ["plain WASI"]
TOML
echo "square (Go, hedged), sha256 (Go, force_serverless), jsontransform (Go), counter (Go, stateful), cat (WAT)"
show "ferry build demo-blueprint"
"$F" build "$bp" --cache-dir "$cache" -o "$work/demo.bundle" >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "ferry build"; }
grep '^built' "$work/build.log" | sed "s|$work/||"

step "A remote host (ferry host serve on loopback plays the FaaS provider \"edge\"), the policy, the plan"
export FERRY_HOST_TOKEN FERRY_TOKEN
FERRY_HOST_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
FERRY_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
show "FERRY_HOST_TOKEN=… ferry host serve --listen 127.0.0.1:0 --data-dir host &"
"$F" host serve --listen 127.0.0.1:0 --data-dir "$work/host" --cache-dir "$cache/compile" 2>"$work/host.log" &
host_pid=$!
host_url=$(wait_url "$work/host.log" "$host_pid" "ferry host") || fail "ferry host serve did not start"
echo "listening at $host_url (bearer token required)"
policy="$work/deployment-policy.json"
show "ferry cloud policy --serverless true --faas-provider custom --faas-custom-endpoint $host_url --faas-name edge"
"$F" cloud policy --policy "$policy" --serverless true --faas-provider custom --faas-custom-endpoint "$host_url" \
  --faas-name edge >"$work/policy.txt" 2>&1 || { cat "$work/policy.txt"; fail "ferry cloud policy"; }
grep -v '^saved' "$work/policy.txt"
show "ferry plan demo.bundle      (the placement and the monthly projection left out)"
"$F" plan "$work/demo.bundle" --policy "$policy" >"$work/plan.txt" || { cat "$work/plan.txt"; fail "ferry plan"; }
sed -e '/^Monthly/,/^$/d' -e '/^Placement/,/^$/d' "$work/plan.txt"

step "The orchestrator: ferry serve deploys every job where the plan allows, then routes each call"
show "FERRY_TOKEN=… ferry serve --bundle demo.bundle --policy deployment-policy.json --listen 127.0.0.1:0 &"
"$F" serve --bundle "$work/demo.bundle" --policy "$policy" --listen 127.0.0.1:0 --data-dir "$work/serve" \
  --cache-dir "$cache/compile" 2>"$work/serve.log" &
serve_pid=$!
FERRY_SERVER=$(wait_url "$work/serve.log" "$serve_pid" "ferry serve") || fail "ferry serve did not start"
export FERRY_SERVER
grep '^  ' "$work/serve.log"
echo "listening at $FERRY_SERVER ($(grep -o 'startup=[^ ]*' "$work/serve.log" | head -1 | tr = ' '))"

step "Calls through ferry serve: the output, then where each call ran, why, how long, what it cost"
show "ferry invoke square --input 12345 --explain"
explain square --input 12345
show "ferry invoke JOB --input …      (FERRY_SERVER and FERRY_TOKEN are set)"
calls square 18446744073709551615 7
calls sha256 "hello ferry" "hello again"
calls jsontransform '{"items":[{"name":"bun","price":1.25,"qty":4}]}'
calls counter 1 41
calls cat "plain WASI, no SDK"
show "ferry invoke square --input twelve      (a job failure: returned at once, never re-run elsewhere)"
refused 1 "$F" invoke square --input twelve
show "ferry invoke nope"
refused 2 "$F" invoke nope

step "Many calls, then the summary: every job, its calls, where they ran, latency and cost"
show "ferry invoke square --input 12345 --repeat 500 --concurrency 8"
must "$F" invoke square --input 12345 --repeat 500 --concurrency 8
show "ferry jobs"
must "$F" jobs

step "Stopping both servers (SIGTERM: running calls finish first)"
stop "ferry serve" "$serve_pid" || exit 1
serve_pid=''
stop "ferry host serve" "$host_pid" || exit 1
host_pid=''
grep -q 'msg="ferry serve stopped"' "$work/serve.log" && grep -q 'msg="ferry host stopped"' "$work/host.log" ||
  fail "a server did not log that it stopped"
echo "ferry serve stopped, then ferry host serve; both exited with status 0"

printf '\n%sDemo complete.%s Next: %sbin/ferry invoke --help%s, %sbin/ferry jobs --help%s (--routes: what the router learned)\n' \
  "$green" "$off" "$bold" "$off" "$bold" "$off"
