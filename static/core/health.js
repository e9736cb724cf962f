// Health page: the worker check's status and progress, live over its job websocket.
document.addEventListener("htmx:wsBeforeMessage", (e) => {
  if (!document.getElementById("check-stream")) return;
  const msg = JSON.parse(e.detail.message);
  if (msg.type === "status") {
    document.getElementById("check-status").textContent = msg.job.status + (msg.job.message ? " — " + msg.job.message : "");
    document.getElementById("check-progress").value = msg.job.progress;
  }
  e.preventDefault();
});
