#!/usr/bin/env bash
# Matcher throughput benchmark: complyd beside ripgrep and hyperscan on the
# same corpus and dictionaries, in one run. See BENCHMARKS.md.
#
#   bash benches/run.sh            # everything: 1k / 10k / 100k phrases, 5 runs each
#   QUICK=1 bash benches/run.sh    # 10k only, 1 run (for iteration)
#
# Environment:
#   RUNS=N         runs per measurement, median reported (default 5; QUICK: 1)
#   SIZES="1k 10k" dictionary sizes (default "1k 10k 100k"; QUICK: "10k")
#   CHUNK=BYTES    complyd/hyperscan chunk size, cut at line breaks (default 65536)
#   RG_CRATES=0    skip the extra row for ripgrep 15.2.0 built from crates.io
#   BENCH_DATA=DIR downloads and generated inputs (default target/bench-data; never committed)
#   CARGO_TARGET_DIR as usual for cargo.
#
# Installs what is missing: ripgrep (Debian package, else `cargo install`),
# PyPI jieba 0.42.1, OpenCC 1.4.2 and hyperscan 0.9.1 (into a venv under the
# data directory; if hyperscan does not install, that is recorded and the run
# goes on), the npm package chinese-poetry 2.0.1 and 11 Debian documentation
# packages (downloaded and unpacked, not installed).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DATA=${BENCH_DATA:-$ROOT/target/bench-data}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    RUNS=${RUNS:-1}
    SIZES=${SIZES:-10k}
else
    RUNS=${RUNS:-5}
    SIZES=${SIZES:-1k 10k 100k}
fi
CHUNK=${CHUNK:-65536}
RG_CRATES=${RG_CRATES:-1}
RG_CRATES_VERSION=15.2.0
DEBS="debian-reference-zh-cn debian-faq-zh-cn maint-guide-zh-cn debian-edu-doc-zh-cn
      debian-edu-doc-legacy-zh-cn gimp-help-zh-cn libreoffice-help-zh-cn manpages-zh
      kicad-doc-zh linuxcnc-doc-zh-cn lilypond-doc-html-zh"

SUDO=
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
say() { printf '\n== %s\n' "$*" >&2; }
start=$(date +%s)
mkdir -p "$DATA"

# ---------------------------------------------------------------- tools
say "tools"
apt_updated=0
apt_update() {
    if [ "$apt_updated" = 0 ]; then $SUDO apt-get update -qq || true; apt_updated=1; fi
}
if ! command -v rg >/dev/null; then
    if ! apt-cache policy ripgrep 2>/dev/null | grep -q 'Candidate: [0-9]'; then apt_update; fi
    if apt-cache policy ripgrep 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        $SUDO apt-get install -y -qq ripgrep >&2
    else
        cargo install ripgrep --locked >&2
    fi
fi
RG=$(command -v rg)
RG_LABEL="ripgrep $(rg --version | head -1 | awk '{print $2}')"
[ "$(dpkg-query -W -f='${Status}' ripgrep 2>/dev/null)" = "install ok installed" ] && RG_LABEL="$RG_LABEL (Debian)"

RG2=
if [ "$RG_CRATES" = 1 ]; then
    RG2=$DATA/cargo-root/bin/rg
    if ! "$RG2" --version 2>/dev/null | grep -q "ripgrep $RG_CRATES_VERSION"; then
        # Its own target dir: no lock shared with the project's builds.
        CARGO_TARGET_DIR=$DATA/cargo-build cargo install ripgrep --locked --version "$RG_CRATES_VERSION" \
            --root "$DATA/cargo-root" >&2 || RG2=
    fi
    [ -n "$RG2" ] && [ "$("$RG2" --version | head -1)" = "$(rg --version | head -1)" ] && RG2=
fi

VENV=$DATA/venv
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" >&2
fi
PY=$VENV/bin/python
if ! "$PY" -c 'import importlib.metadata as m, sys; sys.exit(not (m.version("jieba") == "0.42.1" and m.version("OpenCC") == "1.4.2"))' 2>/dev/null; then
    "$PY" -m pip install -q jieba==0.42.1 OpenCC==1.4.2 >&2
fi
HS_OK=1
if ! "$PY" -c 'import hyperscan' 2>/dev/null; then
    "$PY" -m pip install -q hyperscan==0.9.1 >"$DATA/hyperscan-install.log" 2>&1 || HS_OK=0
    "$PY" -c 'import hyperscan' 2>/dev/null || HS_OK=0
fi

# ---------------------------------------------------------------- inputs
say "inputs in $DATA"
if [ ! -f "$DATA/chinese-poetry-2.0.1.tgz" ]; then
    (cd "$DATA" && npm pack --silent chinese-poetry@2.0.1 >&2)
fi
mkdir -p "$DATA/debs"
if ! ls "$DATA"/debs/*.deb >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    (cd "$DATA/debs" && { apt-get download $DEBS >&2 || { apt_update; apt-get download $DEBS >&2; }; })
fi
"$PY" benches/prepare.py "$DATA"

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
DICTS=()
for s in $SIZES; do DICTS+=(--dict "$DATA/dict-$s.txt"); done
RESULTS=$DATA/results.tsv
: >"$RESULTS"

# ---------------------------------------------------------------- runs
say "complyd (cargo bench, release profile)"
cargo bench --bench matcher -- --corpus "$DATA/corpus.txt" "${DICTS[@]}" --runs "$RUNS" --chunk "$CHUNK" \
    | tee -a "$RESULTS"

say "$RG_LABEL"
"$PY" benches/rg_bench.py --rg "$RG" --label "$RG_LABEL" --corpus "$DATA/corpus.txt" --empty "$DATA/empty.txt" \
    "${DICTS[@]}" --runs "$RUNS" | tee -a "$RESULTS"
if [ -n "$RG2" ]; then
    say "ripgrep $RG_CRATES_VERSION (crates.io)"
    "$PY" benches/rg_bench.py --rg "$RG2" --label "ripgrep $RG_CRATES_VERSION (crates.io)" \
        --corpus "$DATA/corpus.txt" --empty "$DATA/empty.txt" "${DICTS[@]}" --runs "$RUNS" | tee -a "$RESULTS"
fi

if [ "$HS_OK" = 1 ]; then
    say "hyperscan (PyPI $("$PY" -c 'import importlib.metadata as m; print(m.version("hyperscan"))'))"
    "$PY" benches/hyperscan_bench.py --corpus "$DATA/corpus.txt" "${DICTS[@]}" --runs "$RUNS" --chunk "$CHUNK" \
        | tee -a "$RESULTS"
else
    say "hyperscan did not install; see $DATA/hyperscan-install.log"
    printf 'RESULT\thyperscan-unavailable\tpip install hyperscan==0.9.1 failed (see %s)\n' \
        "$DATA/hyperscan-install.log" >>"$RESULTS"
fi

# ---------------------------------------------------------------- report
say "report"
{
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'),"\
         "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(uname -sr);" \
         "$(rustc --version | cut -d' ' -f1-2); date $(date -u +%Y-%m-%dT%H:%MZ);" \
         "load average before the runs: $LOAD0"
    sed 's/^/Inputs: /' "$DATA/inputs.txt"
    echo "Settings: RUNS=$RUNS (median), CHUNK=$CHUNK bytes, sizes: $SIZES, one thread"
    echo
    "$PY" benches/report.py "$RESULTS"
} | tee "$DATA/results.md"
echo >&2
echo "run.sh took $(( $(date +%s) - start )) s; tables also in $DATA/results.md" >&2
