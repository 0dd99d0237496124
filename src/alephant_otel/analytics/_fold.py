"""Request spans folded into sums as they are read, for reads that need totals only.

``sessions list`` over a million spans held one :class:`~._model.Request` per
request span until the trees were built: about 600 bytes each with its ids
and times, ~1 GB at 1M spans. The list needs per session only the totals,
the runs, the agents and the status. So a :class:`~._reconstruct.SessionBuilder`
made with ``summary=True`` adds each request span to a :class:`Fold`, one per
run id (or, for a request that names no run, per parent span, resolved to a
run once every span is in), and keeps no request.

A fold keeps what the full build takes from a run's requests in start order:
the first request's agent and parent run, the earliest non-empty agent and
parent run, the first start and last end, the totals and the agents in order
of first use. Building from folds gives the same sessions as building from
the requests (tests compare both on the same files), except ``requests`` and
``direct_requests``, which stay empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from itertools import chain
from sys import intern

from alephant_otel.analytics._model import Request, Run, _Totals

__all__ = ["Fold", "FoldKey", "Folded", "fold_request", "fold_values", "place_folds"]

#: Orders requests the way the full build does: (start_ns, span_id).
Key = tuple[int, str]
#: Which fold a request goes to: its run id, or ``(None, parent span id)`` when it names none.
FoldKey = str | tuple[None, str | None]
#: The agents of a fold: none, the one agent as ``(key, agent id)``, or, once there are
#: several, each agent id with its key (a dict costs four times the tuple, and most runs have one agent).
Agents = tuple[Key, str] | dict[str, Key] | None


def _keep_earliest(seen: dict[str, Key], name: str, key: Key) -> None:
    """Record ``name`` at ``key`` unless it was already seen earlier."""
    had = seen.get(name)
    if had is None or key < had:
        seen[name] = key


@dataclass(slots=True, eq=False)
class Fold:
    """The requests of one run (or of one parent span) of a session, summed."""

    first: Key
    first_agent: str | None
    first_parent: str | None
    totals: _Totals = field(default_factory=_Totals)
    start_ns: int = 0
    end_ns: int = 0
    #: The earliest non-empty agent id and the earliest run parent id naming another run.
    agent: tuple[Key, str] | None = None
    parent: tuple[Key, str] | None = None
    #: A fold of requests that name no run: every run parent id they name, with its earliest
    #: key, since which one names "another run" is known only once the run is (see :meth:`resolved`).
    parents: dict[str, Key] | None = None
    #: Each agent id with the key of its first request (the order ``Session.agents`` lists them
    #: in), in the form of :data:`Agents`: read it with :meth:`agent_keys`.
    agents: Agents = None

    def add(
        self,
        key: Key,
        run_id: str | None,
        run_parent_id: str | None,
        agent_id: str | None,
        start_ns: int,
        end_ns: int,
    ) -> None:
        """Take one request's ordering key, ids and times (its numbers go to :attr:`totals`)."""
        if key < self.first:
            self.first, self.first_agent, self.first_parent = key, agent_id, run_parent_id
        # The full build lets a start of 0 (no time read) give way to any real one.
        if start_ns and (not self.start_ns or start_ns < self.start_ns):
            self.start_ns = start_ns
        self.end_ns = max(self.end_ns, end_ns)
        if agent_id is not None:
            if self.agent is None or key < self.agent[0]:
                self.agent = (key, agent_id)
            if agent_id:  # an empty agent id names no agent in ``Session.agents``
                self._add_agent(agent_id, key)
        if run_parent_id is None:
            return
        if not run_id:
            if self.parents is None:
                self.parents = {}
            _keep_earliest(self.parents, run_parent_id, key)
        elif run_parent_id != run_id and (self.parent is None or key < self.parent[0]):
            self.parent = (key, run_parent_id)

    def _add_agent(self, agent_id: str, key: Key) -> None:
        agents = self.agents
        if agents is None:
            self.agents = self._pair(key, agent_id)
        elif isinstance(agents, tuple):
            if agents[1] == agent_id:
                if key < agents[0]:
                    self.agents = self._pair(key, agent_id)
            else:
                self.agents = {agents[1]: agents[0]}
                _keep_earliest(self.agents, agent_id, key)
        else:
            _keep_earliest(agents, agent_id, key)

    def _pair(self, key: Key, agent_id: str) -> tuple[Key, str]:
        # The same tuple as :attr:`agent` when it is the same request's: one object, not two.
        agent = self.agent
        return agent if agent is not None and agent[0] is key and agent[1] is agent_id else (key, agent_id)

    def agent_keys(self) -> Iterable[tuple[str, Key]]:
        """Each agent id of the fold's requests with the key of the first that named it."""
        agents = self.agents
        if agents is None:
            return ()
        if isinstance(agents, tuple):
            return ((agents[1], agents[0]),)
        return agents.items()

    def resolved(self, run_id: str) -> Fold:
        """This fold, or a copy of it, once its requests are known to be in ``run_id``: the parent
        is then the earliest run parent id naming another run."""
        if self.parents is None:
            return self
        out = self.copy()
        others = [(key, parent) for parent, key in self.parents.items() if parent != run_id]
        out.parent = min(others) if others else None
        out.parents = None
        return out

    def copy(self) -> Fold:
        """A fold that can be merged into without changing this one."""
        parents = None if self.parents is None else dict(self.parents)
        agents = dict(self.agents) if isinstance(self.agents, dict) else self.agents
        return replace(self, totals=replace(self.totals), agents=agents, parents=parents)

    def merge(self, other: Fold) -> None:
        """Take another fold of the same run."""
        if other.first < self.first:
            self.first, self.first_agent, self.first_parent = other.first, other.first_agent, other.first_parent
        if other.start_ns and (not self.start_ns or other.start_ns < self.start_ns):
            self.start_ns = other.start_ns
        self.end_ns = max(self.end_ns, other.end_ns)
        if other.agent is not None and (self.agent is None or other.agent[0] < self.agent[0]):
            self.agent = other.agent
        if other.parent is not None and (self.parent is None or other.parent[0] < self.parent[0]):
            self.parent = other.parent
        for agent, key in other.agent_keys():
            self._add_agent(agent, key)
        self.totals.merge(other.totals)


def fold_values(
    folds: dict[FoldKey, Fold],
    span_id: str,
    parent_span_id: str | None,
    start_ns: int,
    end_ns: int,
    run_id: str | None,
    run_parent_id: str | None,
    agent_id: str | None,
    retry_attempt: int,
    error: bool,
    intercepted: bool,
    cost_usd: float,
    input_tokens: int,
    output_tokens: int,
) -> None:
    """Add one request span, given as the values the list reads, to the fold of its run."""
    key = (start_ns, span_id)
    if agent_id:
        agent_id = intern(agent_id)  # one string per agent, not one per run that names it
    # An empty run id names no run: the full build looks for the run up the parent links then too.
    slot: FoldKey = run_id if run_id else (None, parent_span_id)
    fold = folds.get(slot)
    if fold is None:
        fold = folds[slot] = Fold(key, agent_id, run_parent_id)
    fold.add(key, run_id, run_parent_id, agent_id, start_ns, end_ns)
    t = fold.totals
    t.requests += 1
    t.retries += retry_attempt > 0
    t.errors += error
    t.intercepted += intercepted
    t.cost_usd += cost_usd
    t.input_tokens += input_tokens
    t.output_tokens += output_tokens


def fold_request(folds: dict[FoldKey, Fold], req: Request) -> None:
    """Add a request object to the fold of its run (used for the few requests kept whole while reading)."""
    fold_values(
        folds,
        req.span_id,
        req.parent_span_id,
        req.start_ns,
        req.end_ns,
        req.run_id,
        req.run_parent_id,
        req.agent_id,
        req.retry_attempt,
        req.error,
        req.intercepted,
        req.cost_usd,
        req.input_tokens,
        req.output_tokens,
    )


@dataclass(slots=True)
class Folded:
    """What :func:`place_folds` gives the build: totals per run and for the session, agents by first use."""

    runs: dict[str, _Totals]
    session: _Totals
    agents: dict[str, Key]


def place_folds(
    kept: Iterable[Request],
    folds: dict[FoldKey, Fold],
    runs: dict[str, Run],
    run_of: Callable[[str | None], str | None],
) -> Folded:
    """Give each run the folds of its requests, as the full build's request loop gives it its requests.

    ``kept`` are the requests kept whole while reading (SDK spans with usage,
    wrappers dropped by now): they are folded first. ``run_of`` finds the run
    of a parent span; runs named only by requests are added to ``runs``.
    """
    # Nothing read is changed: a live view builds again from the same folds.
    extra: dict[FoldKey, Fold] = {}
    for req in kept:
        fold_request(extra, req)
    out = Folded({}, _Totals(), {})
    per_run: dict[str, Fold] = {}
    copied: set[str] = set()
    for slot, fold in chain(folds.items(), extra.items()):
        out.session.merge(fold.totals)
        for agent, key in fold.agent_keys():
            _keep_earliest(out.agents, agent, key)
        rid = slot if isinstance(slot, str) else run_of(slot[1])
        if rid is None:
            continue  # requests outside any run: in the session's totals only
        placed = fold.resolved(rid)
        have = per_run.get(rid)
        if have is None:
            per_run[rid] = placed
            continue
        if rid not in copied:
            have = per_run[rid] = have.copy()
            copied.add(rid)
        have.merge(placed)
    # Runs are created in the order of their first request, as the full build creates them (a
    # placeholder for a parent never seen takes its first child's times, in this order).
    for rid, fold in sorted(per_run.items(), key=lambda item: item[1].first):
        owner = runs.get(rid)
        if owner is None:
            owner = runs[rid] = Run(run_id=rid, agent_id=fold.first_agent, parent_run_id=fold.first_parent)
        if owner.parent_run_id is None and fold.parent is not None:
            owner.parent_run_id = fold.parent[1]
        if owner.agent_id is None and fold.agent is not None:
            owner.agent_id = fold.agent[1]
        if not owner.span_present:
            if fold.start_ns and (not owner.start_ns or fold.start_ns < owner.start_ns):
                owner.start_ns = fold.start_ns
            owner.end_ns = max(owner.end_ns, fold.end_ns)
        out.runs[rid] = fold.totals
    return out
