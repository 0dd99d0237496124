// alephant-otel: what the page scripts share. Values from spans reach the page only
// through el() (textContent), never as markup.
(function () {
  "use strict";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // Live pages carry data-live="<version> <url>": poll /api/version each second and,
  // when the trace file changed, fetch url and hand its JSON to redraw.
  function follow(redraw) {
    var live = document.body.dataset.live;
    if (!live) return;
    var parts = live.split(" ");
    var version = parts[0];
    var url = parts[1];
    var dot = document.getElementById("live");
    if (dot) dot.hidden = false;
    setInterval(function () {
      fetch("/api/version", { cache: "no-store" })
        .then(function (resp) { return resp.json(); })
        .then(function (v) {
          if (v.version === version) return null;
          return fetch(url, { cache: "no-store" }).then(function (resp) { return resp.ok ? resp.json() : null; });
        })
        .then(function (doc) {
          if (!doc) return;
          version = doc.version;
          redraw(doc);
        })
        .catch(function () { /* the server stopped: keep the page as it is */ });
    }, 1000);
  }

  function ready(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }

  window.alephant = { el: el, follow: follow, ready: ready };
})();
