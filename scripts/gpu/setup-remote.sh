#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repo root, after .gpu/c1 .. .gpu/c6 and .gpu/w have been carried
# there (see benchmarks/gpu/README.md). Reassembles the transformer-engine-cu13 core wheel, installs
# every wheel with `pip --target` into .gpu/site (git-ignored, so it survives between calls while the
# machine stays warm), unzips the TE PyTorch extension over it, precompiles, and prints what it
# installed. Idempotent: a second run finds .gpu/site/.installed and only prints it.
# Then: source scripts/gpu/env.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-python3}
SITE=.gpu/site
CORE=transformer_engine_cu13-2.20.2-py3-none-manylinux_2_28_x86_64.whl
CORE_SHA256=30063d3699e779cce63617c3458804f7a504ce8279f2749c98313db9daae273e
STAMP=$SITE/.installed

if [[ -f $STAMP ]]; then
  echo "setup-remote: $SITE is already installed:"
  cat "$STAMP"
  exit 0
fi
SECONDS=0

for i in 1 2 3 4 5; do
  compgen -G ".gpu/c$i/te-core.part*" >/dev/null || {
    echo "setup-remote: error: .gpu/c$i/te-core.part* is missing (fix: carry .gpu/c$i in a call first)" >&2
    exit 1
  }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$SITE.partial"' EXIT
cat .gpu/c[0-9]/te-core.part[0-9] > "$tmp/$CORE"   # c1/part0, c2/part1, ...: in order
echo "$CORE_SHA256  $tmp/$CORE" | sha256sum -c --quiet

# The image's typing-extensions may predate what pydantic 2.14 needs (>= 4.16): bring ours only then.
wheels=()
for whl in .gpu/w/*.whl .gpu/x/*.whl; do
  case $(basename "$whl") in
    transformer_engine_torch-*) ;;  # unzipped below: pip --target skips it once transformer_engine/ exists
    typing_extensions-*)
      if "$PYTHON" - <<'PY'
import importlib.metadata as m, sys
try:
    have = tuple(int(x) for x in m.version("typing_extensions").split(".")[:2])
except Exception:
    have = (0, 0)
sys.exit(0 if have < (4, 16) else 1)
PY
      then wheels+=("$whl"); fi ;;
    *) wheels+=("$whl") ;;
  esac
done

rm -rf "$SITE.partial"
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
  --target "$SITE.partial" "${wheels[@]}" "$tmp/$CORE"
"$PYTHON" -m zipfile -e .gpu/w/transformer_engine_torch-*.whl "$SITE.partial"
# TE imports transformer_engine.jax whenever jax is installed (the image has it) only to warn that its
# JAX extension is missing; without the folder that import is skipped (seconds saved per rank).
rm -rf "$SITE.partial/transformer_engine/jax"
rm -rf "$SITE"
mv "$SITE.partial" "$SITE"
# DeepEP: usable, or exactly why not (the node entry falls back to alltoall, loudly, when it is not)
PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -c 'import torch
from orchestrator.node.capabilities import probe_deepep
print("setup-remote:", probe_deepep().describe())' || true
"$PYTHON" -m compileall -q -j 0 "$SITE" >/dev/null 2>&1 || true  # first imports then read .pyc

{
  echo "installed $(date -u +%FT%TZ) into $SITE in ${SECONDS} s:"
  for info in "$SITE"/*.dist-info; do basename "$info" .dist-info; done | sed 's/^/  /'
  du -sh "$SITE" | sed 's/^/  size /'
} > "$STAMP"
cat "$STAMP"
