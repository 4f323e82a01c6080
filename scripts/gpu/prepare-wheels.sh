#!/usr/bin/env bash
# Run HERE (a machine that reaches PyPI), from anywhere in the repo. Fills the git-ignored .gpu/ with
# what the GPU machines lack (they reach no registry; see /work/shared/gpu/README.md):
#   .gpu/w/        megatron-core 0.19.2, the transformer-engine 2.20.2 meta wheel, their pure-Python
#                  needs, and the TE PyTorch extension built on such a machine (installed by unzipping)
#   .gpu/c1 .. c6  the 276 MB transformer-engine-cu13 2.20.2 core wheel cut in parts of 50,000,000 bytes (the
#                  last the rest), so that one part plus the working tree stays under the device tool's 64 MiB
#                  per call
#   .gpu/x/        submitit, cloudpickle, click, jinja2, markupsafe, pyyaml (the toolkit's own needs; carried with c1)
#   .gpu/core/     the whole core wheel (not carried)
# Usage: bash scripts/gpu/prepare-wheels.sh [path/to/transformer_engine_torch-2.20.2-cp312-cp312-linux_x86_64.whl]
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"

TE_TORCH_WHEEL=${1:-/work/shared/gpu/wheels/transformer_engine_torch-2.20.2-cp312-cp312-linux_x86_64.whl}
DEEPEP_WHEEL=${DEEPEP_WHEEL:-/work/shared/gpu/wheels/deep_ep-1.2.1-cp312-cp312-linux_x86_64.whl}
CORE=transformer_engine_cu13-2.20.2-py3-none-manylinux_2_28_x86_64.whl
CORE_SHA256=30063d3699e779cce63617c3458804f7a504ce8279f2749c98313db9daae273e
PART_BYTES=50000000   # one part + the working tree (~8 MB of committed results) < 64 MiB
PIP=(python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp)

mkdir -p .gpu/w .gpu/core
"${PIP[@]}" --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d .gpu/w \
  megatron-core==0.19.2 transformer-engine==2.20.2 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
  typing-inspection==0.4.5 typing-extensions==4.16.0 nvdlfw-inspect==0.2.2 nvidia-cudnn-frontend==1.32.0
cp "$TE_TORCH_WHEEL" .gpu/w/
# DeepEP v1.2.1 built on such a machine against its torch (scripts/gpu/build-deepep.sh rebuilds it elsewhere)
cp "$DEEPEP_WHEEL" .gpu/w/
# What the toolkit itself needs there and the GPU image may lack: small, carried with .gpu/c1 as .gpu/x
mkdir -p .gpu/x
"${PIP[@]}" --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d .gpu/x submitit==1.5.4 cloudpickle==3.1.2 click==8.3.1 jinja2==3.1.6 markupsafe==3.0.3 pyyaml==6.0.3

if ! echo "$CORE_SHA256  .gpu/core/$CORE" | sha256sum -c --quiet 2>/dev/null; then
  "${PIP[@]}" --platform manylinux_2_28_x86_64 -d .gpu/core transformer-engine-cu13==2.20.2
  echo "$CORE_SHA256  .gpu/core/$CORE" | sha256sum -c --quiet
fi

rm -rf .gpu/c[0-9] .gpu/parts
mkdir -p .gpu/parts
split -b "$PART_BYTES" -d -a 1 ".gpu/core/$CORE" .gpu/parts/te-core.part
parts=(.gpu/parts/te-core.part*)
for i in "${!parts[@]}"; do
  mkdir -p ".gpu/c$((i + 1))"
  mv "${parts[$i]}" ".gpu/c$((i + 1))/"
done
rmdir .gpu/parts
echo "$CORE_SHA256" > ".gpu/c${#parts[@]}/te-core.sha256"

echo "prepare-wheels: done (${#parts[@]} parts: carry .gpu/c1 ... .gpu/c${#parts[@]}, one a call)"
du -sh .gpu/w .gpu/x .gpu/c[0-9]
ls .gpu/w
