import pytest

from takeover.app.control.pacing import CycleTimer, FakeClock


def test_deadlines_are_absolute_and_do_not_drift() -> None:
    clock = FakeClock(100.0)
    timer = CycleTimer(50.0, clock=clock)
    timer.start()
    wakes = []
    for _ in range(10):
        clock.advance(0.005)  # work shorter than the period
        wakes.append(timer.wait())
    assert wakes == pytest.approx([100.0 + 0.02 * (i + 1) for i in range(10)])
    assert timer.overruns == 0


def test_overrun_is_counted_and_later_deadlines_stay_on_the_grid() -> None:
    clock = FakeClock(0.0)
    timer = CycleTimer(10.0, clock=clock)
    timer.start()
    clock.advance(0.25)  # period 0 takes 2.5 periods
    woke = timer.wait()
    assert timer.overruns == 1
    assert woke == pytest.approx(0.25)  # no sleep: start the next period at once
    clock.advance(0.01)
    assert timer.wait() == pytest.approx(0.3)  # back on the 0.1 s grid
    assert timer.overruns == 1


def test_sections_are_timed() -> None:
    clock = FakeClock()
    timer = CycleTimer(10.0, clock=clock)
    timer.start()
    with timer.section("infer"):
        clock.advance(0.004)
    with timer.section("infer"):
        clock.advance(0.002)
    assert timer.sections["infer"].count == 2
    assert timer.sections["infer"].mean == pytest.approx(0.003)
    assert timer.summary()["infer_ms"] == pytest.approx(3.0)


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate_hz"):
        CycleTimer(0.0)
