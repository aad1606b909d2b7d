"""BatteryDispatcher: priorities and state, on hand-made ticks."""

from __future__ import annotations

import math

import pytest

from twin.control.battery_dispatch import BatteryDispatcher, DispatchConfig

LO, HI = -100e3, 50e3  # feasible range of every tick below [W]


def test_ffr_holds_the_pre_activation_power_minus_the_reserve():
    d = BatteryDispatcher(DispatchConfig(ffr_reserve_w=40e3, recharge_w=5e3, target_soc=0.6), [(10.0, 41.3)])
    assert d.setpoint_w(8.0, 1.0, 200e3, 0.5, LO, HI) == 5e3  # recharging below the target SoC
    # the tick whose midpoint is in [10, 41.3): baseline 5 kW, reserve 40 kW -> -35 kW
    assert d.setpoint_w(10.0, 1.0, 200e3, 0.5, LO, HI) == pytest.approx(-35e3)
    assert d.setpoint_w(40.0, 1.0, 250e3, 0.5, LO, HI) == pytest.approx(-35e3)  # load changes do not matter
    assert d.setpoint_w(42.0, 1.0, 200e3, 0.5, LO, HI) == 5e3  # support over: back to recharge


def test_peak_shaving_caps_import_and_keeps_the_ffr_reserve():
    d = BatteryDispatcher(DispatchConfig(import_limit_w=150e3, ffr_reserve_w=30e3))
    # load 200 kW, limit 150 kW: discharge 50 kW, within min + reserve = -70 kW
    assert d.setpoint_w(0.0, 1.0, 200e3, 0.5, LO, HI) == pytest.approx(-50e3)
    # load 300 kW would need -150 kW; the FFR reserve keeps 30 kW of the 100 kW range: -70 kW
    assert d.setpoint_w(1.0, 1.0, 300e3, 0.5, LO, HI) == pytest.approx(-70e3)


def test_ramp_smoothing_limits_the_import_step():
    d = BatteryDispatcher(DispatchConfig(max_ramp_w_per_s=10e3))
    assert d.setpoint_w(0.0, 1.0, 100e3, 0.5, LO, HI) == 0.0  # no history yet
    d.achieved(100e3)
    # the load jumps to 160 kW: import may rise 10 kW/s, the battery covers 50 kW
    assert d.setpoint_w(1.0, 1.0, 160e3, 0.5, LO, HI) == pytest.approx(-50e3)
    d.achieved(110e3)
    assert d.setpoint_w(2.0, 1.0, 160e3, 0.5, LO, HI) == pytest.approx(-40e3)


def test_fcr_d_adds_the_droop_discharge():
    d = BatteryDispatcher(DispatchConfig(fcr_d_reserve_w=40e3))
    assert d.setpoint_w(0.0, 1.0, 100e3, 0.5, LO, HI, fcr_d_fraction=0.5) == pytest.approx(-20e3)
    assert d.setpoint_w(1.0, 1.0, 100e3, 0.5, -10e3, HI, fcr_d_fraction=1.0) == pytest.approx(-10e3)  # clipped
    with pytest.raises(ValueError, match="fcr_d_fraction = 1.5"):
        d.setpoint_w(2.0, 1.0, 100e3, 0.5, LO, HI, fcr_d_fraction=1.5)


@pytest.mark.parametrize("kw, match", [
    ({"ffr_reserve_w": -1.0}, "ffr_reserve_w"), ({"fcr_d_reserve_w": -1.0}, "fcr_d_reserve_w"),
    ({"recharge_w": -1.0}, "recharge_w"), ({"max_ramp_w_per_s": 0.0}, "max_ramp_w_per_s"),
    ({"target_soc": 1.5}, "target_soc"),
])
def test_bad_config_is_rejected(kw, match):
    with pytest.raises(ValueError, match=match):
        DispatchConfig(**kw)


def test_windows_must_be_ordered_pairs():
    with pytest.raises(ValueError, match="end at or after its start"):
        BatteryDispatcher(DispatchConfig(), [(5.0, 1.0)])
    assert math.isinf(DispatchConfig().import_limit_w)
