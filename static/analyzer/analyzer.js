/* CSV analyzer pages: upload with progress, and the chat over the session websocket.
 * The server persists every event with a sequence number; this client renders them and,
 * after a reconnect, asks only for what it missed (?after=lastSeq). */
(function () {
  "use strict";

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    });
    (children || []).forEach((c) => c && node.appendChild(c));
    return node;
  }

  // Charts load nothing: their data are inlined by the server, so every load, URL check (images, links)
  // and HTTP or file request vega would make is refused.
  const refuse = () => Promise.reject(new Error("Charts may not load anything."));
  const REFUSING_LOADER = { load: refuse, sanitize: refuse, http: refuse, file: refuse };

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  function humanSize(bytes) {
    const units = ["bytes", "KB", "MB", "GB"];
    let value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
  }

  // --- upload ---------------------------------------------------------------------
  const AnalyzerUpload = {
    init(form) {
      if (!form) return;
      const input = form.querySelector("input[type=file]");
      const zone = form.querySelector("#drop-zone");
      const bar = form.querySelector("#upload-progress");
      const statusLine = form.querySelector("#upload-status");
      const errorLine = form.querySelector("#upload-error");
      const button = form.querySelector("#upload-button");
      const maxBytes = parseInt(form.dataset.maxBytes, 10);
      const allowed = [".csv", ".csv.gz", ".parquet", ".pq"];

      const choice = form.querySelector("#upload-choice");
      const showError = (msg) => { errorLine.textContent = msg; errorLine.hidden = !msg; };
      let chosen = null;

      // What is wrong with a file before it is sent, or "".
      function problem(file) {
        const name = file.name.toLowerCase();
        if (!allowed.some((ext) => name.endsWith(ext))) return "Unsupported file type: upload a .csv, .csv.gz, .parquet or .pq file.";
        if (file.size === 0) return "The file is empty.";
        if (file.size > maxBytes) return `The file is too large; the limit is ${maxBytes.toLocaleString()} bytes.`;
        return "";
      }

      // Picking (or dropping) a file only chooses it: its name and size show, and Upload sends it. Another pick
      // replaces the choice, so a wrong one costs nothing.
      function choose(file) {
        const wrong = problem(file);
        showError(wrong);
        chosen = wrong ? null : file;
        choice.hidden = !chosen;
        choice.textContent = chosen ? `${file.name} · ${humanSize(file.size)} — ready to upload` : "";
        button.disabled = !chosen;
      }

      function send(file) {
        showError("");
        const wrong = problem(file);
        if (wrong) return showError(wrong);
        const data = new FormData();
        data.append("file", file);
        const xhr = new XMLHttpRequest();
        xhr.open("POST", form.action);
        xhr.setRequestHeader("X-CSRFToken", csrfToken());
        xhr.setRequestHeader("Accept", "application/json");
        bar.hidden = false; bar.value = 0; button.disabled = true; button.setAttribute("aria-busy", "true");
        statusLine.textContent = "Uploading…";
        xhr.upload.onprogress = (e) => {
          if (e.lengthComputable) {
            bar.value = Math.round((e.loaded / e.total) * 100);
            statusLine.textContent = e.loaded < e.total ? `Uploading… ${bar.value}%` : "Uploaded, opening the session…";
          }
        };
        xhr.onload = () => {
          button.disabled = false; button.removeAttribute("aria-busy");
          let body = {};
          try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
          if ((xhr.status === 202 || xhr.status === 201) && body.url) { statusLine.textContent = "Uploaded, opening the session…"; window.location.href = body.url; return; }
          bar.hidden = true; statusLine.textContent = "";
          const msg = (body.file && body.file.join(" ")) || body.detail || `Upload failed (HTTP ${xhr.status}).`;
          showError(msg);
        };
        xhr.onerror = () => { button.disabled = false; button.removeAttribute("aria-busy"); bar.hidden = true; showError("The upload failed: network error."); };
        xhr.send(data);
      }

      form.addEventListener("submit", (e) => {
        e.preventDefault();
        if (chosen) send(chosen); else showError("Choose a file to upload.");
      });
      input.addEventListener("change", () => { if (input.files.length) choose(input.files[0]); });
      ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("dragging"); }));
      ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.remove("dragging"); }));
      zone.addEventListener("drop", (e) => { if (e.dataTransfer.files.length) choose(e.dataTransfer.files[0]); });
    },
  };

  // --- chat -------------------------------------------------------------------------
  function resultTable(columns, rows) {
    const names = (columns && columns.length) ? columns.map((c) => c.name) : (rows.length ? Object.keys(rows[0]) : []);
    const head = el("tr", {}, names.map((n) => el("th", { text: n })));
    const body = el("tbody", {}, rows.map((r) => el("tr", {}, names.map((n) => {
      const v = r[n];
      return v === null || v === undefined ? el("td", {}, [el("span", { class: "null", text: "null" })]) : el("td", { text: String(v) });
    }))));
    return el("div", { class: "table-scroll" }, [el("table", { class: "data-table" }, [el("thead", {}, [head]), body])]);
  }

  const AnalyzerChat = {
    init(state) {
      this.state = state;
      this.lastSeq = 0;
      this.blocks = {};          // answer_id -> assistant message element
      this.running = !!state.running;
      this.retries = 0;
      this.log = document.getElementById("chat-log");
      this.input = document.getElementById("chat-input");
      this.send = document.getElementById("chat-send");
      this.stop = document.getElementById("chat-stop");
      this.auto = document.getElementById("chat-auto");
      this.errorLine = document.getElementById("chat-error");
      this.connLine = document.getElementById("chat-connection");
      this.analyst = document.getElementById("chat-analyst");   // absent when only the built-in analyst exists
      this.intro = document.getElementById("analysts-intro");
      this.usage = state.usage || {};                          // staff only: tokens of each LLM answer
      state.messages.forEach((m) => this.handle(m, true));
      // Answers that finished long ago do not need their status lines.
      this.setRunning(this.running);
      document.getElementById("chat-form").addEventListener("submit", (e) => { e.preventDefault(); this.ask(); });
      this.input.addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); this.ask(); } });
      this.stop.addEventListener("click", () => this.post({ type: "stop" }));
      this.auto.addEventListener("click", () => { if (this.post({ type: "auto_analyze" })) this.setRunning(true); });
      this.connect();
    },

    connect() {
      const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(`${proto}//${window.location.host}${this.state.websocket}?after=${this.lastSeq}`);
      this.ws = ws;
      ws.onopen = () => { this.retries = 0; this.connLine.textContent = ""; this.connLine.dataset.state = "open"; };
      ws.onmessage = (e) => { try { this.handle(JSON.parse(e.data), false); } catch (err) { console.error(err); } };
      ws.onclose = (e) => {
        this.connLine.dataset.state = "closed";
        if (e.code === 4404 || e.code === 4401 || e.code === 4403) { this.connLine.textContent = "This session is not available."; return; }
        if (this.retries >= 5) { this.connLine.textContent = "Connection lost. Reload the page to reconnect."; return; }
        const delay = Math.min(30000, 1000 * Math.pow(2, this.retries++));
        this.connLine.textContent = `Connection lost; reconnecting in ${Math.round(delay / 1000)} s…`;
        setTimeout(() => this.connect(), delay);
      };
    },

    post(message) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) { this.showError("Not connected yet; try again in a moment."); return false; }
      this.ws.send(JSON.stringify(message));
      return true;
    },

    ask() {
      const text = this.input.value.trim();
      if (!text) return;
      if (this.running) { this.showError("An answer is still running: wait for it or press Stop."); return; }
      const message = { type: "message", text };
      if (this.analyst) message.analyst = this.analyst.value;
      if (this.post(message)) { this.input.value = ""; this.showError(""); this.setRunning(true); }
    },

    setRunning(on) {
      this.running = on;
      this.stop.disabled = !on;
      this.send.disabled = on;
      this.auto.disabled = on;
      this.send.setAttribute("aria-busy", on ? "true" : "false");
    },

    showError(msg) { this.errorLine.textContent = msg; this.errorLine.hidden = !msg; },

    scroll() { this.log.scrollTop = this.log.scrollHeight; },

    block(answerId) {
      const key = String(answerId);
      if (!this.blocks[key]) {
        const box = el("div", { class: "chat-msg assistant", "data-answer": key, "data-testid": "assistant-message" }, [el("div", { class: "status" })]);
        this.blocks[key] = box;
        this.log.appendChild(box);
      }
      return this.blocks[key];
    },

    handle(m, restoring) {
      if (m.seq === null || m.seq === undefined) {   // a refusal for this client only
        if (m.event === "error") { this.showError(m.data.message); this.setRunning(false); }
        return;
      }
      if (m.seq <= this.lastSeq) return;
      this.lastSeq = m.seq;
      const d = m.data || {};
      switch (m.event) {
        case "user":
          this.log.appendChild(el("div", { class: "chat-msg user", "data-testid": "user-message", text: d.text }));
          if (this.intro) this.intro.hidden = true;
          if (!restoring) this.setRunning(true);
          break;
        case "status": {
          const box = this.block(m.answer_id);
          box.querySelector(".status").textContent = d.message;
          if (!restoring) this.setRunning(true);
          break;
        }
        case "text": {
          const box = this.block(m.answer_id);
          const last = box.lastElementChild;
          if (d.stream && last && last.classList.contains("text") && last.dataset.stream === "1") last.textContent += d.text;
          else {
            const p = el("p", { class: "text", text: d.text });
            if (d.stream) p.dataset.stream = "1";
            box.appendChild(p);
          }
          break;
        }
        case "query_result": {
          const box = this.block(m.answer_id);
          const wrap = el("div", { class: "block query-result", "data-testid": "query-result" });
          if (d.explanation) wrap.appendChild(el("small", { class: "muted", text: d.explanation }));
          wrap.appendChild(el("details", {}, [el("summary", { text: "SQL" }), el("pre", { text: d.sql || "" })]));
          if (d.is_error) wrap.appendChild(el("p", { class: "err", text: d.error }));
          else {
            wrap.appendChild(resultTable(d.columns, d.result || []));
            const note = `${d.row_count} row${d.row_count === 1 ? "" : "s"}${d.truncated ? " (capped)" : ""}${d.shown < d.row_count ? `, ${d.shown} shown` : ""} · `;
            wrap.appendChild(el("small", { class: "muted" }, [document.createTextNode(note),
              el("a", { href: `${this.state.result_csv_url}${m.id}.csv`, download: "", "data-testid": "download-csv", text: "Download CSV" })]));
          }
          box.appendChild(wrap);
          break;
        }
        case "plot": {
          const box = this.block(m.answer_id);
          const target = el("div", { class: "plot", "data-testid": "plot" });
          const wrap = el("div", { class: "block" }, [target,
            el("details", {}, [el("summary", { text: "SQL and spec" }), el("pre", { text: d.sql || "" }),
              el("pre", { text: JSON.stringify(Object.assign({}, d.vega_lite_spec, { data: { values: `(${(d.vega_lite_spec.data && d.vega_lite_spec.data.values || []).length} rows)` } }), null, 2) })])]);
          box.appendChild(wrap);
          if (window.vegaEmbed) {
            const { usermeta, ...spec } = d.vega_lite_spec; // vega-embed would read options from usermeta
            // Through PlatformCharts.embed, so the chart is drawn again when the system's colour mode changes.
            PlatformCharts.embed(target, spec, { actions: { export: true, source: true, compiled: false, editor: false }, renderer: "svg", loader: REFUSING_LOADER })
              .then(() => target.setAttribute("data-rendered", "1"))
              .catch((err) => { target.textContent = `Could not render the chart: ${err}`; });
          } else target.textContent = "Chart library not loaded.";
          break;
        }
        case "error":
          this.block(m.answer_id).appendChild(el("p", { class: "err", "data-testid": "chat-error-event", text: d.message }));
          break;
        case "session_update":
          if (d.title) { document.getElementById("session-title").textContent = d.title; document.title = `${d.title} · CSV analyzer`; }
          break;
        case "done": {
          const box = this.block(m.answer_id);
          box.classList.add("finished");
          box.dataset.status = d.status || "";
          if (d.status === "cancelled") box.appendChild(el("p", { class: "muted small", text: "(stopped)" }));
          if (d.analyst_label) {
            const used = this.usage[String(m.answer_id)];
            const tokens = used ? ` · ${used.model} · ${used.prompt_tokens.toLocaleString()} prompt + ${used.completion_tokens.toLocaleString()} completion tokens${used.estimated ? " (estimated)" : ""}` : "";
            box.appendChild(el("p", { class: "answered-by", "data-testid": "answered-by", "data-analyst": d.analyst || "", text: `Answered by ${d.analyst_label}${tokens}` }));
          }
          if (!restoring) this.setRunning(false);
          break;
        }
        default:
          break;
      }
      this.scroll();
    },
  };

  window.AnalyzerUpload = AnalyzerUpload;
  window.AnalyzerChat = AnalyzerChat;
})();
