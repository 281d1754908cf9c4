#!/usr/bin/env bash
# compare.sh — run deepgo's benchmark suite and the PyTorch/OpenBLAS reference
# alternately, then print per-workload medians and deepgo/reference ratios as
# a markdown table (ratio > 1 means deepgo is better; for latency and memory
# the ratio is reference/deepgo).
#
# Usage: bench/compare.sh [-n ROUNDS] [-d SECONDS] [-t THREADS] [-f FILTER] [-o DIR]
#   -n ROUNDS   rounds of deepgo, NumPy and PyTorch runs, alternating (default 3, at least 3)
#   -d SECONDS  timed duration of each workload (default 2)
#   -t THREADS  threads of the model workloads on both sides (default 2)
#   -f FILTER   workload filter, as bench.Options.Filter (default: all)
#   -o DIR      keep the raw JSON results in DIR (default: a temporary directory, removed)
#
# Each round runs, in turn:
#   deepgo   go-built `deepgo bench --json` (model workloads on THREADS Sgemm threads)
#   numpy    SGEMM through NumPy and OpenBLAS, with OPENBLAS_CORETYPE and
#            OPENBLAS_L2_SIZE unset for that command only
#   torch    torch.mm SGEMM and the model workloads, torch.set_num_threads(THREADS),
#            OPENBLAS_NUM_THREADS=1
# Models use MNIST from the Go module cache when it is there (both sides read
# the same files), random images otherwise.
set -euo pipefail

rounds=3 duration=2 threads=2 filter="" outdir=""
while getopts "n:d:t:f:o:h" opt; do
	case $opt in
	n) rounds=$OPTARG ;;
	d) duration=$OPTARG ;;
	t) threads=$OPTARG ;;
	f) filter=$OPTARG ;;
	o) outdir=$OPTARG ;;
	*) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
if [ "$rounds" -lt 3 ]; then
	echo "compare.sh: at least 3 rounds (-n $rounds)" >&2
	exit 2
fi

cd "$(dirname "$0")/.."
py=/usr/bin/python3
if [ -z "$outdir" ]; then
	outdir=$(mktemp -d)
	trap 'rm -rf "$outdir"' EXIT
fi
mkdir -p "$outdir"

go build -o "$outdir/deepgo" ./cmd/deepgo

mnist="$(go env GOMODCACHE)/github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63/data"
if [ -f "$mnist/train-images-idx3-ubyte.gz" ]; then
	godata=(--data mnist --mnist-dir "$mnist")
	pydata=(--data mnist --mnist-dir "$mnist")
else
	echo "compare.sh: MNIST not in the module cache; both sides use random images" >&2
	godata=(--data random)
	pydata=(--data random)
fi

for i in $(seq 1 "$rounds"); do
	echo "compare.sh: round $i/$rounds: deepgo" >&2
	"$outdir/deepgo" bench --json -q --duration "${duration}s" --threads "$threads" --filter "$filter" "${godata[@]}" >"$outdir/deepgo_$i.json"
	echo "compare.sh: round $i/$rounds: numpy/OpenBLAS" >&2
	# A filter that selects no SGEMM makes this part exit 1: no results.
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" bench/torch_ref.py --json --part numpy \
		--duration "$duration" --filter "$filter" >"$outdir/numpy_$i.json" 2>>"$outdir/ref.log" ||
		echo '{"results": []}' >"$outdir/numpy_$i.json"
	echo "compare.sh: round $i/$rounds: pytorch" >&2
	OPENBLAS_NUM_THREADS=1 "$py" bench/torch_ref.py --json --part torch --threads "$threads" \
		--duration "$duration" --filter "$filter" "${pydata[@]}" >"$outdir/torch_$i.json" 2>>"$outdir/ref.log" ||
		echo '{"results": []}' >"$outdir/torch_$i.json"
done

"$py" - "$outdir" "$rounds" <<'EOF'
import json, os, statistics, sys

outdir, rounds = sys.argv[1], int(sys.argv[2])

def load(kind):
    runs = []
    for i in range(1, rounds + 1):
        p = os.path.join(outdir, f"{kind}_{i}.json")
        if os.path.exists(p):
            with open(p) as f:
                runs.append(json.load(f))
    return runs

def collect(runs):
    vals, meta = {}, {}
    for r in runs:
        for x in r.get("results", []):
            vals.setdefault(x["name"], []).append(x["value"])
            meta[x["name"]] = x
    return vals, meta

dg_runs, np_runs, th_runs = load("deepgo"), load("numpy"), load("torch")
dg, dgmeta = collect(dg_runs)
npv, _ = collect(np_runs)
th, _ = collect(th_runs)

# target: (minimum ratio), ("abs", maximum value) or ("min", minimum value)
targets = {
    "cnn_train_b32": 1.5, "cnn_train_b128": 1.2, "mlp_train_b64": 1.5,
    "cnn_infer_b1": 2.0, "cnn_infer_b256": 1.5, "peak_rss_models": 2.0,
}
def target(name):
    if name.endswith("_scaling"):
        return ("min", 1.7, "≥ 1.7 (deepgo)")
    if name.startswith("sgemm_") and name.endswith("_t1"):
        return ("ratio", 0.9, "≥ 0.9×")
    if name.endswith("_allocs"):
        return ("abs", 10, "≤ 10")
    if name == "cnn_infer_b1":
        return ("ratio", 2.0, "latency ≤ 0.5×")
    if name == "peak_rss_models":
        return ("ratio", 2.0, "RSS ≤ 0.5×")
    if name in targets:
        return ("ratio", targets[name], f"≥ {targets[name]}×")
    return None

def fmt(v):
    if v is None:
        return "–"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"

def cell(vs):
    if not vs:
        return "–", None
    m = statistics.median(vs)
    return f"{fmt(m)} ({fmt(min(vs))}–{fmt(max(vs))})", m

def ratio(d, r, higher):
    if d is None or r is None or d == 0 or r == 0:
        return None
    return d / r if higher else r / d

d0 = dg_runs[0] if dg_runs else {}
t0 = th_runs[0] if th_runs else {}
n0 = np_runs[0] if np_runs else {}
print(f"- deepgo: {d0.get('version', '?')}, model data: {d0.get('data', '–')}")
print(f"- PyTorch side: {t0.get('version', '–')}, model data: {t0.get('data', '–')}")
print(f"- NumPy SGEMM side: {n0.get('version', '–')}")
print(f"- {rounds} rounds, alternating; cells are medians with (min–max) over the rounds")
print()
print("| workload | unit | deepgo | reference | ref. | deepgo/ref (↑ better) | target | met |")
print("|---|---|---|---|---|---|---|---|")
order = []
for r in dg_runs:
    for x in r.get("results", []):
        if x["name"] not in order:
            order.append(x["name"])
for name in order:
    m = dgmeta[name]
    dcell, dmed = cell(dg[name])
    rows = []
    if name.endswith("_scaling"):
        rows.append(("OpenBLAS (NumPy)", npv.get(name, [])))
    elif name.startswith("sgemm_"):
        rows.append(("OpenBLAS (NumPy)", npv.get(name, [])))
        rows.append(("torch.mm", th.get(name.replace("sgemm_", "torch_mm_"), [])))
    elif name.endswith("_allocs"):
        rows.append(("–", []))
    else:
        rows.append(("PyTorch", th.get(name, [])))
    for k, (refname, rv) in enumerate(rows):
        rcell, rmed = cell(rv)
        q = ratio(dmed, rmed, m.get("higher_is_better", True))
        t = target(name) if k == 0 else None
        tcell, met = "", ""
        if t:
            tcell = t[2]
            if t[0] == "abs":
                met = "yes" if dmed is not None and dmed <= t[1] else "no"
            elif t[0] == "min":
                met = "yes" if dmed is not None and dmed >= t[1] else "no"
            elif q is not None:
                met = "yes" if q >= t[1] else "no"
        label = name if k == 0 else f"{name} vs torch.mm"
        print(f"| {label} | {m['unit']} | {dcell} | {rcell} | {refname} | {fmt(q)} | {tcell} | {met} |")
EOF
echo >&2
echo "compare.sh: raw results in $outdir" >&2
