// alephant-otel: a request's captured conversation (content capture on), under its row in the
// waterfall. Collapsed by default in a <details>, so the text is in the page without a click;
// every value goes in through textContent.
(function () {
  "use strict";
  var el = window.alephant.el;

  function conversation(r) {
    var turns = r.conversation || [];
    if (!turns.length) return null;
    var box = el("details", "conv");
    box.dataset.requestId = r.request_id || "";
    var messages = turns.filter(function (t) { return t.kind === "text" || t.kind === "raw"; }).length;
    box.appendChild(el("summary", null, "conversation · " + turns.length + " part" + (turns.length === 1 ? "" : "s") +
      (messages !== turns.length ? " (" + (turns.length - messages) + " tool or media)" : "")));
    var list = el("div", "turns");
    turns.forEach(function (t) {
      var turn = el("div", "turn role-" + t.role + (t.output ? " output" : ""));
      var who = el("span", "role", t.kind === "text" || t.kind === "raw" ? t.role : t.role + " · " + t.kind);
      turn.appendChild(who);
      turn.appendChild(el("pre", "text", t.text));
      if (t.finish) turn.appendChild(el("span", "finish muted", "finish: " + t.finish));
      list.appendChild(turn);
    });
    box.appendChild(list);
    return box;
  }

  window.alephant.conversation = conversation;
})();
