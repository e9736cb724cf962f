// Live sweep page: results and progress stream over the job websocket; the
// server-rendered "best results" table is refreshed when the sweep ends.
(function () {
  var root = document.getElementById("sweep-live");
  if (!root) return;
  var $ = function (name) { return root.querySelector('[data-live="' + name + '"]'); };
  var metricKeys = ["return_pct", "buy_hold_return_pct", "cagr_pct", "sharpe", "sortino", "calmar",
    "max_drawdown_pct", "trades", "win_rate_pct", "profit_factor", "expectancy_pct", "sqn", "exposure_pct",
    "volatility_ann_pct"];
  var results = [], after = 0, ended = false, pending = false, total = null;

  function fmt(v) {
    if (v === null || v === undefined) return "—";
    if (Number.isInteger(v)) return v.toLocaleString();
    return Number(v).toFixed(2);
  }
  // "fast 5 · slow 30", as the server's chips read, not JSON.
  // Booleans read "yes"/"no" as there (core/templatetags/platform_format.py params_text).
  function valueText(v) { return v === true ? "yes" : v === false ? "no" : String(v); }
  function paramsText(params) {
    return Object.keys(params || {}).map(function (k) { return k + " " + valueText(params[k]); }).join(" · ");
  }
  function score(r) { var v = r.metrics.sharpe; return v === null || v === undefined ? -Infinity : v; }
  function renderRows() {
    pending = false;
    var best = results.slice().sort(function (a, b) { return score(b) - score(a); }).slice(0, 15);
    var body = $("rows");
    body.textContent = "";
    best.forEach(function (r) {
      var tr = document.createElement("tr");
      var cells = [r.seq, r.instrument, paramsText(r.params)].concat(metricKeys.map(function (k) { return fmt(r.metrics[k]); }));
      cells.forEach(function (c) { var td = document.createElement("td"); td.textContent = c; tr.appendChild(td); });
      body.appendChild(tr);
    });
    $("count").textContent = "(" + results.length.toLocaleString() + (total ? " of " + total.toLocaleString() : "") + " received)";
    root.dataset.received = String(results.length);
  }
  function schedule() { if (!pending) { pending = true; requestAnimationFrame(renderRows); } }
  function updateStatus(job) {
    var status = $("status");
    status.textContent = job.status.charAt(0).toUpperCase() + job.status.slice(1);
    status.className = "status status-" + job.status;
    $("message").textContent = job.message || "";
    $("progress").value = Math.round((job.progress || 0) * 100);
    var m = /of ([\d,]+)/.exec(job.message || "");
    if (m) total = parseInt(m[1].replace(/,/g, ""), 10);
    if (job.finished) {
      var cancel = $("cancel-form");
      if (cancel) cancel.remove();
    }
  }
  // At the end the results table is read again, in the order and at the page the user is looking at.
  function refreshTable() {
    if (!window.htmx) return;
    var table = document.getElementById("results-table");
    var query = table ? "?" + new URLSearchParams({ sort: table.dataset.sort || "", dir: table.dataset.dir || "",
      page: table.dataset.page || "1" }).toString() : "";
    htmx.ajax("GET", root.dataset.tableUrl + query, { target: "#results-table", swap: "outerHTML" });
  }
  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(proto + location.host + root.dataset.ws + "?after=" + after);
    ws.onmessage = function (event) {
      var msg = JSON.parse(event.data);
      if (msg.type === "event") {
        after = Math.max(after, msg.seq);
        if (msg.kind === "result") { results.push(msg.data); schedule(); }
      } else if (msg.type === "status") {
        updateStatus(msg.job);
      } else if (msg.type === "end") {
        ended = true;
        root.dataset.ended = "1";
        ws.close();
        refreshTable();
      }
    };
    ws.onclose = function () { if (!ended) setTimeout(connect, 1000); };
  }
  connect();
})();
