#!/usr/bin/env bash
# ON THE GPU MACHINE (device kind nvidia-h200, one GPU), from the repo root, after the wheels travelled (README.md):
#   bash benchmarks/gpu/points_and_data.sh start      set up, then in the background (setsid, outlives the call):
#        the GPU: benchmarks/gpu/sweeps/estimator-points-1gpu.yaml (the estimator's points), then the real-data run;
#        the CPUs meanwhile: a text corpus from the documentation files on that machine, a SentencePiece tokenizer
#        trained on it, `orchestrator data prepare` and `data check` (the dataset the real-data run trains on)
#   bash benchmarks/gpu/points_and_data.sh wait S     wait for the chain's end for at most S seconds
#   bash benchmarks/gpu/points_and_data.sh collect    status, report (table, JSON) of both runs, logs -> $OUT
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
OUTDIR=${OUT:-.gpu/points-out}
ROOT=$PWD/.gpu/runs
DATA=$PWD/.gpu/data
mkdir -p "$OUTDIR" "$ROOT" "$DATA"
source scripts/gpu/env.sh

corpus() {   # every .txt/.md/.rst documentation file under /usr/share/doc and the Python installs -> JSONL
    python3 - "$DATA/corpus.jsonl" <<'PY'
import json, pathlib, sys, sysconfig
roots = ["/usr/share/doc", "/usr/lib/python3", sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"]]
seen, docs, chars = set(), 0, 0
with open(sys.argv[1], "w") as out:
    for root in roots:
        for path in sorted(pathlib.Path(root).rglob("*")):
            if path.suffix not in {".txt", ".md", ".rst"} or not path.is_file() or path.stat().st_size > 2_000_000:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if len(text) < 200 or hash(text) in seen:
                continue
            seen.add(hash(text))
            out.write(json.dumps({"text": text}) + "\n")
            docs, chars = docs + 1, chars + len(text)
print(f"corpus: {docs} documents, {chars / 1e6:.1f} M characters")
PY
}

tokenizer() {   # SentencePiece BPE, 16,000 pieces, trained on the corpus (byte fallback: no unknown token)
    python3 - "$DATA" <<'PY'
import json, sys, time
import sentencepiece as spm
data = sys.argv[1]
with open(f"{data}/corpus.jsonl") as src, open(f"{data}/corpus.txt", "w") as dst:
    for line in src:
        dst.write(json.loads(line)["text"] + "\n")
t = time.time()
spm.SentencePieceTrainer.train(input=f"{data}/corpus.txt", model_prefix=f"{data}/sp16k", vocab_size=16000,
                               model_type="bpe", byte_fallback=True, input_sentence_size=2_000_000,
                               shuffle_input_sentence=True, num_threads=12, minloglevel=2)
print(f"tokenizer: sp16k.model trained in {time.time() - t:.1f} s")
PY
}

chain() {   # the background part of `start`
    echo "== $(date +%T) points sweep"
    python3 -m orchestrator submit --profile local --sweep benchmarks/gpu/sweeps/estimator-points-1gpu.yaml \
        --set "profile.output_root=$ROOT/points" --follow < /dev/null > "$ROOT/points.out" 2>&1 &
    sweep=$!
    { corpus && tokenizer && python3 -m orchestrator data prepare "$DATA/corpus.jsonl" --tokenizer "$DATA/sp16k.model" \
        --output-prefix "$DATA/text" --workers 8 && python3 -m orchestrator data check "$DATA/text"; } \
        > "$ROOT/data.out" 2>&1
    echo "== $(date +%T) data exit $?"
    wait "$sweep"; echo "== $(date +%T) points exit $?"
    python3 -m orchestrator submit --profile local --set "profile.output_root=$ROOT/realdata" \
        --set "training.data_path=[$DATA/text]" --set training.tokenizer_type=SentencePieceTokenizer \
        --set "training.tokenizer_model=$DATA/sp16k.model" --set model.vocab_size=16000 \
        --set training.train_iters=60 --set training.log_interval=1 --set training.eval_interval=30 \
        --set training.eval_iters=2 --follow < /dev/null > "$ROOT/realdata.out" 2>&1
    echo "== $(date +%T) realdata exit $?"
    echo "== $(date +%T) chain done"
}

case ${1:-} in
  start)
    bash scripts/gpu/setup-remote.sh > "$OUTDIR/setup.log" 2>&1 || { tail -20 "$OUTDIR/setup.log"; exit 1; }
    nvidia-smi -L
    setsid bash "$0" chain > "$ROOT/chain.out" 2>&1 < /dev/null &
    sleep 30; cat "$ROOT/chain.out"; tail -3 "$ROOT/points.out" ;;
  chain) chain ;;
  wait)
    timeout "$2" bash -c "until grep -q '== .* chain done' '$ROOT/chain.out'; do sleep 10; done"
    cat "$ROOT/chain.out"; tail -4 "$ROOT/data.out" "$ROOT/points.out" "$ROOT/realdata.out" 2>/dev/null ;;
  collect)
    cp "$ROOT"/*.out "$OUTDIR/"
    for run in "$ROOT"/points/*/ "$ROOT"/realdata/*/; do python3 -m orchestrator status "$run"; done > "$OUTDIR/status.txt" 2>&1
    python3 -m orchestrator report "$ROOT"/points/*/ | tee "$OUTDIR/points.report.txt"
    python3 -m orchestrator report "$ROOT"/points/*/ --json > "$OUTDIR/points.report.json"
    python3 -m orchestrator report "$ROOT"/realdata/*/ | tee "$OUTDIR/realdata.report.txt"
    python3 -m orchestrator report "$ROOT"/realdata/*/ --json > "$OUTDIR/realdata.report.json"
    head -c 20000 "$DATA/corpus.jsonl" > "$OUTDIR/corpus-head.jsonl"; cp "$DATA/sp16k.model" "$OUTDIR/" 2>/dev/null
    tar czf "$OUTDIR/runs.logs.tgz" --exclude=checkpoints --exclude='*.pt' -C "$ROOT" points realdata ;;
  *) echo "usage: $0 start | wait SECONDS | collect" >&2; exit 2 ;;
esac
