// Render every Vega-Lite spec on the page (and in HTMX-swapped fragments) with vega-embed.
//
// Time charts (an x encoding on the field "t") can be explored as in backtesting.py's charts: the wheel zooms
// and a drag pans along time (an interval selection bound to the x scale), and one crosshair follows the
// pointer across every time chart of the page: each chart has a `crosshair` parameter (not "cursor", a signal
// of Vega's own), set here from whichever chart the pointer is over. Added on the page, so the specs the
// server builds stay plain.
(function () {
  var views = [];

  function isTimeUnit(unit) {
    var x = unit && unit.encoding && unit.encoding.x;
    if (!x) return false;
    if (typeof x === "string") return /^t:T$/.test(x);
    return x.field === "t" && x.type === "temporal";
  }

  function explorable(spec) {
    var units = spec.layer ? spec.layer : [spec];
    return units.some(isTimeUnit) ? units : null;
  }

  function crosshairLayer() {
    return {
      data: { values: [{}] },
      transform: [{ calculate: "crosshair", as: "t" }, { filter: "isValid(datum.t)" }],
      mark: { type: "rule", color: "#9e9e9e", strokeDash: [4, 3], aria: false },
      encoding: { x: { field: "t", type: "temporal" } },
    };
  }

  var TOP = ["$schema", "title", "width", "height", "config", "datasets", "data", "autosize", "background", "padding"];

  function addExploring(spec) {
    var units = explorable(spec);
    if (!units) return spec;
    var layered = { params: [{ name: "crosshair", value: null }] };
    var main;
    if (spec.layer) {
      TOP.concat(["params"]).forEach(function (k) { if (spec[k] !== undefined && k !== "params") layered[k] = spec[k]; });
      if (spec.params) layered.params = spec.params.concat(layered.params);
      main = spec.layer.slice();
    } else {
      var unit = {};
      Object.keys(spec).forEach(function (k) { if (TOP.indexOf(k) >= 0) layered[k] = spec[k]; else unit[k] = spec[k]; });
      main = [unit];
    }
    var first = main.filter(isTimeUnit)[0];
    var zoomed = Object.assign({}, first, {
      params: (first.params || []).concat([{ name: "zoom", select: { type: "interval", encodings: ["x"] }, bind: "scales" }]),
    });
    // Invisible rules on the time layer's data: they only find the time nearest the pointer. Neither added
    // layer is shown to assistive technology (aria: false); the chart's own marks and title still are.
    var pick = {
      mark: { type: "rule", opacity: 0, aria: false },
      encoding: { x: { field: "t", type: "temporal" } },
      params: [{ name: "hover", select: { type: "point", fields: ["t"], nearest: true, on: "pointermove", clear: "pointerout" } }],
    };
    if (first.data) pick.data = first.data;
    main[main.indexOf(first)] = zoomed;
    layered.layer = main.concat([pick, crosshairLayer()]);
    return layered;
  }

  function hoveredTime(value) {
    if (!value) return null;
    if (Array.isArray(value.t)) return value.t[0];
    if (value.t !== undefined) return value.t;
    return null;
  }

  // The time charts of the page, by element: a chart drawn again (colour mode) keeps its place.
  function follow(el, view) {
    if (views.indexOf(el) < 0) views.push(el);
    view.addSignalListener("hover", function (name, value) {
      var t = hoveredTime(value);
      views.forEach(function (other) {
        if (other.__view && other.isConnected) other.__view.signal("crosshair", t === null ? null : +new Date(t)).runAsync();
      });
    });
  }

  // A chart whose marks stand for results (the sweep heatmap) opens the clicked one: the element names a
  // hidden POST form (with its CSRF token) whose address template takes the result number from the datum.
  // A page handler, not a Vega `href`: specs hold no links.
  function opensOnClick(el, view) {
    var form = document.getElementById(el.dataset.openForm || "");
    var field = el.dataset.openField;
    if (!form || !field) return;
    view.addEventListener("click", function (event, item) {
      var value = item && item.datum ? item.datum[field] : undefined;
      if (!Number.isInteger(value) || value < 1) return;
      form.action = form.dataset.actionTemplate.replace("{seq}", String(value));
      el.dataset.opening = String(value);
      form.submit();
    });
  }

  function render(root) {
    root.querySelectorAll(".vega-chart[data-spec]:not([data-rendered])").forEach(function (el) {
      var source = document.getElementById(el.dataset.spec);
      if (!source || typeof vegaEmbed === "undefined") return;
      el.dataset.rendered = "1";
      var spec = addExploring(JSON.parse(source.textContent));
      var exploring = Array.isArray(spec.layer) && spec.params && spec.params.some(function (p) { return p.name === "crosshair"; });
      PlatformCharts.embed(el, spec, { actions: false, renderer: "svg" }, function (view) {
        if (exploring) { follow(el, view); el.dataset.explore = "1"; }
        opensOnClick(el, view);
        el.__view = view;
        el.dataset.rendered = "done";
      })
        .catch(function (err) { el.textContent = "Chart failed: " + err; });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { render(document); });
  document.addEventListener("htmx:afterSettle", function (e) { render(e.target || document); });
  window.backtestRenderCharts = render;
})();
