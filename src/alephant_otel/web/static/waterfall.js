// alephant-otel: draws one session as a waterfall from the JSON block #session-data.
// Shared by the served page and the self-contained --html export. Every value from a
// span goes into the page through textContent, never as markup.
(function () {
  "use strict";

  var el = window.alephant.el;

  function num(n) {
    return Number(n || 0).toLocaleString("en-US");
  }

  function pct(x) {
    if (!x) return "0%";
    var p = x * 100;
    return (p < 1 ? p.toFixed(1) : p.toFixed(0)) + "%";
  }

  function ms(v) {
    if (v < 1000) return Math.round(v) + "ms";
    if (v < 120000) return (v / 1000).toFixed(1) + "s";
    return (v / 60000).toFixed(1) + "m";
  }

  function fact(k, v, cls) {
    var f = el("div", "fact");
    f.appendChild(el("span", "k", k));
    f.appendChild(el("span", "v" + (cls ? " " + cls : ""), v));
    return f;
  }

  function head(doc) {
    var s = doc.session;
    var box = el("section", "session-head");
    box.appendChild(el("h1", null, s.name || s.session_id));
    box.appendChild(el("div", "sid", s.session_id + (s.path ? "  ·  " + s.path : "")));
    var facts = el("div", "facts");
    var status = el("span", "status " + s.status, s.status);
    var sf = fact("status", "");
    sf.lastChild.appendChild(status);
    facts.appendChild(sf);
    facts.appendChild(fact("started", s.started));
    facts.appendChild(fact("duration", s.duration));
    facts.appendChild(fact("requests", num(s.requests)));
    facts.appendChild(fact("retries", num(s.retries)));
    facts.appendChild(fact("errors", num(s.errors)));
    facts.appendChild(fact("intercepted", num(s.intercepted)));
    facts.appendChild(fact("tokens in/out", num(s.input_tokens) + " / " + num(s.output_tokens)));
    facts.appendChild(fact("cost", s.cost));
    facts.appendChild(fact("agents", (s.agents || []).join(", ") || "-"));
    if (s.tool_calls) facts.appendChild(fact("tool calls", num(s.tool_calls)));
    if (s.user_id) facts.appendChild(fact("user", s.user_id));
    Object.keys(s.metadata || {}).sort().forEach(function (k) { facts.appendChild(fact(k, s.metadata[k])); });
    // The session span's own totals (counted in the process that ran it) against the sum of
    // the request spans read: "differ" means spans are missing (sampled out, lost, still open).
    var roll = s.rollup_matches === null ? "no session span" : s.rollup_matches ? "agree" : "differ";
    var rollCls = s.rollup_matches === null ? "" : s.rollup_matches ? "rollup ok" : "rollup bad";
    var check = fact("totals check", roll, rollCls);
    check.title = "the session span's own totals against the sum of the request spans read";
    facts.appendChild(check);
    box.appendChild(facts);
    if (s.notes && s.notes.length) {
      var ul = el("ul", "notes");
      s.notes.forEach(function (n) { ul.appendChild(el("li", null, n)); });
      box.appendChild(ul);
    }
    return box;
  }

  function ticks(span) {
    var track = el("div", "wf-track");
    var steps = 5;
    for (var i = 0; i < steps; i++) {
      var t = el("span", "tick", ms((span * i) / steps));
      t.style.left = (100 * i) / steps + "%";
      track.appendChild(t);
    }
    return track;
  }

  function shareBar(share) {
    var wrap = el("span", "share");
    wrap.title = pct(share) + " of the session's cost";
    var fill = el("i");
    fill.style.width = Math.min(100, share * 100) + "%";
    wrap.appendChild(fill);
    return wrap;
  }

  function badges(r) {
    var out = [];
    if (r.stream) out.push(el("span", "badge stream", "stream"));
    if (r.retry) out.push(el("span", "badge retry", "retry " + r.retry));
    if (r.incomplete) out.push(el("span", "badge incomplete", "incomplete"));
    if (r.error) out.push(el("span", "badge error", "error" + (r.http_status && r.http_status >= 400 ? " " + r.http_status : "")));
    // Short on the bar (the reason can be a sentence); the whole reason in its tooltip and the detail.
    (r.policy || []).forEach(function (p) {
      var badge = el("span", "badge policy", "intercepted" + (p.code ? " (" + p.code + ")" : ""));
      badge.title = p.reason;
      out.push(badge);
    });
    return out;
  }

  function detail(r) {
    var box = el("div", "detail");
    (r.policy || []).forEach(function (p) {
      box.appendChild(el("div", "policy-line", "Intercepted: " + p.reason + (p.code ? "  code " + p.code : "") + (p.status ? "  status " + p.status : "")));
    });
    if (r.trace_url) {
      var a = el("a", null, "open this trace in the backend");
      a.href = r.trace_url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      box.appendChild(a);
    }
    var table = el("table");
    (r.attrs || []).forEach(function (kv) {
      var tr = el("tr");
      tr.appendChild(el("td", "k", kv[0]));
      tr.appendChild(el("td", "v", kv[1]));
      table.appendChild(tr);
    });
    box.appendChild(table);
    return box;
  }

  function keyOf(r) {
    return r.request_id || r.span_id;
  }

  function row(r, span, open, index) {
    var req = r.kind === "request";
    var tool = r.kind === "tool";
    var line = el("div", "wf-row " + (req ? "req" : tool ? "tool" : "run"));
    var label = el("div", "wf-label");
    // Past the server's indent cap a row stops indenting (it would leave the label
    // column) and says its depth, 1 for a top-level run, as `sessions show` does.
    var indent = r.indent === undefined ? r.depth : r.indent;
    label.style.paddingLeft = 8 + indent * 16 + "px";
    if (r.deep) label.appendChild(el("span", "muted depth", "[depth " + (r.depth + 1) + "]"));
    if (req) {
      label.appendChild(el("span", "op", r.operation || r.name || "request"));
      if (r.model) label.appendChild(el("span", "model", r.model));
      if (r.request_id) label.appendChild(el("span", "rid", r.request_id));
      if (r.agent) label.appendChild(el("span", "agent", r.agent));
      line.dataset.requestId = r.request_id || "";
    } else if (tool) {
      label.appendChild(el("span", "op", "tool " + r.name));
      if (r.call_id) label.appendChild(el("span", "rid", r.call_id));
      if (r.agent) label.appendChild(el("span", "agent", r.agent));
    } else {
      label.appendChild(el("span", "op", "▾ " + r.name));
      label.appendChild(el("span", "rid", r.run_id));
      label.appendChild(el("span", "muted", num(r.requests) + " req" + (r.tool_calls ? " · " + num(r.tool_calls) + " tool" : "") + (r.span ? "" : " · no run span")));
    }
    line.appendChild(label);
    var nums = el("div", "wf-nums");
    // Usage that never arrived is not 0/0 (a free call): say it is unknown. A tool call has no tokens.
    if (tool) nums.appendChild(el("span", "tok", "-"));
    else if (r.usage_unknown) nums.appendChild(el("span", "tok unknown", "usage unknown"));
    else nums.appendChild(el("span", "tok", num(r.input_tokens) + "/" + num(r.output_tokens)));
    nums.appendChild(el("span", "cost", r.cost));
    nums.appendChild(shareBar(r.share));
    nums.appendChild(el("span", "share-pct", pct(r.share)));
    line.appendChild(nums);
    var track = el("div", "wf-track");
    var bar = el("div", "bar");
    var left = span > 0 ? (100 * r.start_ms) / span : 0;
    var width = span > 0 ? (100 * r.dur_ms) / span : 100;
    bar.style.left = Math.max(0, Math.min(100, left)) + "%";
    bar.style.width = Math.max(0, Math.min(100 - left, width)) + "%";
    if (tool && r.error) bar.classList.add("error");
    if (req) {
      if (r.policy && r.policy.length) bar.classList.add("intercepted");
      else if (r.error) bar.classList.add("error");
      else if (r.retry) bar.classList.add("retry");
      else if (r.stream) bar.classList.add("stream");
    }
    bar.title = (req ? (r.operation || "request") + " " + (r.model || "") : tool ? "tool " + r.name : r.name) + " · " + r.latency;
    track.appendChild(bar);
    var text = el("span", "bar-text", r.latency);
    badges(r).forEach(function (b) { text.appendChild(document.createTextNode(" ")); text.appendChild(b); });
    // The text goes after the bar; near the right edge, before it, or inside a long bar; never
    // wider than the room it has there (cut with an ellipsis; the tooltip has all of it).
    var end = Math.min(100, left + Math.max(0, width));
    text.title = text.textContent;
    if (end <= 70) {
      text.style.left = end + "%";
      text.style.maxWidth = 100 - end + "%";
    } else if (left > 30) {
      text.style.right = 100 - Math.max(0, left) + "%";
      text.style.paddingRight = "6px";
      text.style.maxWidth = Math.max(0, left) + "%";
    } else {
      text.classList.add("inside");
      text.style.left = Math.max(0, left) + "%";
      text.style.maxWidth = 100 - Math.max(0, left) + "%";
    }
    track.appendChild(text);
    line.appendChild(track);
    var frag = [line];
    if (req) {
      line.dataset.index = String(index);
      if (open[keyOf(r)]) {
        line.classList.add("open");
        frag.push(detail(r));
      }
      var conv = window.alephant.conversation ? window.alephant.conversation(r) : null;
      if (conv) frag.push(conv);
    }
    return frag;
  }

  var state = { doc: null, open: {} };

  function draw(doc) {
    state.doc = doc;
    var root = document.getElementById("session");
    var fragment = document.createDocumentFragment();
    fragment.appendChild(head(doc));
    var wf = el("section", "wf");
    wf.id = "waterfall";
    var axis = el("div", "wf-row wf-axis");
    axis.appendChild(el("div", "wf-label", "run / request / tool"));
    axis.appendChild(el("div", "wf-nums", "tokens · cost · share"));
    axis.appendChild(ticks(doc.span_ms));
    wf.appendChild(axis);
    doc.rows.forEach(function (r, i) {
      row(r, doc.span_ms, state.open, i).forEach(function (n) { wf.appendChild(n); });
    });
    if (!doc.rows.length) wf.appendChild(el("p", "empty", "No run or request spans read for this session."));
    fragment.appendChild(wf);
    root.replaceChildren(fragment);
    document.title = "session " + doc.session.session_id;
  }

  function onClick(event) {
    var line = event.target.closest(".wf-row.req");
    if (!line || event.target.closest("a")) return;
    var r = state.doc.rows[Number(line.dataset.index)];
    if (!r) return;
    var key = keyOf(r);
    if (state.open[key]) {
      delete state.open[key];
      line.classList.remove("open");
      var next = line.nextSibling;
      if (next && next.classList.contains("detail")) next.remove();
      return;
    }
    state.open[key] = true;
    line.classList.add("open");
    line.after(detail(r));
  }

  function start() {
    var data = document.getElementById("session-data");
    if (!data) return;
    var t0 = performance.now();
    draw(JSON.parse(data.textContent));
    window.alephantRenderMs = performance.now() - t0;
    document.body.dataset.rendered = "1";
    document.getElementById("session").addEventListener("click", onClick);
    window.alephant.follow(draw);
  }

  window.alephant.ready(start);
})();
