"""The stage graph: cycles, ancestors and run order of stages that read what others make.

A graph maps each stage to the stages it must run after. Every walk here is iterative, so a
chain of thousands of stages needs no deeper Python stack than a chain of two.
"""
from __future__ import annotations

import heapq

Graph = dict[str, list[str]]   # stage -> the stages it runs after


def find_cycle(edges: Graph) -> list[str] | None:
    """A cycle `[a, b, ..., a]`, each stage running after the next, or None."""
    state: dict[str, int] = {}   # 1: on the current path, 2: done
    for start in edges:
        if start in state:
            continue
        state[start] = 1
        path = [start]
        # For each stage on the path, the stages it runs after that are still to look at.
        pending = [iter(edges[start])]
        while pending:
            following = next(pending[-1], None)
            if following is None:
                state[path.pop()] = 2
                pending.pop()
            elif state.get(following) == 1:
                return path[path.index(following):] + [following]
            elif following not in state:
                state[following] = 1
                path.append(following)
                pending.append(iter(edges[following]))
    return None


def ancestors(name: str, edges: Graph) -> set[str]:
    """Every stage `name` runs after, directly or through others."""
    seen: set[str] = set()
    todo = list(edges[name])
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(edges[current])
    return seen


def run_order(edges: Graph) -> list[str]:
    """The stages of an acyclic graph in an order that runs each after its ancestors; of the stages
    ready at any point, the one first in `edges` (the pipeline file's order) goes first (Kahn's
    algorithm)."""
    index = {name: i for i, name in enumerate(edges)}
    names = list(edges)
    waiting = {name: len(before) for name, before in edges.items()}
    followers: Graph = {name: [] for name in edges}
    for name, before in edges.items():
        for other in before:
            followers[other].append(name)
    ready = [index[name] for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for follower in followers[name]:
            waiting[follower] -= 1
            if waiting[follower] == 0:
                heapq.heappush(ready, index[follower])
    return order
