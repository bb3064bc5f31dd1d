"""The dashboard server's kernel manager: at most N kernels, and a polite refusal beyond that.

Voila starts one kernel per page load and keeps it until the page closes (or the culler finds
it idle and unconnected). Nothing in Voila bounds how many run at once, so a client refreshing a
few times, or several people opening the link together, can exhaust a small machine (issue 13:
five loads left seven kernels using ~1.9 GB). :class:`BoundedKernelManager` is the kernel
manager Voila is told to use (``VoilaConfiguration.multi_kernel_manager_class``, set by
:func:`crmkit.delivery.dashboard.voila_config`); it refuses to start a kernel beyond
``max_kernels`` with :class:`BusyError`, an HTTP 503 that Voila's error handling renders with the
template's ``503.html`` ("busy, try again in a minute", in the client's language).

This module is imported by the Voila server process only; it is kept apart from
:mod:`crmkit.delivery.dashboard` so that the server does not import pandas and the analysis.
"""

from __future__ import annotations

import asyncio
import uuid

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from traitlets import Float, Integer, Unicode


class BusyError(web.HTTPError):
    """All kernel slots are taken: HTTP 503, with the texts of the busy page.

    Jupyter's ``write_error`` passes the exception to the error template (``503.html``), which
    reads ``title``, ``text``, ``retry`` and ``lang`` from it.
    """

    def __init__(self, title: str, text: str, retry: str, lang: str):
        super().__init__(503, "all kernel slots are in use", reason=title)
        self.title, self.text, self.retry, self.lang = title, text, retry, lang


class BoundedKernelManager(AsyncMappingKernelManager):
    """A kernel manager that never runs more than ``max_kernels`` kernels at once.

    A kernel whose page closed (its last websocket went away) is shut down
    ``disconnect_grace`` seconds later unless the page reconnected: Voila's own "shut down on
    unload" beacon is not reliable (a browser may drop it while closing the tab), and a page
    never reconnects to a kernel it left, since every load gets a new one.

    The count includes kernels still starting: a slot is reserved, synchronously, before the
    first ``await`` of :meth:`start_kernel`, so two page loads arriving together cannot both
    take the last slot (the server runs on one event loop; nothing can run between the check
    and the reservation).
    """

    max_kernels = Integer(4, config=True, help="The most kernels running at once (>= 1).")
    busy_title = Unicode("The dashboard is busy", config=True)
    busy_text = Unicode("Please try again in a minute.", config=True)
    busy_retry = Unicode("Try again", config=True)
    busy_language = Unicode("en", config=True)
    disconnect_grace = Float(
        15.0, config=True,
        help="Seconds a kernel is kept after its page's last connection closed, in case the "
             "browser reconnects (a network blip); then it is shut down.")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._reserved: set[str] = set()

    def slots_in_use(self) -> int:
        """Kernels running or starting."""
        return len(set(self.list_kernel_ids()) | self._reserved)

    async def start_kernel(self, *, kernel_id: str | None = None, **kwargs) -> str:
        """Start a kernel, or raise :class:`BusyError` when ``max_kernels`` are in use."""
        if kernel_id is not None and kernel_id in self:
            return await super().start_kernel(kernel_id=kernel_id, **kwargs)
        if self.slots_in_use() >= max(1, self.max_kernels):
            self.log.warning("Refusing a page load: %d of %d kernels in use",
                             self.slots_in_use(), self.max_kernels)
            raise BusyError(self.busy_title, self.busy_text, self.busy_retry,
                            self.busy_language)
        kernel_id = kernel_id or str(uuid.uuid4())
        self._reserved.add(kernel_id)
        try:
            return await super().start_kernel(kernel_id=kernel_id, **kwargs)
        finally:
            self._reserved.discard(kernel_id)

    def notify_disconnect(self, kernel_id: str) -> None:
        """A page's websocket closed: shut its kernel down soon if nothing reconnects."""
        super().notify_disconnect(kernel_id)
        if self._kernel_connections.get(kernel_id) == 0:
            asyncio.get_running_loop().call_later(
                self.disconnect_grace,
                lambda: asyncio.ensure_future(self._shutdown_if_unconnected(kernel_id)))

    async def _shutdown_if_unconnected(self, kernel_id: str) -> None:
        if kernel_id in self and self._kernel_connections.get(kernel_id) == 0:
            self.log.info("Shutting down kernel %s: its page closed", kernel_id)
            await self.shutdown_kernel(kernel_id)
