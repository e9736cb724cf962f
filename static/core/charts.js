// vega-embed options every chart of the platform uses, so charts run under the Content-Security-Policy:
// - ast: true — Vega parses expressions to an AST and runs them with its expression interpreter
//   (vega-interpreter; vega-embed uses vega.expressionInterpreter when present, else the copy it bundles)
//   instead of compiling them with Function(), so no 'unsafe-eval';
// - defaultStyle: false, tooltip.disableDefaultStyle — no injected <style> (core/charts.css has the rules).
window.PlatformCharts = {
  embedOptions(extra) {
    const options = { ast: true, defaultStyle: false, tooltip: { disableDefaultStyle: true } };
    if (window.vega && window.vega.expressionInterpreter) options.expr = window.vega.expressionInterpreter;
    return Object.assign(options, extra || {});
  },
};
