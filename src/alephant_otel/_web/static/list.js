// alephant-otel: keeps the session list current while the trace file grows.
// Polls /api/version; when it changes, redraws the table body and the totals from
// /api/list (values through textContent only) and reloads the charts.
(function () {
  "use strict";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function redraw(doc) {
    var body = document.getElementById("rows");
    var rows = document.createDocumentFragment();
    doc.rows.forEach(function (r) {
      var tr = el("tr");
      doc.columns.forEach(function (key, i) {
        var td = el("td", doc.aligns[i]);
        if (key === "session_id") {
          td.className = "text id";
          var a = el("a", null, r.session_id);
          a.href = "/sessions/" + encodeURIComponent(r.session_id);
          td.appendChild(a);
          if (r.name) td.appendChild(el("span", "name", r.name));
        } else if (key === "status") {
          td.appendChild(el("span", "status " + r.status, r.status));
        } else {
          td.textContent = String(r[key]);
        }
        tr.appendChild(td);
      });
      rows.appendChild(tr);
    });
    body.replaceChildren(rows);
    document.getElementById("empty").hidden = doc.rows.length > 0;
    document.getElementById("totals").textContent = doc.totals;
    document.querySelectorAll("img[data-chart]").forEach(function (img) {
      var src = img.getAttribute("src").replace(/([?&])v=[^&]*/, "$1v=" + encodeURIComponent(doc.version));
      img.setAttribute("src", src);
    });
  }

  function start() {
    var live = document.body.dataset.live;
    if (!live) return;
    var parts = live.split(" ");
    var version = parts[0];
    var url = parts[1];
    document.getElementById("live").hidden = false;
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

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
