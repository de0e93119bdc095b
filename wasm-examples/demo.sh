#!/usr/bin/env bash
# make demo: runs Ferry's example jobs through `ferry run` on embedded
# defaults (no cloud account, no server) and says what happened.
set -uo pipefail
FERRY=${1:-bin/ferry}
BUILD=${2:-wasm-examples/build}
WAT=${3:-wasm-examples/wat}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cache="$work/cache"
state="$work/state.db"

bold=$'\e[1m'; dim=$'\e[2m'; green=$'\e[32m'; red=$'\e[31m'; off=$'\e[0m'
[ -t 1 ] || { bold=; dim=; green=; red=; off=; }

step() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
show() { printf '%s$ %s%s\n' "$dim" "$*" "$off"; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# run_ok CMD...: runs CMD, prints its output, and fails the demo if it fails.
pretty() { local s="$*"; s=${s/#$FERRY/ferry}; s=${s// --cache-dir $cache --state $state -q/}; s=${s//$work\//}; echo "$s"; }
run_ok() {
  show "$(pretty "$@")"
  local out rc
  out=$("$@" 2>&1); rc=$?
  printf '%s\n' "$out"
  if [ $rc -ne 0 ]; then printf '%sunexpected failure (exit %d)%s\n' "$red" $rc "$off"; exit 1; fi
}
# run_fail CMD...: runs CMD, which must fail; prints Ferry's one-line error.
run_fail() {
  show "$(pretty "$@")"
  local out rc
  out=$("$@" 2>&1); rc=$?
  printf '%s\n' "$out"
  if [ $rc -eq 0 ]; then printf '%sexpected a failure, got success%s\n' "$red" "$off"; exit 1; fi
  printf '%s-> refused cleanly, exit status %d%s\n' "$green" $rc "$off"
}

F="$FERRY"
common=(--cache-dir "$cache" --state "$state" -q)

step "Ferry $("$F" version | awk '/^ferry/{print $2}') — one job, compiled once to WebAssembly, run in-process"
show "ferry inspect $BUILD/incredible-squaring.wasm   (imports elided)"
"$F" inspect "$BUILD/incredible-squaring.wasm" | sed '/^imports/,$d'
"$F" inspect "$BUILD/incredible-squaring.wasm" | grep -c 'wasi_snapshot_preview1\|ferry\.' | xargs printf 'imports: %s (WASI preview 1 and ferry.*)\n'


step "The canonical blueprint job: incredible-squaring (Go, reactor shape)"
t0=$(date +%s%N)
run_ok "$F" run "$BUILD/incredible-squaring.wasm" --input 12345 "${common[@]}"
cold=$(ms "$t0")
t0=$(date +%s%N)
run_ok "$F" run "$BUILD/incredible-squaring.wasm" --input 18446744073709551615 "${common[@]}"
warm=$(ms "$t0")
echo "first process: ${cold} ms (compiles the module); second process: ${warm} ms (compilation cache on disk)"

step "The same job source built as a plain WASI command (stdin in, stdout out)"
echo -n 12345 | { show "echo -n 12345 | ferry run incredible-squaring-cmd.wasm"; "$F" run "$BUILD/incredible-squaring-cmd.wasm" "${common[@]}"; echo; }

step "A result object for scripts (--json): output, duration, memory used"
run_ok "$F" run "$BUILD/sha256.wasm" --input "hello ferry" --json "${common[@]}"

step "JSON in, JSON out (encoding/json inside the guest)"
run_ok "$F" run "$BUILD/jsontransform.wasm" --input '{"items":[{"name":"tea","price":2.5,"qty":2},{"name":"bun","price":1.25,"qty":4}]}' "${common[@]}"

step "State outlives the instance: a counter in the embedded bbolt store, two separate processes"
run_ok "$F" run "$BUILD/counter.wasm" "${common[@]}"
run_ok "$F" run "$BUILD/counter.wasm" --input 41 "${common[@]}"

step "Any WASI program runs unchanged: a WAT 'cat' with no Ferry marker"
run_ok "$F" run "$WAT/cat.wasm" --input "plain WASI, no SDK" "${common[@]}"

step "Bad jobs get a typed, one-line error, and never take the host down"
run_fail "$F" run "$WAT/loop.wasm" --timeout 200ms "${common[@]}"
run_fail "$F" run "$WAT/membomb.wasm" --memory 16 "${common[@]}"
run_fail "$F" run "$WAT/stackoverflow.wasm" "${common[@]}"
run_fail "$F" run "$WAT/bigoutput.wasm" "${common[@]}"
run_fail "$F" run "$BUILD/fetcher.wasm" --input http://127.0.0.1:1/ "${common[@]}"
run_fail "$F" run "$WAT/abiv99.wasm" "${common[@]}"
run_fail "$F" run README.md "${common[@]}"

step "Where would these jobs run? ferry build + ferry plan against a deployment policy"
bp="$work/bp"; mkdir -p "$bp/jobs"
cp "$BUILD"/{incredible-squaring,sha256,counter,fetcher}.wasm "$bp/jobs/"
cat > "$bp/blueprint.toml" <<'TOML'
[blueprint]
name = "demo"

[blueprint.serverless]
latency_threshold = 100   # ms

[blueprint.jobs.square]
source = "jobs/incredible-squaring.wasm"
inline_samples = ["12345", "18446744073709551615"]

[blueprint.jobs.sha256]
source = "jobs/sha256.wasm"
inline_samples = ["hello ferry"]

[blueprint.jobs.counter]
source = "jobs/counter.wasm"
inline_samples = ["1"]

[blueprint.jobs.fetcher]
source = "jobs/fetcher.wasm"
allow_hosts = ["api.example.com"]   # no samples: reported as unprofiled
TOML
show "ferry build demo-blueprint   (four prebuilt modules, profiled on their samples)"
"$F" build "$bp" --cache-dir "$cache" -o "$work/demo.bundle" 2>&1 | tail -1
policy="$work/deployment-policy.json"
show "ferry cloud policy --serverless true --faas-provider aws-lambda --faas-regions us-east-1,eu-west-1"
"$F" cloud policy --policy "$policy" --serverless true --faas-provider aws-lambda --faas-regions us-east-1,eu-west-1 >/dev/null || exit 1
show "ferry cloud policy --faas-provider cloudflare-workers --faas-cf-account 0123…cdef --faas-add"
"$F" cloud policy --policy "$policy" --faas-provider cloudflare-workers --faas-cf-account 0123456789abcdef0123456789abcdef --faas-add >/dev/null || exit 1
run_ok "$F" plan "$work/demo.bundle" --policy "$policy" --rate 20/s

printf '\n%sDemo complete.%s Try: %sbin/ferry run --help%s\n' "$green" "$off" "$bold" "$off"
