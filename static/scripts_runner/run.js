// Live log of a run: replays chunks after the last seq seen, then streams new ones.
// Reconnects (with backoff) from the last seq, so nothing is shown twice or lost.
(function () {
  "use strict";
  const log = document.getElementById("log");
  if (!log) return;
  const state = document.getElementById("live-state");
  const stopForm = document.getElementById("stop-form");
  const MAX_LINES = 5000;
  let after = parseInt(log.dataset.after || "0", 10);
  let ended = false;
  let retry = 500;

  const follow = document.getElementById("follow-log");

  function nearBottom() {
    return log.scrollTop + log.clientHeight >= log.scrollHeight - 40;
  }

  // Follow the tail while "Follow" is ticked; scrolling up unticks it, scrolling back to the end ticks it again.
  function following() {
    return follow ? follow.checked : nearBottom();
  }
  if (follow) {
    follow.addEventListener("change", function () {
      if (follow.checked) log.scrollTop = log.scrollHeight;
    });
    log.addEventListener("scroll", function () {
      follow.checked = nearBottom();
    }, { passive: true });
    log.scrollTop = log.scrollHeight;
  }

  function addLines(stream, first, lines) {
    const stick = following();
    const frag = document.createDocumentFragment();
    lines.forEach(function (text, i) {
      const span = document.createElement("span");
      span.className = "line " + stream;
      span.dataset.no = String(first + i);
      span.textContent = text + "\n";
      frag.appendChild(span);
    });
    log.appendChild(frag);
    while (log.childElementCount > MAX_LINES) log.removeChild(log.firstElementChild);
    if (stick) log.scrollTop = log.scrollHeight;
  }

  function updateStatus(job) {
    const badge = document.querySelector("[data-testid=run-status]");
    if (badge) {
      badge.textContent = job.status;
      badge.className = "status status-" + job.status;
    }
    if (job.finished) runFinished();
  }

  // A finished run cannot be stopped: the button goes back to "Stop", disabled, whatever was clicked before.
  function runFinished() {
    if (!stopForm) return;
    const button = stopForm.querySelector("button");
    button.disabled = true;
    button.textContent = "Stop";
  }

  function connect() {
    const proto = window.location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(proto + "://" + window.location.host + log.dataset.ws + "?after=" + after);
    ws.onopen = function () {
      state.textContent = "live";
      retry = 500;
    };
    ws.onmessage = function (event) {
      const msg = JSON.parse(event.data);
      if (msg.type === "event" && msg.kind === "log") {
        if (msg.seq <= after) return;
        after = msg.seq;
        addLines(msg.data.stream, msg.data.first_line, msg.data.lines);
      } else if (msg.type === "status") {
        updateStatus(msg.job);
      } else if (msg.type === "end") {
        ended = true;
        state.textContent = "finished";
        runFinished();
        document.body.dispatchEvent(new Event("run-ended"));
        ws.close();
      }
    };
    ws.onclose = function (event) {
      if (ended) return;
      if (event.code === 4401 || event.code === 4403 || event.code === 4404) {
        state.textContent = "not allowed";
        return;
      }
      state.textContent = "reconnecting…";
      window.setTimeout(connect, retry);
      retry = Math.min(retry * 2, 5000);
    };
  }

  if (stopForm) {
    stopForm.addEventListener("submit", function (event) {
      event.preventDefault();
      if (ended) return;
      const button = stopForm.querySelector("button");
      button.disabled = true;
      button.textContent = "Stopping…";
      fetch(stopForm.action, { method: "POST", body: new FormData(stopForm), headers: { "HX-Request": "true" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
        })
        .catch(function () {
          if (ended) return;
          button.disabled = false;
          button.textContent = "Stop";
        });
    });
  }

  connect();
})();
