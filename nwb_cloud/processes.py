"""Stopping on a signal, and child processes that never outlive this one.

Python's own SIGINT handler raises ``KeyboardInterrupt`` wherever the interpreter stands, and when that is a
weakref callback or a ``__del__`` (h5py and hdmf run many while NeuroConv writes) the exception is printed as
"Exception ignored" and lost: the command goes on. SIGTERM's default ends the process at once, skipping every
clean-up. :func:`stopping_on_signals` replaces both with one handler that remembers the signal and raises
:class:`Interrupted`; :func:`stop_if_interrupted` raises it again at the next safe point if it was lost.

Every process this package starts is started with :func:`child_options` (a ``multiprocessing`` worker calls
:func:`die_with` first): the kernel sends it a signal when this process dies, however it dies
(``PR_SET_PDEATHSIG``), so no rclone or worker is ever left running alone.
The signal is tied to the *thread* that started the child: start long-lived children from the main thread
or from a thread that waits for them.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading

PR_SET_PDEATHSIG = 1
STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: list[int] = []


class Interrupted(KeyboardInterrupt):
    """The process received SIGINT or SIGTERM; ``exit_code`` is the shell's convention (130 or 143)."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _handler(signum, frame) -> None:
    _received.append(signum)
    raise Interrupted(signum)


@contextlib.contextmanager
def stopping_on_signals():
    """While the block runs, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread (elsewhere: no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    previous = {signum: signal.signal(signum, _handler) for signum in STOPPING_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def received() -> int | None:
    """The first stopping signal this process received, if any."""
    return _received[0] if _received else None


def stop_if_interrupted() -> None:
    """Raise :class:`Interrupted` if a signal arrived whose exception a library swallowed."""
    if _received:
        raise Interrupted(_received[0])


def exit_code(error: BaseException) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (a plain ``KeyboardInterrupt`` counts as Ctrl-C)."""
    signum = getattr(error, "signum", None) or received() or signal.SIGINT
    return 128 + signum


@contextlib.contextmanager
def signals_deferred():
    """Hold SIGINT and SIGTERM while the block runs (a rename that must be whole); they act right after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    return libc.prctl


_PRCTL = _prctl()


def die_with(parent: int, death_signal: int = signal.SIGTERM) -> None:
    """Called in a child (between fork and exec, or first thing in a ``multiprocessing`` worker, as its pool's
    ``initializer``): the kernel sends it ``death_signal`` when ``parent`` dies, at once if it already has."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), int(death_signal))


def child_options(death_signal: int = signal.SIGTERM, own_group: bool = False) -> dict:
    """``subprocess.Popen`` keyword arguments: the child gets ``death_signal`` when this process dies.

    ``own_group`` puts the child in a process group of its own, so a Ctrl-C typed at the terminal reaches only
    this process, which then stops the child itself (a worker must not die half-way on its own).
    """
    parent = os.getpid()

    def in_child() -> None:  # runs between fork and exec: no imports, no locks
        die_with(parent, death_signal)

    options: dict = {"preexec_fn": in_child}
    if own_group:
        options["process_group"] = 0
    return options


def stop(process: subprocess.Popen, grace_s: float = 5.0) -> None:
    """Terminate ``process`` (kill it after ``grace_s``) and reap it; harmless when it has ended."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
