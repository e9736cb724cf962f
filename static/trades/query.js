// Query page of trade exports: exchange pills, expression pills, sort/aggregate switch,
// export confirmation and reset. Validation of expressions happens on the server (htmx).
(function () {
  "use strict";
  const form = document.getElementById("query-form");
  if (!form) return;

  // --- exchanges: removable pills with autocomplete and keyboard navigation -------------
  const exchanges = JSON.parse(document.getElementById("exchange-data").textContent);
  const exInput = document.getElementById("exchange-input");
  const exList = document.getElementById("exchange-options");
  const exPills = document.getElementById("exchange-pills");
  const exCount = document.getElementById("exchange-count");
  let active = -1;
  let matches = [];

  const label = (e) => `${e.acronym || e.name} (${e.id})`;
  const selectedIds = () => Array.from(exPills.querySelectorAll("input[name=exchanges]")).map((i) => Number(i.value));

  function updateExchangeCount() {
    const n = selectedIds().length;
    exCount.textContent = n ? `(${n})` : "";
  }

  function addExchange(ex) {
    if (!ex || selectedIds().includes(ex.id)) return;
    const pill = document.createElement("span");
    pill.className = "pill";
    pill.dataset.testid = "exchange-pill";
    pill.setAttribute("data-testid", "exchange-pill");
    pill.title = ex.name + (ex.mic ? ` · ${ex.mic}` : "");
    pill.innerHTML = '<span></span><input type="hidden" name="exchanges"><button type="button" class="pill-x" aria-label="Remove">×</button>';
    pill.querySelector("span").textContent = label(ex);
    pill.querySelector("input").value = ex.id;
    pill.querySelector("button").addEventListener("click", () => { pill.remove(); updateExchangeCount(); exInput.focus(); filtersChanged(); });
    exPills.appendChild(pill);
    updateExchangeCount();
    filtersChanged();
  }

  function renderOptions() {
    const q = exInput.value.trim().toLowerCase();
    const chosen = selectedIds();
    matches = exchanges.filter((e) => !chosen.includes(e.id) && (!q ||
      [e.acronym, e.name, e.mic, String(e.id)].some((v) => (v || "").toLowerCase().includes(q))));
    exList.innerHTML = "";
    matches.slice(0, 30).forEach((e, i) => {
      const li = document.createElement("li");
      li.id = `exchange-option-${e.id}`;
      li.setAttribute("role", "option");
      li.setAttribute("data-testid", "exchange-option");
      li.textContent = `${label(e)} — ${e.name}`;
      li.setAttribute("aria-selected", i === active ? "true" : "false");
      li.addEventListener("mousedown", (ev) => { ev.preventDefault(); choose(i); });
      exList.appendChild(li);
    });
    const open = document.activeElement === exInput && matches.length > 0;
    exList.hidden = !open;
    exInput.setAttribute("aria-expanded", open ? "true" : "false");
    exInput.setAttribute("aria-activedescendant", active >= 0 && matches[active] ? `exchange-option-${matches[active].id}` : "");
  }

  function choose(i) {
    addExchange(matches[i]);
    exInput.value = "";
    active = -1;
    renderOptions();
  }

  exInput.addEventListener("input", () => { active = matches.length ? 0 : -1; renderOptions(); active = matches.length ? 0 : -1; renderOptions(); });
  exInput.addEventListener("focus", renderOptions);
  exInput.addEventListener("blur", () => { exList.hidden = true; exInput.setAttribute("aria-expanded", "false"); });
  exInput.addEventListener("keydown", (ev) => {
    const visible = Math.min(matches.length, 30);
    if (ev.key === "ArrowDown") { ev.preventDefault(); active = visible ? (active + 1) % visible : -1; renderOptions(); }
    else if (ev.key === "ArrowUp") { ev.preventDefault(); active = visible ? (active - 1 + visible) % visible : -1; renderOptions(); }
    else if (ev.key === "Enter") { ev.preventDefault(); if (visible) choose(active >= 0 ? active : 0); }
    else if (ev.key === "Escape") { exList.hidden = true; }
    else if (ev.key === "Backspace" && exInput.value === "") {
      const pills = exPills.querySelectorAll(".pill");
      if (pills.length) { ev.preventDefault(); pills[pills.length - 1].remove(); updateExchangeCount(); renderOptions(); filtersChanged(); }
    }
  });

  // --- tickers count ------------------------------------------------------------------
  const tickerSelect = document.getElementById("ticker-select");
  const tickerCount = document.getElementById("ticker-count");
  const updateTickerCount = () => {
    const n = tickerSelect.selectedOptions.length;
    tickerCount.textContent = n ? `(${n})` : "";
  };
  tickerSelect.addEventListener("change", updateTickerCount);

  // --- expressions: validated by the server as you type, accepted ones become pills --------
  const exprInput = document.getElementById("expression-input");
  const exprAdd = document.getElementById("expression-add");
  const exprPills = document.getElementById("operation-pills");
  const exprFeedback = document.getElementById("expression-feedback");
  const maxOps = Number(exprPills.dataset.max || 5);
  const operations = () => Array.from(exprPills.querySelectorAll("input[name=operations]")).map((i) => i.value);

  function setFeedback(html) { exprFeedback.innerHTML = html; }

  async function checkNow() {
    const body = new FormData();
    body.append("expression", exprInput.value);
    const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    const res = await fetch(exprInput.getAttribute("hx-post"), { method: "POST", body, headers: { "X-CSRFToken": csrf, "HX-Request": "true" } });
    setFeedback(await res.text());
  }

  async function addExpression() {
    if (operations().length >= maxOps) { setFeedback(`<small class="field-error" role="alert">At most ${maxOps} expressions.</small>`); return; }
    exprAdd.disabled = true;
    try {
      await checkNow();  // always decide on the server's answer for the current text
      const state = exprFeedback.querySelector("[data-valid]");
      if (!state || state.dataset.valid !== "1") { exprInput.focus(); return; }
      const text = state.dataset.normalized;
      if (operations().includes(text)) { setFeedback('<small class="field-error" role="alert">This expression is already added.</small>'); return; }
      const pill = document.createElement("span");
      pill.className = "pill";
      pill.setAttribute("data-testid", "operation-pill");
      pill.innerHTML = '<code></code><input type="hidden" name="operations"><button type="button" class="pill-x" aria-label="Remove">×</button>';
      pill.querySelector("code").textContent = text;
      pill.querySelector("input").value = text;
      pill.querySelector("button").addEventListener("click", () => { pill.remove(); syncMode(); filtersChanged(); });
      exprPills.appendChild(pill);
      put("", 0);
      setFeedback("");
      syncMode();
      filtersChanged();
    } finally {
      exprAdd.disabled = false;
    }
  }
  // --- smart typing, built on input events (phone keyboards report no key codes) ---------
  // PRICE and SIZE complete from their first letter; a unary minus or plus opens "-(" / "+(" and closes it; a
  // character that can never be part of an expression is refused with a hint; a pasted text is checked whole;
  // deleting into PRICE or SIZE removes the word.
  const exprHint = document.getElementById("expression-hint");
  const WORDS = { P: "PRICE", S: "SIZE" };
  const ALLOWED = /^[0-9.+\-*\/^() A-Za-z]*$/;
  let lastGood = { value: exprInput.value, caret: 0 };
  const hint = (text) => { exprHint.textContent = text; exprHint.hidden = !text; };
  // An operand may start here: at the start, after an operator or "(".
  const operandPosition = (before) => /(^|[+\-*\/^(])\s*$/.test(before);

  function put(value, caret) {
    exprInput.value = value;
    exprInput.setSelectionRange(caret, caret);
    lastGood = { value, caret };
  }
  function refuse(text) {
    put(lastGood.value, lastGood.caret);
    hint(text);
  }
  function wordsOnly(value, caret) {
    // Letters only as whole PRICE or SIZE: any other run of letters is removed (a partial word after a delete).
    let out = "", at = caret;
    value.replace(/[A-Za-z]+|[^A-Za-z]+/g, (part, offset) => {
      const up = part.toUpperCase();
      if (!/[A-Za-z]/.test(part) || up === "PRICE" || up === "SIZE") out += /[A-Za-z]/.test(part) ? up : part;
      else if (offset < caret) at -= Math.min(part.length, caret - offset);
      return part;
    });
    return { value: out, caret: Math.max(0, Math.min(at, out.length)) };
  }

  exprInput.addEventListener("input", (ev) => {
    const value = exprInput.value;
    const caret = exprInput.selectionStart ?? value.length;
    hint("");
    if (!ALLOWED.test(value)) {
      const bad = [...value].find((c) => !ALLOWED.test(c));
      return refuse(`"${bad}" cannot be part of an expression: use numbers, PRICE, SIZE, + - * / ^ and parentheses.`);
    }
    if (ev.inputType === "insertText" && ev.data && ev.data.length === 1) {
      const typed = ev.data;
      const before = value.slice(0, caret - 1);
      const after = value.slice(caret);
      if (/[A-Za-z]/.test(typed)) {
        const word = WORDS[typed.toUpperCase()];
        if (!word || !operandPosition(before)) {
          return refuse(word ? `${word} needs an operator before it, such as * or +.` : "Only PRICE (P) and SIZE (S) can be typed as words.");
        }
        return put(before + word + after, before.length + word.length);
      }
      // A sign where an operand may start (unary minus, or plus, which the server accepts alike) wraps it.
      if ((typed === "-" || typed === "+") && operandPosition(before)) {
        return put(`${before}${typed}()${after}`, before.length + 2);
      }
      if (/[*\/^]/.test(typed) && operandPosition(before)) {
        return refuse(`"${typed}" needs a number, PRICE or SIZE before it.`);
      }
      return put(value, caret);
    }
    // A paste, a drop, a delete or an autocorrection: the whole text is checked and its words completed or removed.
    const cleaned = wordsOnly(value, caret);
    if (ev.inputType && ev.inputType.startsWith("insert") && cleaned.value !== value.toUpperCase()) {
      return refuse("Only PRICE and SIZE can be written as words.");
    }
    put(cleaned.value, cleaned.caret);
  });

  exprAdd.addEventListener("click", addExpression);
  exprInput.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); addExpression(); } });

  // --- sort by (no expressions) or aggregate by (with expressions) ---------------------
  const sortBlock = document.getElementById("sort-block");
  const aggBlock = document.getElementById("aggregate-block");
  const aggFnBlock = document.getElementById("aggregate-fn-block");
  const aggSelect = aggBlock.querySelector("select");
  const aggFnSelect = aggFnBlock.querySelector("select");
  const sortSelect = sortBlock.querySelector("select");
  function syncMode() {
    const withOps = operations().length > 0;
    const raw = withOps && aggSelect.value === "";
    aggBlock.hidden = !withOps; aggSelect.disabled = !withOps;
    aggFnBlock.hidden = !withOps || raw; aggFnSelect.disabled = !withOps || raw;
    sortBlock.hidden = withOps && !raw; sortSelect.disabled = withOps && !raw;
  }
  aggSelect.addEventListener("change", syncMode);

  // --- numeric ranges: min <= max, numbers only (the server checks again) -------------
  const rangeError = document.getElementById("range-error");
  function checkRanges() {
    const problems = [];
    form.querySelectorAll("input[data-pair]").forEach((low) => {
      const high = form.querySelector(`input[name=${low.dataset.pair}]`);
      [low, high].forEach((i) => i.removeAttribute("aria-invalid"));
      if (low.validity.badInput || high.validity.badInput) { problems.push("Prices and sizes must be numbers."); (low.validity.badInput ? low : high).setAttribute("aria-invalid", "true"); return; }
      if (low.value !== "" && high.value !== "" && Number(low.value) > Number(high.value)) {
        high.setAttribute("aria-invalid", "true");
        problems.push(`${high.closest("label").firstChild.textContent.trim()} must be at least ${low.closest("label").firstChild.textContent.trim().toLowerCase()}.`);
      }
    });
    rangeError.hidden = problems.length === 0;
    rangeError.textContent = problems.join(" ");
    return problems.length === 0;
  }
  form.querySelectorAll("input[type=number]").forEach((i) => i.addEventListener("input", checkRanges));

  // --- export: confirm (reset afterwards? yes / no / cancel), then start ---------------
  const dialog = document.getElementById("export-dialog");
  const exportButton = document.getElementById("export-button");
  const status = document.getElementById("export-status");
  exportButton.addEventListener("click", () => { if (checkRanges()) dialog.showModal(); });
  dialog.addEventListener("click", (ev) => {
    const choice = ev.target.dataset && ev.target.dataset.reset;
    if (!choice) return;
    dialog.close();
    if (choice === "cancel") return;
    startExport(choice === "yes");
  });

  function startExport(resetAfter) {
    exportButton.disabled = true;
    const data = new FormData(form);
    data.delete("expression");
    htmx.ajax("POST", form.dataset.exportUrl || "/trades/exports/start/", {
      target: status, swap: "innerHTML", values: Object.fromEntries([]), source: form,
    }).then(() => { if (resetAfter) resetAll({ keepStatus: true }); });
  }
  document.body.addEventListener("trades:export-finished", () => { exportButton.disabled = false; });
  document.body.addEventListener("htmx:afterSwap", (ev) => {
    if (ev.detail.target === status && !status.querySelector(".export-progress")) exportButton.disabled = false;
    // The export's status (or why it was refused) comes into view: it sits below the form.
    if (ev.detail.target === status && status.firstElementChild) status.scrollIntoView({ block: "nearest", behavior: "smooth" });
    const auto = ev.detail.target.querySelector && ev.detail.target.querySelector("a[data-autodownload]");
    if (auto) auto.click();
  });

  // --- a "Please fix" box describes the values that were sent --------------------------
  // Once a filter changes it may be out of date: a refused preview is asked again (the box then lists what is
  // still wrong, or gives way to the preview); a refused export's box is dropped (the user starts it again).
  const preview = document.getElementById("preview");
  let recheck = null;
  function filtersChanged() {
    const refusedExport = status.querySelector("[data-testid=form-errors]");
    if (refusedExport) refusedExport.remove();
    if (!preview.querySelector("[data-testid=form-errors]")) return;
    clearTimeout(recheck);
    recheck = setTimeout(() => {
      if (checkRanges()) htmx.trigger(form, "submit");
      else preview.innerHTML = "";
    }, 300);
  }
  form.addEventListener("input", (ev) => { if (ev.target !== exprInput && ev.target !== exInput) filtersChanged(); });
  form.addEventListener("change", (ev) => { if (ev.target !== exprInput && ev.target !== exInput) filtersChanged(); });

  // --- reset ----------------------------------------------------------------------------
  function resetAll(opts) {
    form.reset();
    exPills.innerHTML = "";
    exprPills.innerHTML = "";
    exInput.value = "";
    put("", 0);
    setFeedback("");
    rangeError.hidden = true;
    form.querySelectorAll("[aria-invalid]").forEach((i) => i.removeAttribute("aria-invalid"));
    clearTimeout(recheck);
    preview.innerHTML = "";
    if (!(opts && opts.keepStatus)) status.innerHTML = "";
    updateExchangeCount(); updateTickerCount(); syncMode();
  }
  document.getElementById("reset-button").addEventListener("click", () => resetAll());
  form.addEventListener("htmx:confirm", (ev) => { if (ev.target === form && !checkRanges()) ev.preventDefault(); });
  syncMode();
})();
