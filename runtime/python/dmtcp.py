"""The program's own interface to the checkpoint runtime, for Python.

Under ``dmtcp_launch`` the runtime library (libdmtcp.so) is preloaded into the interpreter;
this module finds its functions with ctypes in the already loaded objects. Without the
runtime, ``is_enabled()`` is False and the other calls raise ``NotEnabled``.

    import dmtcp
    if dmtcp.is_enabled():
        state = ...
        if dmtcp.checkpoint() == "restart":
            print("back from a restart")
    with dmtcp.checkpoints_delayed():
        ...  # no checkpoint is taken in here; a request waits until the block ends

Works with Python 3.8 and later (Debian 12's /usr/bin/python3 included).
"""

import contextlib
import ctypes
import threading
from collections import namedtuple

__all__ = [
    "Error",
    "NotEnabled",
    "CheckpointFailed",
    "Status",
    "is_enabled",
    "checkpoint",
    "checkpoints_delayed",
    "disable_checkpoints",
    "enable_checkpoints",
    "status",
]

AFTER_CHECKPOINT = 1
AFTER_RESTART = 2
NOT_PRESENT = 3


class Error(Exception):
    """A failed request to the checkpoint runtime."""


class NotEnabled(Error):
    """The program does not run under dmtcp_launch (no checkpoint runtime loaded)."""

    def __init__(self, what="this call"):
        super().__init__(
            "%s needs the checkpoint runtime: start the program with dmtcp_launch" % what
        )


class CheckpointFailed(Error):
    """The checkpoint was refused or did not complete."""


Status = namedtuple(
    "Status",
    [
        "peers",  # processes in the computation (from the coordinator)
        "running",  # the computation is running (not checkpointing or restarting)
        "generation",  # current checkpoint generation
        "num_checkpoints",  # checkpoints this process took part in
        "num_restarts",  # restarts of this process
        "ckpt_filename",  # this process's last image, or None
        "ckpt_dir",  # where images go
        "uniquepid",  # this process's id in the computation
        "computation_id",
    ],
)

_lock = threading.Lock()
_lib = None
_looked = False


def _runtime():
    """The loaded runtime's functions, or None (looked up once)."""
    global _lib, _looked
    with _lock:
        if not _looked:
            _looked = True
            try:
                lib = ctypes.CDLL(None)  # every object already loaded, preloads included
                fn = lib.dmtcp_is_enabled
            except (OSError, AttributeError):
                lib = None
            if lib is not None:
                fn.restype = ctypes.c_int
                fn.argtypes = []
                if fn() != 1:
                    lib = None
            if lib is not None:
                _declare(lib)
            _lib = lib
        return _lib


def _declare(lib):
    c_int_p = ctypes.POINTER(ctypes.c_int)
    for name, res, args in [
        ("dmtcp_checkpoint", ctypes.c_int, []),
        ("dmtcp_disable_ckpt", ctypes.c_int, []),
        ("dmtcp_enable_ckpt", ctypes.c_int, []),
        ("dmtcp_get_coordinator_status", ctypes.c_int, [c_int_p, c_int_p]),
        ("dmtcp_get_local_status", ctypes.c_int, [c_int_p, c_int_p]),
        ("dmtcp_get_generation", ctypes.c_int, []),
        ("dmtcp_get_ckpt_filename", ctypes.c_char_p, []),
        ("dmtcp_get_ckpt_dir", ctypes.c_char_p, []),
        ("dmtcp_get_uniquepid_str", ctypes.c_char_p, []),
        ("dmtcp_get_computation_id_str", ctypes.c_char_p, []),
    ]:
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args


def _require(what):
    lib = _runtime()
    if lib is None:
        raise NotEnabled(what)
    return lib


def is_enabled():
    """True when the program runs under the checkpoint runtime."""
    return _runtime() is not None


def checkpoint():
    """Checkpoints the whole computation now and waits for the outcome.

    Returns "checkpoint" when the image is written and the program goes on, or "restart"
    when the program continues after a restart from that image. Raises CheckpointFailed if
    the checkpoint fails or is refused (for instance inside checkpoints_delayed()), and
    NotEnabled without the runtime. Other threads keep running during the call.
    """
    lib = _require("dmtcp.checkpoint()")
    r = lib.dmtcp_checkpoint()  # ctypes releases the GIL for the call
    if r == AFTER_CHECKPOINT:
        return "checkpoint"
    if r == AFTER_RESTART:
        return "restart"
    if r == NOT_PRESENT:
        raise NotEnabled("dmtcp.checkpoint()")
    raise CheckpointFailed(
        "the checkpoint failed or was refused (inside checkpoints_delayed()? "
        "see the runtime's message on stderr)"
    )


def disable_checkpoints():
    """Delays checkpoints until the matching enable_checkpoints() (nests per thread)."""
    if _require("dmtcp.disable_checkpoints()").dmtcp_disable_ckpt() != 1:
        raise Error("the runtime refused to delay checkpoints")


def enable_checkpoints():
    """Ends the section started by disable_checkpoints()."""
    if _require("dmtcp.enable_checkpoints()").dmtcp_enable_ckpt() != 1:
        raise Error("the runtime refused to re-enable checkpoints")


@contextlib.contextmanager
def checkpoints_delayed():
    """No checkpoint happens inside the block; a requested one waits until it ends.

    Without the runtime the block simply runs (there is nothing to delay).
    """
    lib = _runtime()
    if lib is None:
        yield
        return
    if lib.dmtcp_disable_ckpt() != 1:
        raise Error("the runtime refused to delay checkpoints")
    try:
        yield
    finally:
        lib.dmtcp_enable_ckpt()


def _text(p):
    return p.decode("utf-8", "replace") if p else None


def status():
    """The computation's and this process's checkpoint status, as a Status tuple.

    `peers` and `running` come from the coordinator (None if it cannot be reached).
    """
    lib = _require("dmtcp.status()")
    peers, running = ctypes.c_int(0), ctypes.c_int(0)
    have_coord = lib.dmtcp_get_coordinator_status(ctypes.byref(peers), ctypes.byref(running))
    ckpts, restarts = ctypes.c_int(0), ctypes.c_int(0)
    lib.dmtcp_get_local_status(ctypes.byref(ckpts), ctypes.byref(restarts))
    return Status(
        peers=peers.value if have_coord == 1 else None,
        running=bool(running.value) if have_coord == 1 else None,
        generation=lib.dmtcp_get_generation(),
        num_checkpoints=ckpts.value,
        num_restarts=restarts.value,
        ckpt_filename=_text(lib.dmtcp_get_ckpt_filename()),
        ckpt_dir=_text(lib.dmtcp_get_ckpt_dir()),
        uniquepid=_text(lib.dmtcp_get_uniquepid_str()),
        computation_id=_text(lib.dmtcp_get_computation_id_str()),
    )
