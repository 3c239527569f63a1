"""Test-only fault injection: stop superd at the k-th step of a transaction,
or fail a transaction before its k-th operation.

A *step* is one durable write: a kernel request, a sysctl/sysfs file, a
persistence document batch, the transaction journal. The product never sets
the variables below; unset (always, outside tests), :func:`step` returns at
once.

* ``NETRELOAD_TEST_KILL_AT_STEP=k``: SIGKILL the process just before step k
  of the armed transactions (the write is not done), as a crash would.
* ``NETRELOAD_TEST_PAUSE_AT_STEP=k``: SIGSTOP instead (a test resumes it, or
  kills it, or kills its peer meanwhile).
* ``NETRELOAD_TEST_STEP_LOG=path``: append ``<n> <label>`` for each step, so
  a test can learn how many steps a transaction has.
* ``NETRELOAD_TEST_FAIL_AFTER_OPS=k``: a transaction fails (FAILED_IFUP)
  before its operation k, as a kernel refusal would: it rolls back
  (:func:`failure_point`; read at each transaction, so a test may set it
  for one ``superd.oneshot`` run).

Counting starts when a transaction journal is written (:func:`arm`):
recovery at start-up, which writes without a journal of its own, is never
interrupted by the hook.
"""

from __future__ import annotations

import os
import signal
import threading

KILL_ENV = "NETRELOAD_TEST_KILL_AT_STEP"
PAUSE_ENV = "NETRELOAD_TEST_PAUSE_AT_STEP"
LOG_ENV = "NETRELOAD_TEST_STEP_LOG"
FAIL_AFTER_ENV = "NETRELOAD_TEST_FAIL_AFTER_OPS"


def _int_env(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.isascii() and value.isdigit() else None


_KILL_AT = _int_env(KILL_ENV)
_PAUSE_AT = _int_env(PAUSE_ENV)
_LOG = os.environ.get(LOG_ENV) or None
ENABLED = _KILL_AT is not None or _PAUSE_AT is not None or _LOG is not None

_lock = threading.Lock()
_armed = False
_count = 0


def arm() -> None:
    """Count the steps from now on (a transaction began)."""
    global _armed
    if ENABLED:
        _armed = True


def step(label: str) -> None:
    """One durable write is about to happen."""
    if not (ENABLED and _armed):
        return
    global _count
    with _lock:
        _count += 1
        if _LOG is not None:
            with open(_LOG, "a", encoding="utf-8") as log:
                log.write(f"{_count} {label}\n")
        if _count == _KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)
        if _count == _PAUSE_AT:
            os.kill(os.getpid(), signal.SIGSTOP)


def failure_point() -> int | None:
    """The operation before which a transaction must fail, if a test asked."""
    return _int_env(FAIL_AFTER_ENV)
