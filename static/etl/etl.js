// ETL pages: live job rows and calendar cells over the job-rows stream (its path in the element's data-ws), cell selection on the calendar.
(function () {
  "use strict";
  const CELL_STATE = { succeeded: "done", failed: "failed", queued: "running", running: "running", cancelled: "missing" };

  function watch(path, ids, onJob) {
    if (!ids.length) return null;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let ended = false;
    let socket;
    function open() {
      socket = new WebSocket(`${scheme}://${location.host}${path}?ids=${ids.join(",")}`);
      socket.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (message.type === "job") onJob(message.job);
        if (message.type === "end") { ended = true; socket.close(); }
      };
      socket.onclose = () => { if (!ended) setTimeout(open, 2000); };
    }
    open();
    return { close() { ended = true; socket.close(); } };
  }

  function updateJobRow(job) {
    document.querySelectorAll(`[data-job-id="${job.id}"]`).forEach((row) => {
      const status = row.querySelector("[data-field=status]");
      if (status) { status.textContent = job.status; status.className = `status status-${job.status}`; }
      const progress = row.querySelector("progress");
      if (progress) progress.value = job.progress;
      const message = row.querySelector("[data-field=message]");
      if (message) message.textContent = job.message;
      const records = row.querySelector("[data-field=records]");
      if (records && job.records_written !== null) records.textContent = job.records_written;
      row.dataset.status = job.status;
    });
  }

  function updateCell(job) {
    const key = `${job.branch_id}:${job.pos}:${job.work_date}`;
    const cell = document.querySelector(`[data-cell="${key}"]`);
    if (!cell) return;
    setCellState(cell, CELL_STATE[job.status] || "missing");
  }

  function setCellState(cell, state) {
    cell.className = cell.className.replace(/\bcell-\w+\b/g, "").trim() + ` cell-${state}`;
    cell.dataset.state = state;
    cell.title = `${cell.dataset.label}: ${state}`;
    const box = cell.querySelector("input[type=checkbox]");
    if (box) { box.checked = false; box.disabled = state === "running" || state === "done"; }
    recountLegend();
    updateSelectedCount();
  }

  // The legend counts the cells as they are now (a queued cell moves from "missing" to "queued / running").
  function recountLegend() {
    document.querySelectorAll("[data-legend]").forEach((out) => {
      out.textContent = document.querySelectorAll(`.calendar td.cell[data-state="${out.dataset.legend}"]`).length;
    });
  }

  let tableSocket = null;
  function bindJobsTable(root) {
    const table = root.querySelector("[data-live-jobs]:not([data-bound])");
    if (!table) return;
    table.dataset.bound = "1";
    if (tableSocket) tableSocket.close();
    const ids = (table.dataset.liveJobs || "").split(",").filter(Boolean);
    tableSocket = watch(table.dataset.ws, ids, updateJobRow);
  }

  function bindCalendar(root) {
    root.querySelectorAll("[data-watch-jobs]:not([data-bound])").forEach((watcher) => {
      watcher.dataset.bound = "1";
      // The ticked cells were just queued: they show as queued at once, and the selection starts again from 0.
      document.querySelectorAll(".calendar input[name=cell]:checked").forEach((box) => setCellState(box.closest("td.cell"), "running"));
      const ids = (watcher.dataset.watchJobs || "").split(",").filter(Boolean);
      watch(watcher.dataset.ws, ids, (job) => { updateCell(job); updateJobRow(job); });
    });
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-select-cells]");
    if (!button) return;
    event.preventDefault();
    const which = button.dataset.selectCells;
    document.querySelectorAll(".calendar input[type=checkbox][name=cell]").forEach((box) => {
      const state = box.closest("[data-state]").dataset.state;
      if (which === "none") box.checked = false;
      else if (which === "missing") box.checked = !box.disabled && (state === "missing" || state === "failed");
    });
    updateSelectedCount();
  });

  function updateSelectedCount() {
    const out = document.querySelector("[data-selected-count]");
    if (out) out.textContent = document.querySelectorAll(".calendar input[name=cell]:checked").length;
  }
  document.addEventListener("change", (event) => {
    if (event.target.matches(".calendar input[name=cell]")) updateSelectedCount();
  });

  function init(root) { bindJobsTable(root); bindCalendar(root); updateSelectedCount(); }
  document.addEventListener("DOMContentLoaded", () => init(document));
  document.addEventListener("htmx:afterSettle", () => init(document));
  window.etlLive = { watch, updateJobRow, updateCell };
})();
