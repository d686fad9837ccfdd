#!/usr/bin/env bash
# The wheels benchmarks/gpu_check.py installs on a GPU machine whose Python (CPython 3.12 by default,
# GPU_PYTHON=3.11 for another; manylinux x86_64) has CUDA PyTorch, transformers, peft and accelerate
# and nothing else: TRL, datasets, bitsandbytes, DeepSpeed, their missing dependencies, mglkit's own
# small dependencies, and mglkit itself, into .whl/ at the repository root (ignored by git). Run it
# here, in a checkout, with mglkit's virtual environment active (it builds mglkit's wheel and
# DeepSpeed's, which needs torch).
# About 55 MB, most of it bitsandbytes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.whl
exclude="$(git rev-parse --git-path info/exclude)"
grep -qxF '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >>"$exclude"
rm -rf "$out"
mkdir -p "$out"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "${GPU_PYTHON:-3.12}" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$out" \
  trl==1.16.0 datasets==4.8.0 dill==0.4.1 multiprocess==0.70.19 \
  bitsandbytes==0.50.2 \
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
  typing-extensions==4.16.0 hjson==3.1.0 \
  rapidfuzz==3.14.6 orjson==3.13.0
# DeepSpeed publishes no wheel: build its pure-Python one (no ops compiled; it finds the GPU at run time)
DS_BUILD_OPS=0 python3 -m pip wheel -q --no-deps --no-build-isolation -w "$out" deepspeed==0.19.8
python3 -m pip wheel -q --no-deps -w "$out" .
ls -l "$out"
du -sh "$out"
