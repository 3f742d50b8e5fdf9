"""A slow or broken link on loopback, for the tests and benchmarks of the remote pipeline.

:class:`DelayLink` relays TCP connections from its own port to a target port and delivers every
chunk ``one_way_s`` after it arrived, in each direction: a round trip of ``2 * one_way_s`` with
ordering and bandwidth kept, as ``tc netem delay`` gives (which needs the ``sch_netem`` kernel
module and a network namespace; containers often have neither). :meth:`DelayLink.cut` drops every
connection and refuses new ones until :meth:`DelayLink.restore`: a network loss. Written on
asyncio streams because it is a byte relay, not a protocol: nothing to take from a library.

``python -m livegesture.pipeline.remote.testing TARGET_PORT ONE_WAY_MS`` runs one in its own process
(printing ``listening on PORT``), so that it does not share the interpreter lock with a client.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import deque

CHUNK_BYTES = 64 * 1024


class DelayLink:
    """A delaying TCP relay on a thread: ``127.0.0.1:port`` -> ``127.0.0.1:target_port``."""

    def __init__(self, target_port: int, one_way_s: float = 0.0) -> None:
        self.target_port = target_port
        self.one_way_s = one_way_s
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._open = True
        self._thread = threading.Thread(target=self._run, daemon=True, name="delay link")
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open:
            writer.close()
            return
        try:
            target_reader, target_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, target_writer))
        await asyncio.gather(self._relay(reader, target_writer), self._relay(target_reader, writer),
                             return_exceptions=True)
        for w in (writer, target_writer):
            self._writers.discard(w)
            w.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            """Write each chunk when due; all chunks due by then in one write (fewer wake-ups)."""
            pending: deque[tuple[float, bytes]] = deque()
            while True:
                if not pending:
                    pending.append(await queue.get())
                while not queue.empty():
                    pending.append(queue.get_nowait())
                await asyncio.sleep(max(0.0, pending[0][0] - time.monotonic()))
                now, chunks = time.monotonic(), []
                while pending and pending[0][0] <= now:
                    chunks.append(pending.popleft()[1])
                ended = b"" in chunks
                writer.write(b"".join(chunks))
                await writer.drain()
                if ended:
                    writer.close()
                    return

        delivering = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(CHUNK_BYTES)
                if not data:
                    break
                await queue.put((time.monotonic() + self.one_way_s, data))
        finally:
            await queue.put((0.0, b""))  # the end, delivered after what came before it
            await delivering

    def cut(self) -> None:
        """Drop every connection now and refuse new ones (a network loss)."""
        self._open = False

        def close_all() -> None:
            for writer in list(self._writers):
                writer.transport.abort()

        self._loop.call_soon_threadsafe(close_all)

    def restore(self) -> None:
        """Accept connections again."""
        self._open = True

    def close(self) -> None:
        """Drop every connection and stop the relay's thread."""
        self._open = False

        async def shut_down() -> None:
            for writer in list(self._writers):
                writer.transport.abort()  # the relays see their ends and finish
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            if tasks:
                await asyncio.wait(tasks, timeout=1.0)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shut_down(), self._loop)
        self._thread.join(5)


def main(argv: list[str]) -> int:
    target, one_way_ms = int(argv[0]), float(argv[1])
    link = DelayLink(target, one_way_ms / 1e3)
    print(f"listening on {link.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        link.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
