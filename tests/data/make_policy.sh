#!/bin/sh
# How tests/data/ppo_pendulum_swingup/ (the committed policy artifact that tests/test_registry.py
# loads with rlx.load_policy) was made: PPO on pendulum_swingup, one seed, 4,000 env steps, 8-8
# hidden units, exported with rlx train --export. Run from the repository root to remake it.
set -e
tmp=$(mktemp -d)
.venv/bin/rlx train --algo ppo --env pendulum_swingup --seeds 1 --total-steps 4000 \
  --set num_envs=8 --set unroll_length=25 --set num_minibatches=2 --set num_epochs=2 \
  --set policy_hidden=8,8 --set value_hidden=8,8 --num-evals 2 --quiet \
  --out "$tmp/run" --export "$tmp/policies"
rm -rf tests/data/ppo_pendulum_swingup
cp -r "$tmp/policies/run-0" tests/data/ppo_pendulum_swingup
rm -rf "$tmp"
