// Fetch job page: status, progress and events live over /ws/etl/jobs/<id>/?after=SEQ (core job-stream
// protocol). Reconnects resume after the last event seen; when the job ends, the server-rendered
// details (actions, candidates, stored files, rejected rows, audit) are fetched once.
(function () {
  "use strict";
  const root = document.getElementById("job-live");
  if (!root) return;
  const $ = (name) => root.querySelector(`[data-live="${name}"]`);
  let after = parseInt(root.dataset.after || "0", 10) || 0;
  let ended = root.dataset.finished === "1";
  let delay = 500;

  function describe(kind, d) {
    switch (kind) {
      case "step": return d.message || "";
      case "listed": {
        const rejected = (d.rejected || []).length;
        return `Listed ${d.files || 0} file(s)` + (rejected ? `, ${rejected} entry(ies) rejected` : "");
      }
      case "downloaded": return `Downloaded ${d.name} (${d.filetype}, ${d.size} bytes, ${d.rows} data rows)`;
      case "download_problem": return `Skipped ${d.name}: ${d.problem}`;
      case "chosen": return "Chosen: " + Object.entries(d.chosen || {}).map(([t, n]) => `${t} ${n || "— none"}`).join(", ");
      case "parsed": return `Parsed ${d.parsed} sales line(s), ${d.payments_parsed} payment(s); ${d.rejected} rejected, ${d.unpaid_lines} unpaid`;
      case "result": return `Result: ${d.status} — ${d.message || ""}`;
      default: return kind;
    }
  }

  function addEvent(message) {
    const list = $("events");
    if (list.querySelector(`[data-seq="${message.seq}"]`)) return;
    const empty = list.querySelector("[data-empty]");
    if (empty) empty.remove();
    const item = document.createElement("li");
    item.dataset.seq = String(message.seq);
    item.dataset.kind = message.kind;
    const data = message.data || {};
    item.textContent = (data.attempt ? `#${data.attempt} ` : "") + describe(message.kind, data);
    list.appendChild(item);
  }

  function updateStatus(job) {
    const status = $("status");
    status.textContent = job.status;
    status.className = `status status-${job.status}`;
    $("message").textContent = job.message || "";
    $("progress").value = job.progress || 0;
    $("attempts").textContent = job.attempt_count;
    if (job.records_written !== null && job.records_written !== undefined) {
      $("records").textContent = `${job.records_written} written` +
        (job.records_before !== null && job.records_before !== undefined ? ` (before: ${job.records_before})` : "");
    }
    const counts = Object.entries(job.counts || {});
    $("counts").textContent = counts.length ? counts.map(([k, v]) => `${k}=${v}`).join(" · ") : "—";
    root.dataset.status = job.status;
  }

  function refreshDetails() {
    const url = root.dataset.detailsUrl;
    if (window.htmx) {
      htmx.ajax("GET", url, { target: "#job-details", swap: "outerHTML" });
    } else {
      fetch(url, { credentials: "same-origin" }).then((r) => r.text()).then((html) => {
        const box = document.getElementById("job-details");
        if (box) box.outerHTML = html;
      });
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${root.dataset.ws}?after=${after}`);
    const note = $("connection");
    socket.onopen = () => { delay = 500; note.hidden = true; };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "event") {
        after = Math.max(after, message.seq);
        root.dataset.after = String(after);
        addEvent(message);
      } else if (message.type === "status") {
        updateStatus(message.job);
      } else if (message.type === "end") {
        ended = true;
        root.dataset.ended = "1";
        socket.close();
        refreshDetails();
      }
    };
    socket.onclose = () => {
      if (ended) return;
      note.textContent = "Connection lost; reconnecting…";
      note.hidden = false;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }
  if (!ended) connect();
})();
