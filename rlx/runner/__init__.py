"""The runner: `seeds x grid` runs of one algorithm on one environment as one compiled program.

Its parts, each a small module:

- `rlx.runner.plan`: `plan(...)` validates a batch of runs into a `RunPlan` (and `plan_hash`);
- `rlx.runner.programs`: the pure per-run functions and their `jit(vmap(...))` compiled
  programs (init, a chunk of updates, evaluation), sharded over the devices;
- `rlx.runner.curves`: learning curves and per-run failures, one evaluation point at a time;
- `rlx.runner.store`: checkpoints (state, curves, timing, position, code identity) and resume;
- `rlx.runner.execute`: `run(plan)`, the impure loop over slices and chunks;
- `rlx.runner.result`: the run record; `rlx.runner.progress`: the progress bar.

Seed ``i`` of a batched run reproduces the single run with seed ``i``: every run's randomness
derives from ``PRNGKey(seed)`` alone.
"""

from rlx.runner.execute import run
from rlx.runner.plan import RunPlan, plan, plan_hash, plan_spec

__all__ = ["RunPlan", "plan", "plan_hash", "plan_spec", "run"]
