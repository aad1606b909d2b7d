"""The live activation log: rows from 10 s before a trigger, at 100 ms."""

from __future__ import annotations

import numpy as np
import pytest

from twin.sim.recorder import PreTriggerLog


def feed(log, t_end, trigger_at=()):
    triggers = sorted(trigger_at)
    for k in range(int(round(t_end / 0.1))):
        t = round(k * 0.1, 10)
        while triggers and triggers[0] <= t:
            log.trigger(triggers.pop(0))
        log.append(t, (float(k),))


def test_log_starts_10_s_before_the_trigger_at_100_ms():
    log = PreTriggerLog(pre_s=10.0, post_s=30.0, tick_s=0.1)
    feed(log, 120.0, trigger_at=[25.0])
    t = np.array([r[0] for r in log.rows])
    assert t[0] == pytest.approx(15.0, abs=1e-9)  # 10 s before the trigger
    assert t[-1] == pytest.approx(54.9, abs=1e-9)  # until 30 s after it
    np.testing.assert_allclose(np.diff(t), 0.1, atol=1e-9)
    assert {r[1] for r in log.rows} == {0}


def test_trigger_in_an_open_window_extends_it_and_a_later_one_opens_another():
    log = PreTriggerLog(pre_s=10.0, post_s=30.0, tick_s=0.1)
    feed(log, 200.0, trigger_at=[25.0, 40.0, 150.0])
    by_window = {}
    for t, w, _ in log.rows:
        by_window.setdefault(w, []).append(t)
    assert sorted(by_window) == [0, 1]
    assert by_window[0][0] == pytest.approx(15.0) and by_window[0][-1] == pytest.approx(69.9)
    assert by_window[1][0] == pytest.approx(140.0) and by_window[1][-1] == pytest.approx(179.9)


def test_early_trigger_keeps_what_there_is_and_bad_arguments_fail():
    log = PreTriggerLog(pre_s=10.0, post_s=1.0, tick_s=0.1)
    feed(log, 5.0, trigger_at=[3.0])
    assert log.rows[0][0] == 0.0  # only 3 s of history existed
    with pytest.raises(ValueError, match="tick_s = 0"):
        PreTriggerLog(10.0, 1.0, 0.0)
