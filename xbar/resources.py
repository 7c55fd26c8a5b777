"""How much memory this machine has, and refusing a request that would not fit, or would not
finish, before any allocation.

A request's memory is estimated from its sizes (a batch, a number of chips or points) and
compared with the machine's physical memory (``SC_PHYS_PAGES * SC_PAGE_SIZE``). The estimates
are rough (within a factor of about two) and only have to tell "fits" from "cannot possibly
fit": a run that is refused would have been killed by the operating system, or swapped for
hours, after allocating.
"""

from __future__ import annotations

import os

from xbar.errors import ResourceError

__all__ = ["MAX_RUN_S", "check_memory", "check_time", "format_bytes", "format_duration",
           "machine_memory_bytes"]

MAX_RUN_S = 7 * 86400.0
"""The longest run a command starts (7 days), by the lower bound of its estimate: a request
estimated above it is a slip of the keyboard (``--chips 1e8``) more likely than a plan."""


def machine_memory_bytes() -> int | None:
    """Physical memory of this machine in bytes; None where the OS does not say (Windows)."""
    try:
        pages, page = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    if pages <= 0 or page <= 0:
        return None
    return int(pages) * int(page)


def format_bytes(n: float) -> str:
    """``n`` bytes as GiB (or MiB below 1 GiB): three significant digits, whole GiB above 100."""
    if n >= 100 * 2**30:
        return f"{n / 2**30:,.0f} GiB"
    if n >= 2**30:
        return f"{n / 2**30:.3g} GiB"
    return f"{n / 2**20:.3g} MiB"


def check_memory(need_bytes: float, request: str, what: str = "") -> None:
    """Refuse ``request`` when its estimated memory exceeds this machine's memory.

    Args:
        need_bytes: The estimate, in bytes.
        request: The option and value that set the size, e.g. ``"--batch 100000000"``.
        what: What the memory holds, e.g. ``"event queues of 100000000 inferences"``.

    Raises:
        ResourceError: "--batch 100000000 would need about 56 GiB (...); this machine has
            16 GiB", with what to change.
    """
    have = machine_memory_bytes()
    if have is None or need_bytes <= have:
        return
    raise ResourceError(f"{request} would need about {format_bytes(need_bytes)} of memory"
                        f"{f' ({what})' if what else ''}; this machine has "
                        f"{format_bytes(have)}: choose a smaller value")


def format_duration(seconds: float) -> str:
    """``seconds`` in the largest unit that keeps it >= 1 (s, min, h, days, years)."""
    for unit, size in (("years", 365 * 86400.0), ("days", 86400.0), ("h", 3600.0),
                       ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def check_time(at_least_s: float, request: str, what: str = "") -> None:
    """Refuse ``request`` when even a lower bound of its run time exceeds :data:`MAX_RUN_S`.

    Args:
        at_least_s: The lower bound, in seconds (one core, the fastest case measured).
        request: The options and values that set the size, e.g. ``"--chips 100000000"``.
        what: How the bound was counted, e.g. ``"100000000 chips x 1 method, >= 0.01 s
            each"``.

    Raises:
        ResourceError: "--chips 100000000 would take at least 11.6 days (...); xbar refuses
            runs estimated over 7 days: choose a smaller value".
    """
    if at_least_s <= MAX_RUN_S:
        return
    raise ResourceError(f"{request} would take at least {format_duration(at_least_s)}"
                        f"{f' ({what})' if what else ''}; xbar refuses runs estimated over "
                        f"{format_duration(MAX_RUN_S)}: choose a smaller value")
