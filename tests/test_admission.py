"""Admission of DCPI workload announcements: approved / with conditions / rejected (hand-worked)."""

from __future__ import annotations

import numpy as np
import pytest

from twin.control.admission import (
    STATUSES,
    AdmissionDecision,
    FacilityState,
    WorkloadAnnouncement,
    decide_admission,
    window_headroom_w,
)

H = 3600.0
MW = 1.0e6


def state(**kw):
    # 8 hourly steps from t = 0: 10, 10, 4, 4, 10, 10, 10, 10 MW of headroom;
    # circuit A 8 MW spare, B 12 MW; CI forecast per hour
    args = {"start_s": 0.0, "step_s": H, "headroom_w": np.array([10, 10, 4, 4, 10, 10, 10, 10]) * MW,
            "circuit_headroom_w": {"A": 8 * MW, "B": 12 * MW},
            "ci_forecast_g_per_kwh": np.array([300, 100, 200, 200, 50, 400, 400, 400.0])}
    args.update(kw)
    return FacilityState(**args)


def ann(**kw):
    args = {"workload_id": "job-1", "workload_type": "ai_training", "peak_power_w": 5 * MW,
            "baseline_power_w": 1 * MW, "duration_s": H, "earliest_start_s": 0.0, "latest_start_s": H}
    args.update(kw)
    return WorkloadAnnouncement(**args)


def test_window_headroom_takes_the_overlapped_steps():
    s = state()
    assert window_headroom_w(s, 0.0, H) == 10 * MW            # step 0 only
    assert window_headroom_w(s, 1.5 * H, H) == 4 * MW         # steps 1-2
    assert window_headroom_w(s, 4 * H, 4 * H) == 10 * MW      # steps 4-7, ends exactly at the horizon
    with pytest.raises(ValueError, match="outside the headroom horizon"):
        window_headroom_w(s, 7.5 * H, H)


def test_ample_capacity_is_approved():
    # starts 0 and 1 h: steps 0 and 1 hold 10 MW >= 5 MW; circuit B (12 MW, the larger) assigned
    d = decide_admission(ann(), state())
    assert d.status == "approved" and d.status in STATUSES
    assert d.approved_power_w == 5 * MW and d.throttle_fraction == 1.0 and d.duration_s == H
    assert d.start_window_s == (0.0, H) and d.circuit_id == "B"
    assert d.conditions == {} and d.alternative_start_window_s is None
    # lowest-carbon start in the window: hour 1 (100 g/kWh) beats hour 0 (300)
    assert d.recommended_start_s == H and d.ci_mean_g_per_kwh == pytest.approx(100.0)


def test_tight_window_narrows_the_start_window():
    # window [0, 3 h]: starts 0, 1, 2, 3 h see 10, 10, 4, 4 MW: full power only for starts in [0, 1 h]
    d = decide_admission(ann(latest_start_s=3 * H), state())
    assert d.status == "approved_with_conditions"
    assert d.start_window_s == (0.0, H) and d.throttle_fraction == 1.0
    assert d.conditions["start_window_s"] == (0.0, H)


def test_tight_power_gives_a_throttle_condition():
    # window [2 h, 3 h] sees 4 MW only: 5 MW never fits. Throttle at 2 h: fraction 4 / 5 = 0.8,
    # duration stretched to 1 h / 0.8 = 4500 s -> [7200, 11700) s overlaps steps 2-3 (4 MW): holds.
    d = decide_admission(ann(earliest_start_s=2 * H, latest_start_s=3 * H, min_throttle_fraction=0.5), state())
    assert d.status == "approved_with_conditions"
    assert d.throttle_fraction == pytest.approx(0.8, abs=1e-12)
    assert d.approved_power_w == pytest.approx(4 * MW)
    assert d.duration_s == pytest.approx(4500.0)
    assert d.start_window_s == (2 * H, 2 * H)
    assert d.conditions["power_limit_w"] == pytest.approx(4 * MW)


def test_throttle_respects_the_stretched_window_and_the_deadline():
    # steps: 6, 3, 10... MW. Window [0, 0], duration 1 h, peak 8 MW, min fraction 0.3.
    # frac 6/8 = 0.75 -> 4800 s overlaps steps 0-1 (min 3 MW) -> frac 3/8 = 0.375 -> 9600 s
    # overlaps steps 0-2 (min 3 MW): holds. Duration 9600 s.
    s = state(headroom_w=np.array([6, 3, 10, 10, 10, 10, 10, 10]) * MW, ci_forecast_g_per_kwh=None)
    a = ann(peak_power_w=8 * MW, latest_start_s=0.0, min_throttle_fraction=0.3)
    d = decide_admission(a, s)
    assert d.status == "approved_with_conditions"
    assert d.throttle_fraction == pytest.approx(0.375) and d.duration_s == pytest.approx(9600.0)
    assert d.recommended_start_s is None  # no CI forecast given
    # a deadline at 2 h rules that out (ends at 9600 s > 7200 s): rejected, with the first later
    # full-power start: steps 2.. hold 10 MW -> start 2 h; window width 0 -> (2 h, 2 h)
    d = decide_admission(ann(peak_power_w=8 * MW, latest_start_s=0.0, min_throttle_fraction=0.3,
                             deadline_s=2 * H), s)
    assert d.status == "rejected"
    assert d.alternative_start_window_s == (2 * H, 2 * H)


def test_over_capacity_is_rejected_with_an_alternative():
    # window [2 h, 3 h] (4 MW), min throttle 0.9 (4.5 MW > 4 MW): nothing fits. Later starts
    # 4, 5, 6, 7 h see 10 MW; the first is 4 h; announced width 1 h -> alternative (4 h, 5 h)
    d = decide_admission(ann(earliest_start_s=2 * H, latest_start_s=3 * H, min_throttle_fraction=0.9), state())
    assert d.status == "rejected"
    assert d.alternative_start_window_s == (4 * H, 5 * H)
    assert d.approved_power_w is None and d.start_window_s is None and d.circuit_id is None
    assert "exceeds the headroom" in d.reasons[0]
    assert d.conditions == {}


def test_larger_than_any_circuit_is_rejected_without_alternative():
    d = decide_admission(ann(peak_power_w=20 * MW), state(headroom_w=np.full(8, 30 * MW)))
    assert d.status == "rejected" and d.alternative_start_window_s is None
    assert "circuit 'B' has only 1.2e+07 W" in d.reasons[-1]


def test_named_circuit_is_used():
    # circuit A has 8 MW: a 9 MW job fits the facility (10 MW) but not A -> no full-power start;
    # not throttleable -> rejected; the alternative would also need A: none
    d = decide_admission(ann(peak_power_w=9 * MW, circuit_id="A"), state())
    assert d.status == "rejected" and d.alternative_start_window_s is None
    with pytest.raises(ValueError, match="circuit_id = 'C'"):
        decide_admission(ann(circuit_id="C"), state())


@pytest.mark.parametrize("kw, field", [
    ({"workload_id": ""}, "workload_id"),
    ({"workload_type": "gaming"}, "workload_type"),
    ({"peak_power_w": -1.0}, "peak_power_w"),
    ({"peak_power_w": float("nan")}, "peak_power_w"),
    ({"baseline_power_w": 6 * MW}, "baseline_power_w"),
    ({"duration_s": 0.0}, "duration_s"),
    ({"latest_start_s": -1.0}, "latest_start_s"),
    ({"average_power_w": 0.5 * MW}, "average_power_w"),
    ({"ramp_rate_w_per_s": 0.0}, "ramp_rate_w_per_s"),
    ({"deadline_s": 1.5 * H}, "deadline_s"),        # < latest start + duration = 2 h
    ({"min_throttle_fraction": 0.0}, "min_throttle_fraction"),
    ({"priority": "urgent"}, "priority"),
    ({"pausable": "yes"}, "pausable"),
])
def test_bad_announcement_names_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        ann(**kw)


def test_bad_state_names_the_field():
    with pytest.raises(ValueError, match="headroom_w"):
        state(headroom_w=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="circuit_headroom_w"):
        state(circuit_headroom_w={})
    with pytest.raises(ValueError, match="ci_forecast_g_per_kwh"):
        state(ci_forecast_g_per_kwh=np.ones(3))
    with pytest.raises(ValueError, match="step_s"):
        state(step_s=0.0)
    # the announced window must lie within the horizon
    with pytest.raises(ValueError, match="outside the headroom horizon"):
        decide_admission(ann(earliest_start_s=7.5 * H, latest_start_s=7.5 * H), state())


def test_decision_status_is_one_of_the_three():
    with pytest.raises(ValueError, match="status = 'maybe'"):
        AdmissionDecision("w", "maybe")
