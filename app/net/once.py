"""At most once: requests that move the robot are numbered, and a retry never moves it twice.

A client names itself (``client``, a random id made once per client object) and numbers its
moving requests (``seq``, 1, 2, 3 ...). The server remembers, per client, the last number it
executed and the reply it gave (:class:`ReplyLedger`):

- the same number again (a retry after a reply was lost) gets that first reply back, and nothing
  is executed;
- an older number is refused (it was overtaken by a newer request), and nothing is executed;
- a newer number is executed, and its reply remembered.

So a client that did not get its reply simply sends the same request again: it learns what
happened without the robot moving twice. The ledger remembers the :data:`MAX_CLIENTS` clients
seen most recently.
"""

from __future__ import annotations

import collections
import re
import secrets
from dataclasses import dataclass

from takeover.app.net.messages import Request
from takeover.app.net.wire import WireError

MAX_CLIENTS = 64
MAX_SEQ = 2**63 - 1
_CLIENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class StaleRequestError(WireError):
    """A numbered request older than the last one executed for its client (it is not executed)."""


@dataclass(frozen=True)
class Sequenced(Request):
    """A request that moves the robot: executed at most once per (``client``, ``seq``)."""

    client: str
    """The sending client's id: 1 to 64 letters, digits or ``_.:-``."""
    seq: int
    """The client's number for this request: 1 for its first, then counting up."""

    def __post_init__(self) -> None:
        if not _CLIENT_ID.fullmatch(self.client):
            raise ValueError("'client' must be 1 to 64 letters, digits or _.:-")
        if not 1 <= self.seq <= MAX_SEQ:
            raise ValueError(f"'seq' must be in 1..{MAX_SEQ}, got {self.seq}")


class Numbering:
    """A client's id and the numbers of its moving requests."""

    def __init__(self) -> None:
        self.client = secrets.token_hex(8)
        self._last = 0

    def next(self) -> int:
        self._last += 1
        return self._last


class ReplyLedger:
    """Per client, the last numbered request executed and its reply (server side)."""

    def __init__(self, max_clients: int = MAX_CLIENTS) -> None:
        self._last: collections.OrderedDict[str, tuple[int, bytes]] = collections.OrderedDict()
        self._max = max_clients
        self.replayed = 0
        """Retries answered from the ledger (nothing executed)."""

    def replay(self, request: Sequenced) -> bytes | None:
        """The reply already given to this request, or None when it is new and may run now."""
        entry = self._last.get(request.client)
        if entry is None:
            return None
        self._last.move_to_end(request.client)
        seq, reply = entry
        if request.seq == seq:
            self.replayed += 1
            return reply
        if request.seq < seq:
            raise StaleRequestError(
                f"request {request.seq} of client {request.client} is older than {seq}, "
                "the last one executed: not executed"
            )
        return None

    def record(self, request: Sequenced, reply: bytes) -> None:
        self._last[request.client] = (request.seq, reply)
        self._last.move_to_end(request.client)
        while len(self._last) > self._max:
            self._last.popitem(last=False)
