// Live walk-forward page: progress and one row per finished window stream over the job websocket; when the
// job ends the page reloads once to show the stitched chart and the full windows table.
(function () {
  var root = document.getElementById("walkforward-live");
  if (!root) return;
  var $ = function (name) { return root.querySelector('[data-live="' + name + '"]'); };
  var after = 0, ended = false, windows = 0;
  var startedFinished = root.dataset.finished === "1";

  function fmt(v) {
    if (v === null || v === undefined) return "—";
    if (Number.isInteger(v)) return v.toLocaleString();
    return Number(v).toFixed(2);
  }
  function paramsText(params) {
    if (!params) return "none (stayed in cash)";
    return Object.keys(params).map(function (k) { return k + " " + params[k]; }).join(" · ");
  }
  function day(seconds) { return new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " "); }
  function addRow(w) {
    var body = $("rows");
    if (!body) return;
    var tr = document.createElement("tr");
    tr.setAttribute("data-testid", "live-window-row");
    var oos = w.out_of_sample || {}, is = w.in_sample || {};
    [w.index + 1, day(w.oos_first) + " – " + day(w.oos_last), paramsText(w.params), fmt(is.sharpe), fmt(oos.sharpe),
      fmt(oos.return_pct) + " %"].forEach(function (c) {
      var td = document.createElement("td"); td.textContent = c; tr.appendChild(td);
    });
    body.appendChild(tr);
    windows += 1;
    $("count").textContent = "(" + windows + " received)";
    root.dataset.received = String(windows);
  }
  function updateStatus(job) {
    var status = $("status");
    status.textContent = job.status.charAt(0).toUpperCase() + job.status.slice(1);
    status.className = "status status-" + job.status;
    $("message").textContent = job.message || "";
    $("progress").value = Math.round((job.progress || 0) * 100);
    if (job.finished) {
      var cancel = $("cancel-form");
      if (cancel) cancel.remove();
    }
  }
  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(proto + location.host + root.dataset.ws + "?after=" + after);
    ws.onmessage = function (event) {
      var msg = JSON.parse(event.data);
      if (msg.type === "event") {
        after = Math.max(after, msg.seq);
        if (msg.kind === "window") addRow(msg.data);
      } else if (msg.type === "status") {
        updateStatus(msg.job);
      } else if (msg.type === "end") {
        ended = true;
        root.dataset.ended = "1";
        ws.close();
        if (!startedFinished) location.reload();
      }
    };
    ws.onclose = function () { if (!ended) setTimeout(connect, 1000); };
  }
  if (!startedFinished) connect();
})();
