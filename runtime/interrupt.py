"""Ctrl-C for native loops: a flag word that a C-level SIGINT handler sets and loops poll.

A native `while` loop runs with the GIL released, so Python's own SIGINT handling (the C
handler only notes the signal; the Python handler runs later, between bytecodes) cannot
stop it. So while a kernel that polls (one with a `while` loop) runs, SIGINT's C handler is
a tiny JIT-compiled function that sets FLAG and then calls the handler it replaced
(CPython's, which notes the signal as usual). The loop reads FLAG at every iteration (the
body is a function call, so one load is noise), and when it is set, leaves with the error
bit ERR_INTERRUPT in the workspace's error word. The runtime then lets Python run its
handler (PyErr_CheckSignals: KeyboardInterrupt by default) and raises KeyboardInterrupt
itself should that handler return: the loop's results are incomplete.

The handler is installed with sigaction only over a handler that CPython installed (not
SIG_DFL or SIG_IGN), on Linux (whose struct sigaction layout is written here); elsewhere,
or when installing fails, loops simply cannot be interrupted, as before. If Python code
later calls signal.signal(SIGINT, ...), CPython installs its C handler again; `arm` puts
ours back before the next polling call.
"""
from __future__ import annotations

import ctypes
import signal
import sys
import threading

import llvmlite.binding as llvm

SYMBOL = "gradjit_interrupt_flag"   # codegen.control declares it: an i32, nonzero = stop
ERR_INTERRUPT = 4                   # error-word bit (codegen.buffers ERR_LOAD=1, ERR_STORE=2)
FLAG = ctypes.c_int32(0)
_PREVIOUS = ctypes.c_void_p(0)      # the handler ours replaced; ours calls it
_SA_SIGINFO = 4
_lock = threading.Lock()
_handler = None                     # address of the JIT-compiled handler, once compiled
_handler_engine = None              # the Engine holding its code: kept for the process's life
_registered = False


class _SigAction(ctypes.Structure):
    """struct sigaction of glibc and musl on Linux (x86-64, aarch64)."""
    _fields_ = [("handler", ctypes.c_void_p), ("mask", ctypes.c_uint64 * 16),
                ("flags", ctypes.c_int), ("restorer", ctypes.c_void_p)]


def load_symbols():
    """Makes FLAG visible to JIT-compiled code under SYMBOL (idempotent)."""
    global _registered
    if not _registered:
        llvm.add_symbol(SYMBOL, ctypes.addressof(FLAG))
        _registered = True


def _handler_ir() -> str:
    flag, prev = ctypes.addressof(FLAG), ctypes.addressof(_PREVIOUS)
    return f"""
define void @gradjit_on_sigint(i32 %sig) {{
  store volatile i32 1, ptr inttoptr (i64 {flag} to ptr)
  %prev = load volatile ptr, ptr inttoptr (i64 {prev} to ptr)
  call void %prev(i32 %sig)
  ret void
}}
"""


def _libc():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.sigaction.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc() if sys.platform.startswith("linux") else None


def arm() -> bool:
    """Clears FLAG and makes sure our handler sits in front of CPython's (see the module
    docstring). Returns whether a SIGINT will now stop polling loops."""
    global _handler
    FLAG.value = 0
    if _LIBC is None or threading.current_thread() is not threading.main_thread():
        # signal.signal works only in the main thread; sigaction would, but a handler
        # swapped by another thread races with the main thread's own signal.signal calls
        return _handler is not None and _installed()
    with _lock:
        current = _SigAction()
        if _LIBC.sigaction(signal.SIGINT, None, ctypes.byref(current)) != 0:
            return False
        if _handler is not None and current.handler == _handler:
            return True
        if current.handler in (None, 0, 1) or current.flags & _SA_SIGINFO:
            return False        # SIG_DFL / SIG_IGN, or a handler of another signature
        if _handler is None:
            from runtime.engine import create_execution_engine
            # NOTE: held here: fresh_execution_engine (tests, benchmarks) replaces the
            # process's Engine, and a dropped Engine frees its code; SIGINT then jumped into
            # freed memory (a segfault in the suite, after a test that replaced the Engine)
            global _handler_engine
            _handler_engine = create_execution_engine()
            (_handler,) = _handler_engine.compile([_handler_ir()], ["gradjit_on_sigint"],
                                                  "interrupt")
        _PREVIOUS.value = current.handler
        ours = _SigAction()
        ctypes.memmove(ctypes.byref(ours), ctypes.byref(current), ctypes.sizeof(ours))
        ours.handler = _handler
        return _LIBC.sigaction(signal.SIGINT, ctypes.byref(ours), None) == 0


def _installed() -> bool:
    current = _SigAction()
    return (_LIBC.sigaction(signal.SIGINT, None, ctypes.byref(current)) == 0
            and current.handler == _handler)


def raise_interrupt(name: str):
    """After a kernel left a loop for a SIGINT: Python's handler runs (and raises, by
    default); if it returns, KeyboardInterrupt all the same (the results are incomplete)."""
    FLAG.value = 0
    check = ctypes.pythonapi.PyErr_CheckSignals
    check.restype = ctypes.c_int
    check()                         # a PyDLL function: raises the handler's exception
    raise KeyboardInterrupt(f"native loop of @{name} interrupted by SIGINT")
