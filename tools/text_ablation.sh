#!/usr/bin/env bash
# Text-classification ablation of issue #8 in one go: builds deepgo, runs the
# MLM pretraining (full default schedule) and the word2vec pretraining on the
# unlabeled financial corpus, then trains every ablation row on the four
# accuracy-target datasets in parallel jobs and prints a summary table.
#
#   tools/text_ablation.sh DATASETS_DIR OUT_DIR
#   (or DEEPGO_DATASETS=... OUT=... tools/text_ablation.sh)
#
# Rows: bow, lstm, lstm+word2vec, transformer from scratch (same body and
# 8k-WordPiece vocabulary size as the MLM encoder), transformer+MLM full
# fine-tune, transformer+MLM LoRA r=8; optional rows bow_w2v, bow_cng (bow with
# character 3-5-gram subwords) and ens (one ensemble package, members per
# dataset as chosen on --dev-split 0.15 of the training rows: sent bow_cng +
# lstm_w2v + lstm_w2v with max+mean pooling (seed 2); topic bow_cng + lstm_w2v;
# phrasebank bow_w2v + three lstm_w2v (seeds 1-3)). Datasets: twitter_financial_news_sentiment
# (train -> valid), twitter_financial_news_topic (train -> valid),
# financial_phrasebank AllAgree and 50Agree (stratified 80/20 split, seed 1;
# the 20% is never trained on). Nothing is tuned on the validation data: every
# row trains for a fixed number of epochs and is evaluated once at the end.
#
# Each job writes OUT_DIR/<dataset>__<row>.json (deepgo train text --json
# plus "row", "dataset", "wall_s" and "gomaxprocs"), its log next to it, and
# the pretraining jobs write OUT_DIR/pretrain_mlm.json / pretrain_w2v.json.
# OUT_DIR/summary.md is the table printed at the end.
#
# Environment (defaults in brackets):
#   PROCS [2]        GOMAXPROCS of every fine-tuning job
#   NCORES [nproc]   cores to fill; jobs are started while cores are free
#   MLM_PROCS [12]   GOMAXPROCS of the MLM pretraining (it runs while the
#                    rows that need no MLM package train on the other cores)
#   MLM_EPOCHS [2]   MLM epochs (2 = the default schedule, about 2,060 steps)
#   MLM_MAX_MINUTES [0]  stop MLM pretraining after this long (0: never)
#   W2V_EPOCHS [5]   word2vec epochs (the default)
#   LIMIT [0]        use only N training rows per dataset (a dry run) and
#   CORPUS_LIMIT [0] only N texts of the pretraining corpus
#   EPOCHS [""]      if set, every row trains this many epochs (dry run)
#   DATASETS_FILTER ["sent topic pb100 pb50"], ROWS_FILTER ["bow lstm
#                    lstm_w2v tr_scratch tr_mlm_full tr_mlm_lora8"]; the
#                    rows bow_w2v (bow, 128-dim, word2vec-initialised),
#                    bow_cng and ens are available but not in the default
#                    list (time budget)
#
# Time on a 16-core machine (estimated from single-core step times measured
# on the shared 2-core development machine, see README "Text
# classification"): word2vec about 2 CPU-minutes (1 core), MLM pretraining
# about 17 CPU-minutes (2-4 min wall on 12 threads), the 24 fine-tuning jobs
# about 90 CPU-minutes in all; about 8-9 minutes wall in total. The epochs
# below are chosen for that budget.
set -euo pipefail

DATASETS=${1:-${DEEPGO_DATASETS:-}}
OUT=${2:-${OUT:-}}
if [[ -z "$DATASETS" || -z "$OUT" ]]; then
	echo "usage: $0 DATASETS_DIR OUT_DIR   (or DEEPGO_DATASETS=... OUT=... $0)" >&2
	exit 2
fi
if [[ ! -d "$DATASETS/financial_phrasebank" || ! -d "$DATASETS/twitter_financial_news_sentiment" ]]; then
	echo "$DATASETS does not hold the datasets (financial_phrasebank, twitter_financial_news_*)" >&2
	exit 2
fi
PROCS=${PROCS:-2}
NCORES=${NCORES:-$(nproc)}
MLM_PROCS=${MLM_PROCS:-12}
MLM_EPOCHS=${MLM_EPOCHS:-2}
MLM_MAX_MINUTES=${MLM_MAX_MINUTES:-0}
W2V_EPOCHS=${W2V_EPOCHS:-5}
LIMIT=${LIMIT:-0}
CORPUS_LIMIT=${CORPUS_LIMIT:-0}
EPOCHS=${EPOCHS:-}
DATASETS_FILTER=${DATASETS_FILTER:-"sent topic pb100 pb50"}
ROWS_FILTER=${ROWS_FILTER:-"bow lstm lstm_w2v tr_scratch tr_mlm_full tr_mlm_lora8"}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DATASETS=$(cd "$DATASETS" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T0=$(date +%s.%N)

now() { awk -v t0="$T0" -v t="$(date +%s.%N)" 'BEGIN { printf "%.1f", t - t0 }'; }
log() { echo "[$(now)s] $*" >&2; }

log "building deepgo"
(cd "$ROOT" && go build -o "$OUT/deepgo" ./cmd/deepgo)
DG="$OUT/deepgo"

# ---- datasets: name -> data flags ----
S=$DATASETS/twitter_financial_news_sentiment
T=$DATASETS/twitter_financial_news_topic
P=$DATASETS/financial_phrasebank/financial_phrasebank.csv
declare -A DATA=(
	[sent]="--data $S/sent_train.csv --val $S/sent_valid.csv"
	[topic]="--data $T/topic_train.csv --val $T/topic_valid.csv"
	[pb100]="--data $P --text-col sentence --label-col label --where agreement_subset=100 --val-split 0.2"
	[pb50]="--data $P --text-col sentence --label-col label --val-split 0.2"
)
# Epochs per dataset and row (ignored when EPOCHS is set).
declare -A EP=(
	[sent,bow]=6 [topic,bow]=5 [pb100,bow]=8 [pb50,bow]=6
	[sent,lstm]=3 [topic,lstm]=3 [pb100,lstm]=8 [pb50,lstm]=6
	[sent,tr]=4 [topic,tr]=3 [pb100,tr]=10 [pb50,tr]=6
	[sent,ft]=3 [topic,ft]=3 [pb100,ft]=6 [pb50,ft]=4
	[sent,lstmw]=8 [topic,lstmw]=6 [pb100,lstmw]=8 [pb50,lstmw]=6
)
# row -> flags (MLM and W2V are the pretrained package directories).
MLM=$OUT/mlm
W2V=$OUT/w2v
row_flags() { # row dataset
	local k
	case $1 in
	bow) k=bow; echo "--arch bow --dropout 0.5" ;;
	lstm) k=lstm; echo "--arch lstm" ;;
	lstm_w2v) k=lstm; echo "--arch lstm --pretrained $W2V" ;;
	bow_w2v) k=bow; echo "--arch bow --dropout 0.5 --pretrained $W2V" ;;
	bow_cng) k=bow; echo "--arch bow --dropout 0.5 --char-ngrams 3-5" ;;
	ens)
		local eb=${EPOCHS:-${EP[$2,bow]}} el=${EPOCHS:-${EP[$2,lstmw]}}
		local lstm="--member arch=lstm,pretrained=$W2V,epochs=$el"
		case $2 in
		sent) echo "--arch ensemble --member arch=bow,dropout=0.5,char-ngrams=3-5,epochs=$eb $lstm $lstm,pool=maxmean,seed=2" ;;
		topic) echo "--arch ensemble --member arch=bow,dropout=0.5,char-ngrams=3-5,epochs=$eb $lstm" ;;
		*) echo "--arch ensemble --member arch=bow,dropout=0.5,pretrained=$W2V,epochs=$el $lstm $lstm,seed=2 $lstm,seed=3" ;;
		esac
		return 0
		;;
	tr_scratch) k=tr; echo "--arch transformer --tokenizer wordpiece --vocab-size 8000 --hidden 512 --layers 2 --dim 128" ;;
	tr_mlm_full) k=ft; echo "--pretrained $MLM --lr 1e-4" ;;
	tr_mlm_lora8) k=ft; echo "--pretrained $MLM --lora-rank 8 --lr 1e-3" ;;
	esac
	echo "--epochs ${EPOCHS:-${EP[$2,$k]}}"
}

# ---- job control: fine-tuning jobs run while cores are free ----
declare -a FT_PIDS=()
LONG_PROCS=0 # cores held by running pretraining jobs
prune() {
	local alive=() p
	for p in "${FT_PIDS[@]}"; do
		kill -0 "$p" 2>/dev/null && alive+=("$p")
	done
	FT_PIDS=("${alive[@]}")
}
slots() {
	local free=$((NCORES - LONG_PROCS))
	local s=$((free / PROCS))
	((s < 1)) && s=1
	echo "$s"
}
wait_slot() {
	while true; do
		prune
		refresh_long
		((${#FT_PIDS[@]} < $(slots))) && return
		sleep 1
	done
}

# run_job NAME GOMAXPROCS EXTRA_JSON CMD... : runs CMD, keeps the last JSON
# line of its stdout, adds wall_s, gomaxprocs and EXTRA_JSON, writes NAME.json.
run_job() {
	local name=$1 procs=$2 extra=$3
	shift 3
	local t0 t1 rc=0
	t0=$(date +%s.%N)
	GOMAXPROCS=$procs "$@" >"$OUT/$name.out" 2>"$OUT/$name.log" || rc=$?
	t1=$(date +%s.%N)
	local wall
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	local js
	js=$(grep '^{' "$OUT/$name.out" | tail -1 || true)
	[[ -z "$js" ]] && js='{}'
	js=${js%\}}
	[[ "$js" != "{" ]] && js="$js,"
	echo "$js\"name\":\"$name\",\"exit_code\":$rc,\"wall_s\":$wall,\"gomaxprocs\":$procs$extra}" >"$OUT/$name.json"
	log "done $name (exit $rc, ${wall}s)"
}

submit() { # dataset row
	local ds=$1 row=$2
	[[ " $DATASETS_FILTER " == *" $ds "* && " $ROWS_FILTER " == *" $row "* ]] || return 0
	wait_slot
	local lim=""
	((LIMIT > 0)) && lim="--limit $LIMIT"
	# shellcheck disable=SC2086
	run_job "${ds}__${row}" "$PROCS" ",\"dataset\":\"$ds\",\"row\":\"$row\"" \
		"$DG" train text ${DATA[$ds]} $(row_flags "$row" "$ds") --seed 1 --max-len 64 --no-track --json $lim \
		--out "$OUT/models/${ds}__${row}" &
	FT_PIDS+=($!)
	log "started ${ds}__${row}"
}
submit_rows() { # row... : every dataset of each row
	local row ds
	for row in "$@"; do
		for ds in topic sent pb50 pb100; do
			submit "$ds" "$row"
		done
	done
}

# ---- pretraining (background) ----
mkdir -p "$OUT/models"
climit=""
((CORPUS_LIMIT > 0)) && climit="--limit $CORPUS_LIMIT"
need_mlm=0
need_w2v=0
[[ " $ROWS_FILTER " == *" tr_mlm_"* ]] && need_mlm=1
[[ " $ROWS_FILTER " == *"_w2v "* || " $ROWS_FILTER " == *" ens "* ]] && need_w2v=1
MLM_PID=""
W2V_PID=""
if ((need_mlm)); then
	# shellcheck disable=SC2086
	run_job pretrain_mlm "$MLM_PROCS" ",\"row\":\"pretrain_mlm\"" \
		"$DG" pretrain text --corpus financial --datasets "$DATASETS" --out "$MLM" --seed 1 \
		--epochs "$MLM_EPOCHS" --max-minutes "$MLM_MAX_MINUTES" $climit &
	MLM_PID=$!
	log "started MLM pretraining ($MLM_EPOCHS epochs, GOMAXPROCS $MLM_PROCS)"
fi
if ((need_w2v)); then
	# shellcheck disable=SC2086
	run_job pretrain_w2v 1 ",\"row\":\"pretrain_w2v\"" \
		"$DG" pretrain text --objective word2vec --corpus financial --datasets "$DATASETS" --out "$W2V" --seed 1 \
		--epochs "$W2V_EPOCHS" --max-minutes 0 $climit &
	W2V_PID=$!
	log "started word2vec pretraining ($W2V_EPOCHS epochs, 1 thread)"
fi
refresh_long() {
	LONG_PROCS=0
	[[ -n "$MLM_PID" ]] && kill -0 "$MLM_PID" 2>/dev/null && LONG_PROCS=$((LONG_PROCS + MLM_PROCS))
	[[ -n "$W2V_PID" ]] && kill -0 "$W2V_PID" 2>/dev/null && LONG_PROCS=$((LONG_PROCS + 1))
	return 0
}
refresh_long

# ---- rows that need no pretrained package, longest first ----
submit_rows lstm tr_scratch bow bow_cng
# ---- word2vec rows, then the MLM rows, as soon as their package exists ----
if [[ -n "$W2V_PID" ]]; then
	wait "$W2V_PID" || true
	refresh_long
	submit_rows ens lstm_w2v bow_w2v
fi
if [[ -n "$MLM_PID" ]]; then
	wait "$MLM_PID" || true
	refresh_long
	submit_rows tr_mlm_full tr_mlm_lora8
fi
wait
log "all jobs done"

# ---- summary ----
field() { # file key -> value (numbers and strings of a flat JSON object)
	grep -o "\"$2\":[^,}]*" "$1" | head -1 | cut -d: -f2- | tr -d '"'
}
{
	echo "| dataset | row | accuracy | macro-F1 | epochs | steps | trainable params | wall s | GOMAXPROCS | exit |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	for ds in sent topic pb100 pb50; do
		for row in bow bow_w2v bow_cng lstm lstm_w2v ens tr_scratch tr_mlm_full tr_mlm_lora8; do
			f="$OUT/${ds}__${row}.json"
			[[ -f "$f" ]] || continue
			echo "| $ds | $row | $(field "$f" accuracy) | $(field "$f" macro_f1) | $(field "$f" epochs) | $(field "$f" steps) | $(field "$f" trainable_params) | $(field "$f" wall_s) | $(field "$f" gomaxprocs) | $(field "$f" exit_code) |"
		done
	done
	for p in mlm w2v; do
		f="$OUT/pretrain_$p.json"
		[[ -f "$f" ]] || continue
		echo
		echo "pretrain $p: exit $(field "$f" exit_code), ${p} wall $(field "$f" wall_s) s, GOMAXPROCS $(field "$f" gomaxprocs); $(tail -2 "$OUT/pretrain_$p.out" | head -1)"
	done
	echo
	echo "total wall time $(now) s on $NCORES cores"
} | tee "$OUT/summary.md"
