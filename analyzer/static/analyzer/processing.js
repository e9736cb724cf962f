/* CSV analyzer session page: the live progress of the upload processing job.
 * Listens on /ws/analyzer/processings/<job id>/ (core's job stream: status snapshots, `stage`
 * events, `end`), resumes with ?after=lastSeq after a reconnect, keeps the chat locked until the
 * file is ready, then swaps the file side of the page (detection, preview, profile — or the error)
 * in with HTMX. The auto-analysis then streams into the chat over the session websocket. */
(function () {
  "use strict";

  const AnalyzerProcessing = {
    init(state, chat) {
      this.state = state;
      this.chat = chat;
      this.lastSeq = 0;
      this.retries = 0;
      this.finished = false;
      if (state.status !== "ready") this.lockChat(state.status);
      if (state.status === "processing" && state.websocket) this.connect();
    },

    el(id) { return document.getElementById(id); },

    lockChat(status) {
      const input = this.el("chat-input");
      ["chat-send", "chat-auto", "chat-stop"].forEach((id) => { const b = this.el(id); if (b) b.disabled = true; });
      if (input) {
        input.disabled = true;
        input.placeholder = status === "failed" ? "This file could not be processed: nothing to ask about."
          : "Questions can be asked once the file is processed…";
      }
    },

    unlockChat() {
      const input = this.el("chat-input");
      if (input) { input.disabled = false; input.placeholder = "Ask about the data, e.g. “sum of amount by category”"; }
      if (this.chat && this.chat.setRunning) this.chat.setRunning(!!this.chat.running);
    },

    connect() {
      const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(`${proto}//${window.location.host}${this.state.websocket}?after=${this.lastSeq}`);
      this.ws = ws;
      ws.onopen = () => { this.retries = 0; };
      ws.onmessage = (e) => { try { this.handle(JSON.parse(e.data)); } catch (err) { console.error(err); } };
      ws.onclose = (e) => {
        if (this.finished) return;
        const line = this.el("processing-message");
        if (e.code === 4404 || e.code === 4401 || e.code === 4403) { if (line) line.textContent = "This session is not available."; return; }
        if (this.retries >= 8) { if (line) line.textContent = "Connection lost. Reload the page to see the result."; return; }
        const delay = Math.min(15000, 500 * Math.pow(2, this.retries++));
        setTimeout(() => this.connect(), delay);
      };
      const cancel = this.el("processing-cancel");
      if (cancel && !cancel.dataset.bound) {
        cancel.dataset.bound = "1";
        cancel.addEventListener("click", () => {
          if (!confirm("Stop processing this file?")) return;
          if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "cancel" }));
          cancel.disabled = true;
        });
      }
    },

    handle(m) {
      if (m.type === "event") {
        if (m.seq <= this.lastSeq) return;
        this.lastSeq = m.seq;
        const list = this.el("processing-stages");
        if (m.kind === "stage" && list && m.data && m.data.message) {
          const li = document.createElement("li");
          li.dataset.stage = m.data.stage || "";
          li.textContent = m.data.message;
          list.appendChild(li);
        }
      } else if (m.type === "status") {
        const job = m.job || {};
        const bar = this.el("processing-progress");
        const line = this.el("processing-message");
        if (bar) bar.value = job.progress || 0;
        if (line && job.message) line.textContent = job.message;
        if (job.finished) this.finish(job);
      } else if (m.type === "end") {
        this.finished = true;
        if (this.ws) this.ws.close();
      }
    },

    finish(job) {
      if (this.done) return;
      this.done = true;
      this.finished = true;
      const ready = job.status === "succeeded";
      const swapped = () => {
        if (ready) this.unlockChat(); else this.lockChat("failed");
        document.body.dispatchEvent(new CustomEvent("analyzer-processed", { detail: { status: job.status } }));
      };
      if (window.htmx) {
        window.htmx.ajax("GET", this.state.file_url, { target: "#session-file", swap: "outerHTML" })
          .then(swapped, () => window.location.reload());
      } else {
        window.location.reload();
      }
    },
  };

  window.AnalyzerProcessing = AnalyzerProcessing;
})();
