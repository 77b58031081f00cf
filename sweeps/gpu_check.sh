#!/usr/bin/env bash
# The prepared device check for a session lent a GPU: 15 minutes of device time in all, the
# machine's start included, so one command of at most ~9 minutes. It runs on the device
# machine in the repository root, with .whl/ carried (`make gpu-wheels` here fills it with the
# packages the machine's image lacks, for its Python 3.12, and a manifest naming the revision).
#
#   device run:  bash sweeps/gpu_check.sh     carry: [".whl"]     timeout_s: 560
#
# Steps, each writing under $OUT as it goes, so a stop at the time limit keeps what finished:
#   1. install the carried wheels beside the image's JAX, and rlx itself (editable);
#   2. `rlx bench --scaling --gpu-scale --no-offpolicy --envs brax:ant`: PPO on MJX ant at
#      1-256 seeds x 128 envs (1 and 256 first) and 128-8192 envs x 1 seed (the goal: 256
#      seeds in <= 1.5x one seed's update time); every point is written when measured.
# Back here: copy $OUT's files into results/bench/gpu/ and commit them.
set -uo pipefail
OUT=${OUT:-results/bench/gpu}
SITE=${RLX_SITE:-/tmp/rlx-site}
SCALE_S=${RLX_SCALE_S:-480}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1 MUJOCO_GL=egl

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "$SITE" .whl/*.whl || { echo "gpu_check: installing .whl/ failed"; exit 2; }
export PYTHONPATH="$SITE"
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . \
  || { echo "gpu_check: installing rlx failed"; exit 2; }
python3 - <<'PY' || exit 2
import jax, brax, mujoco, mujoco.mjx
from rlx.provenance import git_state
print("jax", jax.__version__, jax.devices(), "| brax", brax.__version__,
      "| mujoco", mujoco.__version__, "| code", git_state())
PY

timeout "$SCALE_S" python3 -m rlx.cli bench --scaling --gpu-scale --no-offpolicy \
  --envs brax:ant --out "$OUT"
echo "gpu_check: scaling exit $?"
