#!/usr/bin/env bash
# Build DeepEP (intranode kernels, no NVSHMEM) against THIS machine's torch, applying the toolkit's patch.
# Every torch other than the one a DeepEP wheel was built for meets an ABI wall (registry wheels fail at
# get_dispatch_layout); building here is the way through. Run on a GPU machine with nvcc (Hopper: sm_90):
#   bash scripts/gpu/build-deepep.sh SOURCE [OUT_DIR]
# SOURCE: a DeepEP v1.2.1 source tree or its .tar.gz (the legacy deep_ep.Buffer API of Megatron-Core 0.19's flex
# dispatcher). OUT_DIR (default .gpu/w) receives deep_ep-*.whl; then scripts/gpu/setup-remote.sh installs it.
# The patch (scripts/gpu/deepep/intranode-no-nvshmem.patch): build without NVSHMEM and without -rdc=true
# (relocatable device code needs NVSHMEM's device link), and return no RDMA buffer size for <= 8 ranks in such a
# build (Megatron always asks; unpatched, the first MoE layer asserts "NVSHMEM is disable during compilation").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${1:?usage: build-deepep.sh SOURCE_DIR_OR_TARBALL [OUT_DIR]}
out=$(mkdir -p "${2:-$here/../../.gpu/w}" && cd "${2:-$here/../../.gpu/w}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -f $src ]]; then
  tar xzf "$src" -C "$work"
  tree=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -1)
else
  cp -r "$src" "$work/src"
  tree=$work/src
fi
cd "$tree"
patch -p1 --forward < "$here/deepep/intranode-no-nvshmem.patch"
unset NVSHMEM_DIR
python3 -c 'import torch; print("build-deepep: torch", torch.__version__, "CUDA", torch.version.cuda)'
TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} MAX_JOBS=$(nproc) python3 setup.py bdist_wheel > "$out/deepep-build.log" 2>&1 \
  || { tail -20 "$out/deepep-build.log"; exit 1; }
cp dist/deep_ep-*.whl "$out/"
ls -la "$out"/deep_ep-*.whl
echo "build-deepep: check it with: python3 tests/test_intranode.py --num-processes <GPUs> (in the source tree)"
