"""The read scope: inside one, the friend graph is read once per owner; outside, every time."""

from __future__ import annotations

from services.access.read_scope import forget, read_scope, relations
from services.core.ports import Relations


class Graph:
    def __init__(self) -> None:
        self.asked: list[set[str]] = []

    async def relations(self, user_id: str, others: set[str]) -> Relations:
        self.asked.append(set(others))
        return Relations(friends=frozenset(others & {"alice"}), blocked=frozenset(others & {"mallory"}))


async def test_inside_a_scope_only_owners_not_read_yet_are_asked_for() -> None:
    graph = Graph()
    with read_scope():
        first = await relations(graph, "bob", {"alice", "carol"})
        second = await relations(graph, "bob", {"alice", "mallory"})
        with read_scope():  # nested: the outer memo stays
            third = await relations(graph, "bob", {"alice", "carol", "mallory"})
    assert graph.asked == [{"alice", "carol"}, {"mallory"}]
    assert first == Relations(friends=frozenset({"alice"}))
    assert second == Relations(friends=frozenset({"alice"}), blocked=frozenset({"mallory"}))
    assert third == second
    # Another viewer is never answered from bob's memo.
    with read_scope():
        await relations(graph, "bob", {"alice"})
        await relations(graph, "eve", {"alice"})
    assert graph.asked[-2:] == [{"alice"}, {"alice"}]


async def test_outside_a_scope_every_call_reads() -> None:
    graph = Graph()
    await relations(graph, "bob", {"alice"})
    await relations(graph, "bob", {"alice"})
    assert len(graph.asked) == 2


async def test_forget_makes_the_next_call_read_again() -> None:
    graph = Graph()
    with read_scope():
        await relations(graph, "bob", {"alice"})
        forget()
        await relations(graph, "bob", {"alice"})
    forget()  # outside a scope: nothing to forget
    assert graph.asked == [{"alice"}, {"alice"}]
