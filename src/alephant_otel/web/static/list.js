// alephant-otel: keeps the session list current while the trace file grows.
// When the file changes (common.js polls), redraws the table body and the totals from
// /api/list (values through textContent only) and reloads the charts.
(function () {
  "use strict";

  var el = window.alephant.el;

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
          a.title = r.session_id;
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
    if (doc.groups) redrawGroups(doc.groups);
    document.getElementById("empty").hidden = doc.rows.length > 0;
    document.getElementById("totals").textContent = doc.totals;
    document.getElementById("charts").hidden = !doc.charts;
    document.getElementById("charts-few").hidden = doc.charts;
    var byChart = document.getElementById("by-chart");
    if (byChart) byChart.hidden = !doc.charts;
    document.querySelectorAll("img[data-chart]").forEach(function (img) {
      var src = img.getAttribute("src").replace(/([?&])v=[^&]*/, "$1v=" + encodeURIComponent(doc.version));
      img.setAttribute("src", src);
    });
  }

  // The cost breakdown's rows: key (a filter link where the grouping is a filter), then numbers.
  function redrawGroups(groups) {
    var body = document.getElementById("group-rows");
    if (!body) return;
    var rows = document.createDocumentFragment();
    groups.forEach(function (g) {
      var tr = el("tr");
      var key = el("td", "text");
      if (g.href) {
        var a = el("a", null, g.key);
        a.href = g.href;
        key.appendChild(a);
      } else {
        key.textContent = g.key;
      }
      tr.appendChild(key);
      ["sessions", "requests", "tokens", "cost", "share"].forEach(function (k) {
        tr.appendChild(el("td", "num", g[k]));
      });
      rows.appendChild(tr);
    });
    body.replaceChildren(rows);
    document.getElementById("groups-empty").hidden = groups.length > 0;
  }

  window.alephant.ready(function () {
    window.alephant.follow(redraw);
  });
})();
