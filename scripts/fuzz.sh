#!/usr/bin/env bash
# Bounded fuzzing of sekisho's parsers (cargo-fuzz / libFuzzer), as CI runs it: every target in
# fuzz/fuzz_targets for FUZZ_SECONDS (default 30) from the committed seed corpus, copied into a
# scratch corpus so runs never grow the committed one. Exits non-zero on any crash and prints
# the crash input's path. Works on the stable toolchain (no sanitizer; RUSTC_BOOTSTRAP for the
# flags cargo-fuzz passes).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-30}"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}-fuzz}"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version 2>/dev/null | grep -q '0.13.2'; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
cargo fuzz build -s none -O
status=0
for src in fuzz_targets/*.rs; do
  t="$(basename "$src" .rs)"
  work="work/$t"
  rm -rf "$work" && mkdir -p "$work" artifacts/"$t"
  cp corpus/"$t"/* "$work"/ 2>/dev/null || true
  log="$(mktemp)"
  if cargo fuzz run -s none -O "$t" "$work" -- -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix=artifacts/"$t"/ >"$log" 2>&1; then
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
    rate="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
    echo "fuzz $t: ${runs} executions in ${seconds}s (${rate}/s), corpus $(ls "$work" | wc -l) inputs, no crash"
  else
    echo "fuzz $t: CRASH"; tail -n 40 "$log"; ls -1 artifacts/"$t"/ | sed "s|^|  input: fuzz/artifacts/$t/|"
    status=1
  fi
  rm -f "$log"
done
exit $status
