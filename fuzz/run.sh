#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer (libfuzzer-sys) on the stable toolchain.
#
# Usage: bash fuzz/run.sh [--seconds N] [--smoke] [target...]
#   --seconds N  run each target for N seconds (default 180)
#   --smoke      5 seconds per target, for CI, built unoptimised (the dev profile): a
#                product change then rebuilds in about a minute instead of four, and overflow
#                checks are on
#   targets      template template_go admission check plan (default: all)
#
# Builds the targets with sanitizer-coverage (rustc -C flags, no nightly), then runs each on its
# seed corpus in fuzz/corpus/<target>. New inputs go to $CARGO_TARGET_DIR/fuzz/corpus/<target>
# (kept between runs, not committed); a crash is written to $CARGO_TARGET_DIR/fuzz/artifacts/
# and fails the run. Prints executions and coverage per target at the end.
set -euo pipefail

seconds=180
profile=release
targets=()
while (( $# )); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --smoke) seconds=5; profile=dev; shift ;;
    -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
(( ${#targets[@]} )) || targets=(template template_go admission check plan)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
work=$target_dir/fuzz
triple=$(rustc -vV | sed -n 's/^host: //p')

# What cargo-fuzz passes, minus its nightly-only sanitizer flag: every flag here is stable.
flags=(
  -Cpasses=sancov-module
  -Cllvm-args=-sanitizer-coverage-level=4
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
  -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares
  --cfg fuzzing
)
# --target keeps the flags off build scripts and proc macros (they run on the host).
RUSTFLAGS="${flags[*]}" CARGO_TARGET_DIR=$work/target \
  cargo build --profile "$profile" --locked -q --manifest-path "$here/Cargo.toml" --target "$triple" \
  $(printf -- '--bin %s ' "${targets[@]}")
bin=$work/target/$triple/$([[ $profile == dev ]] && echo debug || echo "$profile")

for t in "${targets[@]}"; do
  if [[ $t == template_go ]]; then
    command -v go >/dev/null 2>&1 || { echo "fuzz: template_go needs Go on PATH" >&2; exit 1; }
    (cd "$root/shared/gotemplate/tests/oracle" && go build -trimpath -o "$work/gotemplate-oracle" .)
    export OSARTIFACT_GO_ORACLE=$work/gotemplate-oracle
  fi
done

summary=()
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
  log=$work/$t.log
  echo "==> fuzz $t for ${seconds}s" >&2
  rc=0
  # -timeout: one input taking longer is a hang (reported like a crash).
  # -rss_limit_mb: the targets allocate little; more is a leak or a blow-up.
  "$bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" \
    "$work/corpus/$t" "$here/corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  cov=$(grep -oE '(DONE|pulse|NEW|REDUCE|INITED) +cov: [0-9]+ ft: [0-9]+' "$log" | tail -n1 \
    | sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+)/\1 \2/' || true)
  [[ -n $cov ]] || cov="? ?"
  corpus=$(find "$work/corpus/$t" -type f | wc -l)
  if (( rc != 0 )); then
    failed=1
    echo "fuzz $t FAILED (exit $rc); the input is in $work/artifacts/$t/" >&2
    grep -E 'panicked|ERROR: libFuzzer|SUMMARY' "$log" | head -n 5 >&2 || true
  fi
  summary+=("$(printf '%-12s %6ss %10s %8s %8s %8s  %s' "$t" "$seconds" "${execs:-?}" \
    "${cov% *}" "${cov#* }" "$corpus" "$( ((rc)) && echo CRASH || echo ok)")")
done

{
  echo
  printf '%-12s %7s %10s %8s %8s %8s  %s\n' target time execs edges features corpus result
  printf '%s\n' "${summary[@]}"
} >&2
exit "$failed"
