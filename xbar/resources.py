"""How much memory this machine has, and refusing a request that would not fit, before any
allocation.

A request's memory is estimated from its sizes (a batch, a number of chips or points) and
compared with the machine's physical memory (``SC_PHYS_PAGES * SC_PAGE_SIZE``). The estimates
are rough (within a factor of about two) and only have to tell "fits" from "cannot possibly
fit": a run that is refused would have been killed by the operating system, or swapped for
hours, after allocating.
"""

from __future__ import annotations

import os

from xbar.errors import ResourceError

__all__ = ["check_memory", "format_bytes", "machine_memory_bytes"]


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
