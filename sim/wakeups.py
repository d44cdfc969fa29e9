"""SimPy events the world orders its wake-ups with.

Same-time events run by priority, then in the order they were scheduled (SimPy's
tie-breaking counter), so a run is reproducible only if every wake-up is scheduled at the
same point as before. These two events keep that order and cost less than the general
machinery they stand for.
"""

from __future__ import annotations

import simpy


class EndOfInstant(simpy.Event):
    """An event that runs its callback after every other event of the current instant
    (SimPy orders same-time events by priority, then by when they were scheduled)."""

    LATE = 2  # after simpy's URGENT (0) and NORMAL (1)

    def __init__(self, env: simpy.Environment, callback) -> None:
        super().__init__(env)
        self._ok, self._value = True, None
        self.callbacks.append(callback)
        env.schedule(self, priority=self.LATE)


class FirstOf(simpy.Event):
    """Succeeds when the first of ``events`` is processed: ``a | b`` (SimPy's ``AnyOf``
    condition) for a waiter that needs no value. Like the condition it hooks onto each
    event in the order given and, once one is processed, is scheduled itself at that
    moment, so the waiter resumes at the very same place among same-time events. It
    skips what the waiter does not read: the condition's value, built from the other
    events' states. Once processed it unhooks from the others, as the condition
    does, so an event nobody else waits on is seen as such (``World.changed_now``)."""

    def __init__(self, env: simpy.Environment, *events: simpy.Event) -> None:
        super().__init__(env)
        self._events = events
        for event in events:
            if event.callbacks is None:  # already processed
                self._check(event)
            else:
                event.callbacks.append(self._check)
        self.callbacks.append(self._unhook)

    def _unhook(self, _event: simpy.Event) -> None:
        check = self._check
        for event in self._events:
            if event.callbacks and check in event.callbacks:
                event.callbacks.remove(check)

    def _check(self, event: simpy.Event) -> None:
        if self._value is not simpy.events.PENDING:
            return
        if not event._ok:
            event._defused = True
            self.fail(event._value)
        else:
            self.succeed()
