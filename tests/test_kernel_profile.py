"""The profiler-trace kernel accounting behind `rlx bench --matched`'s learner profile."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from rlx.bench.kernel_profile import instruction_kinds, kernel_times, sum_by_kind

HLO = """\
HloModule jit_f, is_scheduled=true

%fused_computation (param_0: f32[20,256], param_1: f32[256,256]) -> f32[20,256] {
  %param_0 = f32[20,256]{1,0} parameter(0)
  %param_1 = f32[256,256]{1,0} parameter(1)
  ROOT %dot_general.0 = f32[20,256]{1,0} dot(%param_0, %param_1), lhs_contracting_dims={1}
}

%wrapper (p: f32[20,256], q: f32[256,256]) -> f32[20,256] {
  %p = f32[20,256]{1,0} parameter(0)
  %q = f32[256,256]{1,0} parameter(1)
  ROOT %inner = f32[20,256]{1,0} fusion(%p, %q), kind=kOutput, calls=%fused_computation
}

%fused_computation.1 (param_0.4: f32[20,256]) -> f32[20,256] {
  %param_0.4 = f32[20,256]{1,0} parameter(0)
  ROOT %tanh.0 = f32[20,256]{1,0} tanh(%param_0.4)
}

%body (t: (f32[20,256], s32[])) -> (f32[20,256], s32[]) {
  %t = (f32[20,256]{1,0}, s32[]) parameter(0)
  %x = f32[20,256]{1,0} get-tuple-element(%t), index=0
  %tanh_fusion = f32[20,256]{1,0} fusion(%x), kind=kLoop, calls=%fused_computation.1
  %i = s32[] get-tuple-element(%t), index=1
  ROOT %out = (f32[20,256]{1,0}, s32[]) tuple(%tanh_fusion, %i)
}

ENTRY %main.1 (w.1: f32[256,256], x.1: f32[20,256]) -> f32[256,256] {
  %w.1 = f32[256,256]{1,0} parameter(0), metadata={op_name="w"}
  %x.1 = f32[20,256]{1,0} parameter(1), metadata={op_name="x"}
  %ynn_fusion = f32[20,256]{1,0} fusion(%x.1, %w.1), kind=kCustom, calls=%fused_computation
  %nested_fusion = f32[20,256]{1,0} fusion(%x.1, %w.1), kind=kCustom, calls=%wrapper
  %while.3 = (f32[20,256]{1,0}, s32[]) while(%init), condition=%cond, body=%body
  ROOT %dot = f32[256,256]{1,0} dot(%x.1, %ynn_fusion), lhs_contracting_dims={0}
}
"""


def test_instruction_kinds_find_matmuls_inside_fusions_and_skip_control_flow():
    kinds = instruction_kinds(HLO)
    assert kinds["dot"] == "matmul" and kinds["ynn_fusion"] == "matmul"
    assert kinds["nested_fusion"] == "matmul"  # a dot two computations down
    assert kinds["tanh_fusion"] == "other"  # a kernel inside a while body
    assert kinds["while.3"] == "control"
    assert kinds["x.1"] == "other"


def test_sum_by_kind_adds_complete_events_of_known_instructions_only():
    kinds = {"dot": "matmul", "tanh_fusion": "other", "while.3": "control"}
    events = [
        {"ph": "X", "name": "dot", "dur": 7.0},
        {"ph": "X", "name": "dot", "dur": 5.0},
        {"ph": "X", "name": "tanh_fusion", "dur": 2.0},
        {"ph": "X", "name": "while.3", "dur": 100.0},  # spans the kernels above
        {"ph": "X", "name": "ThunkExecutor::Execute", "dur": 50.0},
        {"ph": "i", "name": "dot", "dur": 9.0},
    ]
    assert sum_by_kind(events, kinds) == {"matmul": 12.0, "other": 2.0, "count": 3}


@pytest.mark.parametrize("matmul", [True, False])
def test_kernel_times_match_trace_events_to_the_programs_kernels(matmul):
    a = jnp.ones((64, 64), jnp.float32)
    fn = (lambda x: x @ x) if matmul else (lambda x: jnp.tanh(x) * 2.0)
    k = kernel_times(jax.jit(fn).lower(a).compile(), a, calls=2)
    assert k.kernels_per_call >= 1 and k.wall_ms > 0
    assert (k.matmul_ms > 0) == matmul and (k.other_ms > 0) != matmul
