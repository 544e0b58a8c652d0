"""Let an accepted association's two threads wait for work instead of polling.

pynetdicom runs each association in two threads that poll: the DUL thread
(socket reads, PDU encoding) sleeps `_run_loop_delay` whenever a loop found
nothing, and the association's reactor sleeps 1 ms before every look at its
DIMSE queue. With many small C-STOREs that polling is a good part of the
receiver's CPU (and of the GIL's hand-overs), and each file waits for both
threads to wake up.

`make_waiting(assoc)`, called when the connection opens (before its threads
start), changes that for one association:

- the DUL thread blocks in `select()` on the socket and a wake-up pipe; a
  primitive or event queued by another thread (our C-STORE response, a
  release, an abort) writes to the pipe, so it is sent at once;
- the reactor's non-blocking look at its DIMSE queue waits there for a
  message instead, so a received C-STORE is served as soon as it is whole;
- a PDU is read from the socket into one buffer, not 4 KB at a time.

Both waits end after `WAIT` seconds at most, so every check pynetdicom makes
between them (timers, a kill, a peer's release) still runs, only less often.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import threading

from pynetdicom.transport import AssociationSocket

# The longest either thread waits before pynetdicom's own checks run again.
WAIT = 0.005
# The largest PDU read into a buffer made at once (we accept PDUs of 1 MB).
PREALLOCATE_MAX = 2 * 1024 * 1024


class _Waker:
    """A self-pipe: `wake()` from any thread ends the DUL thread's select()."""

    def __init__(self):
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        self._pending = False
        self._closed = False
        self._lock = threading.Lock()

    def wake(self) -> None:
        with self._lock:
            if self._pending or self._closed:
                return
            self._pending = True
            with contextlib.suppress(OSError):
                os.write(self.write_fd, b"w")

    def drain(self) -> None:
        with self._lock:
            self._pending = False
            if self._closed:
                return
            with contextlib.suppress(OSError):
                os.read(self.read_fd, 512)

    def close(self) -> None:
        """Close the pipe (once the association's threads have ended)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.close(self.read_fd)
            os.close(self.write_fd)


class _WakingQueue(queue.Queue):
    """A queue whose `put()` wakes the DUL thread."""

    def __init__(self, waker: _Waker, items=()):
        super().__init__()
        self.queue.extend(items)
        self._waker = waker

    def put(self, item, block=True, timeout=None):
        super().put(item, block, timeout)
        self._waker.wake()


class _WaitingSocket(AssociationSocket):
    """`ready` waits (up to WAIT) for data, or for a wake-up, not a bare poll."""

    _waker: _Waker

    @property
    def ready(self) -> bool:
        if self.socket is None or self._is_connected is False:
            return False
        waker = self._waker
        try:
            readable, _, _ = select.select([self.socket, waker.read_fd], [], [], WAIT)
        except (OSError, TimeoutError, ValueError):
            self.event_queue.put("Evt17")  # transport connection closed
            return False
        if waker.read_fd in readable:
            waker.drain()
        return self.socket in readable

    def recv(self, nr_bytes: int) -> bytearray:
        """Read `nr_bytes` (fewer if the peer closes) straight into one buffer,
        not 4 KB at a time as pynetdicom does: a PDU in a system call or two.

        The length comes from the peer: beyond PREALLOCATE_MAX the buffer is
        not made up front (pynetdicom's own reading grows with what arrives).
        """
        if nr_bytes > PREALLOCATE_MAX:
            return super().recv(nr_bytes)
        buffer = bytearray(nr_bytes)
        view = memoryview(buffer)
        read = 0
        while read < nr_bytes:
            received = self.socket.recv_into(view[read:], nr_bytes - read)
            if not received:
                del view
                return buffer[:read]
            read += received
        return buffer


def make_waiting(assoc):
    """Make one accepted (not yet started) association wait, not poll.

    Returns a function that releases what it took (a pipe), to call once the
    association's thread has ended; None if the association is left as is.
    """
    dul = assoc.dul
    sock = dul.socket
    if type(sock) is not AssociationSocket or hasattr(sock.socket, "pending"):
        return None  # TLS (buffered data select() cannot see) or unknown
    waker = _Waker()
    dul.to_provider_queue = _WakingQueue(waker, dul.to_provider_queue.queue)
    dul.event_queue = _WakingQueue(waker, dul.event_queue.queue)
    sock._waker = waker
    sock.__class__ = _WaitingSocket
    # The DUL thread's idle sleep: select() above waits instead.
    dul._run_loop_delay = 0

    dimse = assoc.dimse
    messages = dimse.msg_queue
    get_msg = dimse.get_msg

    def get_msg_waiting(block: bool = False):
        if block:
            return get_msg(block=True)
        try:
            return messages.get(timeout=WAIT)
        except queue.Empty:
            return None, None

    dimse.get_msg = get_msg_waiting
    return waker.close
