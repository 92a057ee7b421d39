"""A fan-out member writes at once when its socket can take it, queues (bounded, in order)
behind a send that has to wait, and ends with the reason it ended."""

from __future__ import annotations

import asyncio

from starlette.types import Message

from subscriptions.fanout import _Member, message_tail


class Socket:
    """A socket whose buffer is full while `writable` is clear."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.written: list[bytes] = []
        self.closed = False

    def send_now(self, data: bytes) -> bool:
        if self.closed:
            raise ConnectionError("closed")
        if not self.writable.is_set():
            return False
        self.written.append(data)
        return True

    async def send(self, message: Message) -> None:  # an ASGI send
        await self.writable.wait()
        self.written.append(message["text"].encode())


def ids(socket: Socket) -> list[str]:
    return [data.decode().split('"payload":')[1].rstrip("}") for data in socket.written]


def event(n: str) -> bytes:
    return message_tail("next", n.encode())


async def test_a_writable_socket_gets_each_event_at_once_without_a_task() -> None:
    socket = Socket()
    member = _Member("op", socket.send, socket.send_now, limit=5)
    member.deliver(event("1"))
    member.deliver(event("2"))
    assert ids(socket) == ["1", "2"]  # written in the caller's step: nothing awaited
    assert member.pending is None
    assert socket.written[0] == b'{"id":"op","type":"next","payload":1}'


async def test_events_wait_in_order_behind_a_full_buffer_then_flow() -> None:
    socket = Socket()
    member = _Member("op", socket.send, socket.send_now, limit=5)
    socket.writable.clear()
    for n in "123":
        member.deliver(event(n))
    assert socket.written == []
    socket.writable.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert ids(socket) == ["1", "2", "3"]
    member.deliver(event("4"))
    assert ids(socket) == ["1", "2", "3", "4"]


async def test_a_member_that_falls_behind_the_limit_ends_with_overflow() -> None:
    socket = Socket()
    member = _Member("op", socket.send, socket.send_now, limit=2)
    socket.writable.clear()
    for n in "1234":
        member.deliver(event(n))
    assert await asyncio.wait_for(member.ended, 1) == "overflow"
    member.deliver(event("5"))  # ignored once ended
    assert member.backlog is None


async def test_a_closed_socket_ends_the_member_as_gone() -> None:
    socket = Socket()
    socket.closed = True
    member = _Member("op", socket.send, socket.send_now, limit=2)
    member.deliver(event("1"))
    assert await asyncio.wait_for(member.ended, 1) == "gone"


async def test_finish_waits_for_what_was_accepted() -> None:
    socket = Socket()
    member = _Member("op", socket.send, socket.send_now, limit=5)
    socket.writable.clear()
    member.deliver(event("1"))
    member.deliver(event("2"))
    member.finish("complete")
    assert not member.ended.done()
    socket.writable.set()
    assert await asyncio.wait_for(member.ended, 1) == "complete"
    assert ids(socket) == ["1", "2"]


async def test_without_the_extension_every_send_is_awaited() -> None:
    socket = Socket()
    member = _Member("op", socket.send, None, limit=5)
    member.deliver(event("1"))
    member.deliver(event("2"))
    assert socket.written == []
    member.finish("complete")
    assert await asyncio.wait_for(member.ended, 1) == "complete"
    assert ids(socket) == ["1", "2"]
