// Render every Vega-Lite spec on the page (and in HTMX-swapped fragments) with vega-embed.
(function () {
  function render(root) {
    root.querySelectorAll(".vega-chart[data-spec]:not([data-rendered])").forEach(function (el) {
      var source = document.getElementById(el.dataset.spec);
      if (!source || typeof vegaEmbed === "undefined") return;
      el.dataset.rendered = "1";
      vegaEmbed(el, JSON.parse(source.textContent), PlatformCharts.embedOptions({ actions: false, renderer: "svg" }))
        .then(function () { el.dataset.rendered = "done"; })
        .catch(function (err) { el.textContent = "Chart failed: " + err; });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { render(document); });
  document.addEventListener("htmx:afterSettle", function (e) { render(e.target || document); });
  window.backtestRenderCharts = render;
})();
