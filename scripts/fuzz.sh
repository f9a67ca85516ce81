#!/usr/bin/env bash
# kt_ingest's JSON-to-row conversion (the kt_ingest_parse crate, ingest-parse/) on its own: its
# unit tests, every kept crash case of the cargo-fuzz target (fuzz/regressions/, each must pass),
# then the target itself for a bounded number of runs from the seeds and the kept cases. A crash
# stops the suite with the input's path; keep it in fuzz/regressions/ once fixed.
#   KT_FUZZ_RUNS=N    inputs to try (default 2,000,000: about a minute on 2 cores)
#   KT_FUZZ_SEED=N    libFuzzer's seed (default: a new one, printed, to rerun a failure)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
runs="${KT_FUZZ_RUNS:-2000000}"
seed="${KT_FUZZ_SEED:-$(( (RANDOM << 15 | RANDOM) + 1 ))}"
work="$PWD/build/fuzz"
mkdir -p "$work/corpus" "$work/artifacts"

echo "-- unit tests of ingest-parse"
cargo test --quiet -p kt_ingest_parse

cd fuzz
# stable Rust: no sanitizer (-s none; address sanitizing needs nightly), libFuzzer's coverage only
fuzz() { cargo fuzz run --sanitizer none ingest_records "$@"; }
echo "-- the kept crash cases and seeds, once each"
fuzz regressions seeds -- -runs=0
echo "-- fuzzing: $runs runs, seed $seed (KT_FUZZ_SEED=$seed to repeat)"
# the corpus of earlier local runs (build/, not kept) comes first: new inputs are written there
fuzz "$work/corpus" seeds regressions -- -runs="$runs" -seed="$seed" -max_len=65536 \
    -dict=ingest.dict -artifact_prefix="$work/artifacts/" -print_final_stats=1 2>&1 \
    | grep -v -e '^#[0-9]*\s*\(NEW\|REDUCE\|pulse\)' -e '^"' -e '^###' || {
    echo "fuzz: the target failed; the input is in $work/artifacts/ (copy it to fuzz/regressions/ once fixed)" >&2
    exit 1
}
