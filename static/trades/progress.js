// Live progress of trade exports over the websocket (/ws/trades/exports/<id>/), with a
// polling fallback on the REST API; downloads the file when the export succeeds.
(function () {
  "use strict";
  const fmt = (n) => (n === null || n === undefined ? "" : Number(n).toLocaleString("en-US"));

  function render(box, job) {
    const bar = box.querySelector("[data-role=bar]");
    const msg = box.querySelector("[data-role=message]");
    const state = box.querySelector("[data-role=status]");
    const dl = box.querySelector("[data-role=download]");
    const cancel = box.querySelector("[data-role=cancel]");
    state.textContent = job.status.charAt(0).toUpperCase() + job.status.slice(1);
    state.className = `status status-${job.status}`;
    let text = job.message || "";
    if (job.status === "running" && job.rows_written !== undefined && job.rows_written !== null) {
      text = progressText(box, job);
    }
    if (job.status === "failed") text = `Failed: ${(job.error || job.message || "").split("\n")[0]}`;
    msg.textContent = text;
    bar.value = job.status === "succeeded" ? 1 : job.progress || 0;
    if (job.finished) cancel.hidden = true;
    if (job.download_url) { dl.href = job.download_url; dl.hidden = false; }
  }

  // "12,000 of ~48,000 rows (25%) · 4,000 rows/s · about 9 s left": the rate is measured here, between the
  // first and the latest report of this export's run; the share comes from the preview's estimate.
  function progressText(box, job) {
    const now = Date.now() / 1000;
    const rows = Number(job.rows_written);
    if (!box.rateStart || rows < box.rateStart.rows) box.rateStart = { t: now, rows };
    const est = job.estimated_rows;
    let text = est ? `${fmt(rows)} of ~${fmt(est)} rows (${Math.min(99, Math.floor((100 * rows) / est))}%)` : `${fmt(rows)} rows written`;
    const seconds = now - box.rateStart.t;
    if (seconds >= 1 && rows > box.rateStart.rows) {
      const rate = (rows - box.rateStart.rows) / seconds;
      text += ` · ${fmt(Math.round(rate))} rows/s`;
      if (est && est > rows) text += ` · about ${timeLeft((est - rows) / rate)} left`;
    }
    return text;
  }

  function timeLeft(seconds) {
    if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
    if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
    return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  }

  function finish(box, job) {
    if (box.dataset.finished) return;
    box.dataset.finished = "1";
    render(box, job);
    document.body.dispatchEvent(new CustomEvent("trades:export-finished", { detail: job }));
    if (job.status === "succeeded" && job.download_url && box.dataset.autodownload !== "0") {
      window.location.href = job.download_url;  // attachment: downloads without leaving the page
    }
  }

  function poll(box, info) {
    const timer = setInterval(async () => {
      try {
        const res = await fetch(info.api_url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (!res.ok) return;
        const job = await res.json();
        job.finished = ["succeeded", "failed", "cancelled"].includes(job.status);
        if (job.available) job.download_url = info.download_url_template.replace("0", job.id);
        render(box, job);
        if (job.finished) { clearInterval(timer); finish(box, job); }
      } catch (e) { /* keep polling */ }
    }, 1000);
  }

  function follow(box) {
    if (box.dataset.following) return;
    box.dataset.following = "1";
    const info = JSON.parse(box.dataset.export);
    info.download_url_template = info.detail_url.replace(/\/exports\/\d+\/$/, "/exports/0/download/");
    // A file already there (deduplicated request or page of a finished export): no autodownload on load.
    if (["succeeded", "failed", "cancelled"].includes(info.status)) {
      box.dataset.autodownload = box.closest("#export-status") && info.available ? "1" : "0";
      finish(box, Object.assign({ finished: true }, info));
      return;
    }
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let ended = false;
    let ws;
    try { ws = new WebSocket(`${scheme}://${location.host}${info.ws_url}`); } catch (e) { poll(box, info); return; }
    const cancel = box.querySelector("[data-role=cancel]");
    cancel.addEventListener("click", () => {
      cancel.disabled = true;
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "cancel" }));
    });
    let last = null;
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "status") { last = msg.job; render(box, msg.job); }
      if (msg.type === "end") { ended = true; finish(box, last); ws.close(); }
    };
    ws.onclose = () => { if (!ended) poll(box, info); };
  }

  function scan(root) { (root || document).querySelectorAll(".export-progress").forEach(follow); }
  document.addEventListener("DOMContentLoaded", () => scan());
  document.addEventListener("htmx:afterSettle", (ev) => scan(ev.detail.elt));
  if (document.readyState !== "loading") scan();
})();
