"""LangGraph: each node of a ``StateGraph`` a ``run()``, without decorating every node.

Call :func:`runs_for_nodes` on the graph before ``compile()``::

    from alephant_otel import session
    from alephant_otel.integrations.langgraph import runs_for_nodes

    builder = StateGraph(State)
    builder.add_node("researcher", research)  # sync or async
    builder.add_node("writer", write)
    ...
    graph = runs_for_nodes(builder).compile()
    with session(name="report"):
        graph.invoke({"topic": "..."})  # or ainvoke / stream / astream

Each time a node runs, its body runs inside ``run(agent_id=<node name>)`` (the
name made a valid id where needed: :func:`~alephant_otel.integrations.agent_id_for`),
so every model call it makes carries the node as its agent and a run id of its
own, and a run inside a node (a subgraph's nodes, a nested agent) is its child.
This is what ``@run(agent_id=...)`` on each node function does, applied to all.

Why not a LangChain callback: a callback handler observes (``on_chain_start``
and ``on_chain_end`` see every node, and may read :func:`alephant_otel.current`
or add span attributes), but it cannot scope. LangChain runs handlers apart from
the node body: sync handlers of an async run go to a thread pool with a copied
context, and the node body itself runs in a context LangGraph copies for each
task. A ``run()`` entered in a handler is therefore not the context the node's
model calls are made in, and leaving it in ``on_chain_end`` happens in another
context again (OpenTelemetry used to log "Failed to detach context" there). Only
code that encloses the node body, as this wrapper does, gives its calls the run.

Import this module only with ``langgraph`` installed (``alephant-otel[langgraph]``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda

from alephant_otel.context._context import run
from alephant_otel.integrations._shared import agent_id_for

__all__ = ["runs_for_nodes"]

G = TypeVar("G")
_MARK = "__alephant_run__"


def _sync(func: Callable[..., Any], agent_id: str) -> Callable[..., Any]:
    @functools.wraps(func)  # LangGraph reads the signature (config, writer, store, runtime) through __wrapped__
    def node(*args: Any, **kwargs: Any) -> Any:
        with run(agent_id=agent_id):
            return func(*args, **kwargs)

    setattr(node, _MARK, True)
    return node


def _async(afunc: Callable[..., Any], agent_id: str) -> Callable[..., Any]:
    @functools.wraps(afunc)
    async def node(*args: Any, **kwargs: Any) -> Any:
        # Entered inside the coroutine, in the task that runs the node (a sync node's own
        # wrapper sends it to a thread with a copy of this context, run included).
        with run(agent_id=agent_id):
            return await afunc(*args, **kwargs)

    setattr(node, _MARK, True)
    return node


def _wrap_runnable(runnable: Runnable[Any, Any], agent_id: str, name: str) -> Runnable[Any, Any]:
    """Any other node (a subgraph, a chain): invoked inside the run, its config passed on."""

    def invoke(state: Any, config: RunnableConfig) -> Any:
        with run(agent_id=agent_id):
            return runnable.invoke(state, config)

    async def ainvoke(state: Any, config: RunnableConfig) -> Any:
        with run(agent_id=agent_id):
            return await runnable.ainvoke(state, config)

    setattr(invoke, _MARK, True)
    return RunnableLambda(invoke, afunc=ainvoke, name=name)


def runs_for_nodes(graph: G, *, nodes: Iterable[str] | None = None) -> G:
    """Make each node of a LangGraph ``StateGraph`` a run (agent id = node name); returns ``graph``.

    Call it after the nodes are added and before ``compile()``. Sync and async
    nodes, ``invoke``/``ainvoke``/``stream``/``astream`` alike. Calling it twice wraps
    nothing twice.

    Args:
        graph: The ``StateGraph`` (not yet compiled).
        nodes: Only these nodes (default: all).

    Raises:
        TypeError: ``graph`` has no nodes to wrap (a compiled graph: call it before ``compile()``).
    """
    specs = getattr(graph, "nodes", None)
    if not isinstance(specs, dict) or hasattr(graph, "builder"):
        raise TypeError("runs_for_nodes() takes a StateGraph before compile(): call it on the builder")
    wanted = None if nodes is None else set(nodes)
    for name, spec in specs.items():
        if wanted is not None and name not in wanted:
            continue
        agent_id = agent_id_for(name)
        runnable = spec.runnable
        func, afunc = getattr(runnable, "func", None), getattr(runnable, "afunc", None)
        if getattr(func, _MARK, False) or getattr(afunc, _MARK, False):
            continue  # wrapped already
        if type(runnable).__name__ == "RunnableCallable" and (callable(func) or callable(afunc)):
            # A plain function node: wrap the functions in place, keeping what LangGraph
            # derived from them (injected arguments, name, tracing).
            if callable(func):
                runnable.func = _sync(func, agent_id)
            if callable(afunc):  # an async node, or a sync node's thread-pool partial (awaitable too)
                runnable.afunc = _async(afunc, agent_id)
        elif isinstance(runnable, Runnable):
            spec.runnable = _wrap_runnable(runnable, agent_id, name)
    return graph
