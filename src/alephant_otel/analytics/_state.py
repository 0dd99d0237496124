"""What a :class:`~._reconstruct.SessionBuilder` keeps of one session while it reads.

Reading a million spans, what is kept per session is the memory the read
needs, so each piece is in the smallest form that builds the same tree: a
session or run span as the few fields the build takes from it (folded in
the order the spans arrive, as the build used to fold a list of them), the
links the build follows to find a request's run, and containers made only
when a session needs them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from alephant_otel import _names as n
from alephant_otel.analytics._fold import Fold, FoldKey
from alephant_otel.analytics._model import Request, Rollup, Run, SpanRecord
from alephant_otel.analytics._toolstep import ToolStep

__all__ = ["MAX_DEPTH", "SessionState", "run_of"]

#: How far a parent chain is followed (spans linked in a cycle must not hang the build).
MAX_DEPTH = 256


@dataclass(slots=True, eq=False)
class _SessionSpans:
    """The session span(s) of a session, folded in the order they arrive.

    A session continued by several processes has one span each. Each field
    is what the build used to compute from the list of spans, left to right,
    so a span is kept as a few fields instead of a whole record.
    """

    name: str | None = None
    path: str | None = None
    end_ns: int | None = None
    rollup: Rollup | None = None
    metadata: dict[str, str] | None = None

    def add(self, rec: SpanRecord) -> None:
        self.metadata = self.metadata or rec.metadata
        self.name = self.name or rec.session_name
        self.path = self.path or rec.session_path
        self.end_ns = max(self.end_ns or 0, rec.end_ns) or None
        if rec.rollup is not None:
            self.rollup = rec.rollup if self.rollup is None else self.rollup + rec.rollup


@dataclass(slots=True, eq=False)
class _RunSpans:
    """The span(s) of one run, folded in the order they arrive (see :class:`_SessionSpans`)."""

    agent_id: str | None = None
    parent_run_id: str | None = None
    name: str | None = None
    start_ns: int = 0
    end_ns: int = 0
    error: bool = False
    rollup: Rollup | None = None
    #: The spans' parent span ids, in order, while no span has named the parent run: the build
    #: then finds it up the parent links (known only once every span is in).
    parents: tuple[str | None, ...] = ()

    def add(self, rec: SpanRecord) -> None:
        # Agent ids and run names repeat from run to run: one string each.
        self.agent_id = self.agent_id or (rec.agent_id and sys.intern(rec.agent_id))
        self.parent_run_id = self.parent_run_id or rec.run_parent_id
        self.parents = () if self.parent_run_id else (*self.parents, rec.parent_span_id)
        name = rec.name
        label = name[len(n.RUN_SPAN_PREFIX) :].strip() if name.startswith(n.RUN_SPAN_PREFIX) else ""
        self.name = self.name or (label and sys.intern(label)) or None
        if rec.start_ns and (not self.start_ns or rec.start_ns < self.start_ns):
            self.start_ns = rec.start_ns
        self.end_ns = max(self.end_ns, rec.end_ns)
        self.error = self.error or rec.error
        if rec.rollup is not None:
            self.rollup = rec.rollup if self.rollup is None else self.rollup + rec.rollup

    def run(self, run_id: str) -> Run:
        return Run(
            run_id=run_id,
            agent_id=self.agent_id,
            name=self.name,
            parent_run_id=self.parent_run_id,
            start_ns=self.start_ns,
            end_ns=self.end_ns,
            span_present=True,
            error=self.error,
            rollup=self.rollup,
        )


@dataclass(slots=True, eq=False)
class SessionState:
    """One session as read so far: its times, trace ids, folded session and run spans, links,
    and its requests (kept whole, or, for a summary, folded per run)."""

    session_id: str
    start_ns: int = 0
    last_ns: int = 0
    #: The trace id seen first, or, once there are several, all of them in the order seen.
    trace_ids: str | dict[str, None] = ""
    session_spans: _SessionSpans | None = None
    run_spans: dict[str, _RunSpans] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    #: The parent links the build follows to find a run (see :func:`run_of`): each run span's
    #: run id, and each other span's parent. A session span ends the search as a span never
    #: seen does, so it needs no link.
    run_links: dict[str, str | None] = field(default_factory=dict)
    links: dict[str, str | None] | None = None
    name: str | None = None
    path: str | None = None
    #: Summary builds: the requests read so far, summed per run id (or per parent span id, as
    #: ``(None, parent)``, for requests that name no run).
    folds: dict[FoldKey, Fold] = field(default_factory=dict)
    #: Summary builds: the parent span ids of folded requests that may be requests themselves
    #: (SDK spans that wrap one), i.e. not yet seen as a session, run or other span.
    fold_parents: set[str | None] | None = None
    #: Tool calls (``execute_tool`` spans), and the user id and metadata the session's spans
    #: that are not requests carry: None until a span has some (most sessions have no tools).
    tools: list[ToolStep] | None = None
    user_id: str | None = None
    metadata: dict[str, str] | None = None

    def see_trace(self, trace_id: str) -> None:
        """Note one more span of ``trace_id`` (called when it is not the only trace id so far)."""
        seen = self.trace_ids
        if isinstance(seen, str):
            self.trace_ids = {seen: None, trace_id: None}
        else:
            seen[trace_id] = None

    def fold_parent(self, parent_span_id: str | None) -> None:
        """Note the parent span of a folded request, unless it is known not to be a request."""
        if parent_span_id in self.run_links or (self.links is not None and parent_span_id in self.links):
            return
        if self.fold_parents is None:
            self.fold_parents = set()
        self.fold_parents.add(parent_span_id)

    def add_span(self, rec: SpanRecord) -> None:
        """Take a span of this session that is not a request."""
        kind = rec.kind
        self._link(rec.span_id, kind, rec.parent_span_id, rec.run_id)
        if rec.user_id is not None and self.user_id is None:
            self.user_id = rec.user_id
        if rec.metadata and kind != n.SPAN_KIND_SESSION:
            # Taken when no session span says it: a run's own metadata adds to the session's.
            self.metadata = {**rec.metadata, **self.metadata} if self.metadata else dict(rec.metadata)
        if kind == n.SPAN_KIND_TOOL:
            if self.tools is None:
                self.tools = []
            self.tools.append(ToolStep.from_record(rec))
        elif kind == n.SPAN_KIND_SESSION:
            if self.session_spans is None:
                self.session_spans = _SessionSpans()
            self.session_spans.add(rec)
        elif kind == n.SPAN_KIND_RUN:
            key = rec.run_id or rec.span_id
            spans = self.run_spans.get(key)
            if spans is None:
                spans = self.run_spans[key] = _RunSpans()
            spans.add(rec)

    def _link(self, span_id: str, kind: str | None, parent_span_id: str | None, run_id: str | None) -> None:
        """Record a span that is not a request (the last one read wins, for a span id seen twice)."""
        if self.fold_parents is not None:
            self.fold_parents.discard(span_id)  # not a request, so it wraps none
            if not self.fold_parents:
                self.fold_parents = None
        if kind == n.SPAN_KIND_RUN:
            if self.links is not None:
                self.links.pop(span_id, None)
            self.run_links[span_id] = run_id
            return
        self.run_links.pop(span_id, None)
        if kind == n.SPAN_KIND_SESSION:
            if self.links is not None:
                self.links.pop(span_id, None)
            return
        if self.links is None:
            self.links = {}
        self.links[span_id] = parent_span_id


def run_of(acc: SessionState, parent_span_id: str | None) -> str | None:
    """The run id of the nearest run span up the parent chain (within the session)."""
    seen = 0
    run_links, links = acc.run_links, acc.links
    while parent_span_id is not None and seen < MAX_DEPTH:
        if parent_span_id in run_links:
            return run_links[parent_span_id]
        if links is None or parent_span_id not in links:
            return None  # a session span, or a span never seen
        parent_span_id = links[parent_span_id]
        seen += 1
    return None
