"""At most one console drives an engine; the others watch, hold and e-stop; a claim lapses."""

from __future__ import annotations

from takeover.app.engine.protocol import Command, CommandName
from takeover.app.engine.viewers import LEASE_S, ViewerSlot


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_one_console_holds_the_engine_and_the_others_may_only_stop_the_robot() -> None:
    clock = Clock()
    slot = ViewerSlot(clock)
    assert slot.refusal(Command(CommandName.START_EPISODE)) == ""  # nobody attached: the socket decides
    assert slot.attach("ana@ws pid 1") and slot.holder() == "ana@ws pid 1"
    assert not slot.attach("bo@lab pid 2") and slot.holder() == "ana@ws pid 1"
    assert slot.refusal(Command(CommandName.START_EPISODE, viewer="ana@ws pid 1")) == ""
    for name in (CommandName.START_EPISODE, CommandName.TAKEOVER, CommandName.RESET_ESTOP, CommandName.QUIT):
        reason = slot.refusal(Command(name, viewer="bo@lab pid 2"))
        assert reason.startswith("another console is attached (ana@ws pid 1): this one may watch, hold")
    assert slot.refusal(Command(CommandName.KEYS, keys=("W",))) != ""  # nameless senders too
    for name in (CommandName.HOLD, CommandName.ESTOP):
        assert slot.refusal(Command(name, viewer="bo@lab pid 2")) == ""
    assert slot.detach("bo@lab pid 2") == "this console is not attached to the engine"
    assert slot.detach("ana@ws pid 1") == "" and slot.holder() == ""
    assert slot.attach("bo@lab pid 2")
    assert not slot.attach("")


def test_a_claim_lapses_when_its_console_goes_silent_and_any_command_renews_it() -> None:
    clock = Clock()
    slot = ViewerSlot(clock)
    assert slot.attach("ana")
    clock.t += LEASE_S * 0.9
    assert slot.refusal(Command(CommandName.KEYS, viewer="ana")) == ""  # renews
    clock.t += LEASE_S * 0.9
    assert slot.holder() == "ana" and not slot.attach("bo")
    clock.t += LEASE_S + 0.01  # ana crashed, or lost its network: nothing renews
    assert slot.holder() == ""
    assert slot.attach("bo") and slot.holder() == "bo"
