// vega-embed options every chart of the platform uses, so charts run under the Content-Security-Policy:
// - ast: true — Vega parses expressions to an AST and runs them with its expression interpreter
//   (vega-interpreter; vega-embed uses vega.expressionInterpreter when present, else the copy it bundles)
//   instead of compiling them with Function(), so no 'unsafe-eval';
// - defaultStyle: false, tooltip.disableDefaultStyle — no injected <style> (core/charts.css has the rules).
//
// Colours follow the system's light or dark mode: in dark mode a chart gets the page's own dark colours
// (read from the stylesheet's variables) instead of Vega's white card. Charts drawn with
// `PlatformCharts.embed` are drawn again when the mode changes.
(function () {
  var darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  var drawn = [];

  function isDark() { return !!(darkQuery && darkQuery.matches); }

  function cssColor(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function darkConfig() {
    var text = cssColor("--pico-color", "#c2c7d0");
    var muted = cssColor("--pico-muted-color", "#8891a4");
    var lines = cssColor("--pico-muted-border-color", "#2a3140");
    return {
      background: cssColor("--pico-background-color", "#13171f"),
      title: { color: text, subtitleColor: muted },
      axis: { domainColor: muted, tickColor: muted, gridColor: lines, labelColor: text, titleColor: text },
      legend: { labelColor: text, titleColor: text },
      header: { labelColor: text, titleColor: text },
      view: { stroke: lines },
      style: { "guide-label": { fill: text }, "guide-title": { fill: text }, "group-title": { fill: text } },
    };
  }

  function embedOptions(extra) {
    var options = { ast: true, defaultStyle: false, tooltip: { disableDefaultStyle: true } };
    if (window.vega && window.vega.expressionInterpreter) options.expr = window.vega.expressionInterpreter;
    if (isDark()) options.config = darkConfig();
    return Object.assign(options, extra || {});
  }

  // Draw `spec` into `el` and remember it, so a change of colour mode draws it again; `onView(view)` runs
  // after every drawing (the first and each redraw). Answers vega-embed's promise.
  function embed(el, spec, extra, onView) {
    var entry = drawn.find(function (d) { return d.el === el; });
    if (!entry) { entry = { el: el }; drawn.push(entry); }
    entry.spec = spec; entry.extra = extra; entry.onView = onView;
    return draw(entry);
  }

  function draw(entry) {
    if (entry.result) entry.result.finalize();
    entry.el.dataset.scheme = isDark() ? "dark" : "light";
    return vegaEmbed(entry.el, entry.spec, embedOptions(entry.extra)).then(function (result) {
      entry.result = result;
      if (entry.onView) entry.onView(result.view);
      return result;
    });
  }

  function redrawAll() {
    drawn = drawn.filter(function (d) { return d.el.isConnected; });
    drawn.forEach(function (entry) {
      draw(entry).catch(function (err) { entry.el.textContent = "Chart failed: " + err; });
    });
  }

  if (darkQuery) {
    if (darkQuery.addEventListener) darkQuery.addEventListener("change", redrawAll);
    else if (darkQuery.addListener) darkQuery.addListener(redrawAll);
  }

  window.PlatformCharts = { embedOptions: embedOptions, embed: embed, isDark: isDark };
})();
