// Strategy forms: show the chosen strategy's parameters and fill defaults into the JSON box.
(function () {
  var form = document.querySelector("form[data-strategy-form]");
  var source = document.getElementById("strategy-schemas");
  if (!form || !source) return;
  var schemas = JSON.parse(JSON.parse(source.textContent));
  var select = form.querySelector("select[name=strategy]");
  var params = form.querySelector("textarea[name=params]");
  var help = form.querySelector("[data-strategy-help]");
  var link = form.querySelector("[data-strategy-link]");
  function describe() {
    var s = schemas[select.value];
    if (!s) return;
    if (link) link.href = link.dataset.base + encodeURIComponent(select.value) + "/";
    var parts = s.params.map(function (p) {
      return p.name + " (" + p.type + ", default " + p.default + (p.type !== "bool" ? ", " + p.min + "–" + p.max : "") + ")";
    });
    help.textContent = s.description + (parts.length ? " Parameters: " + parts.join("; ") + "." : " No parameters.");
  }
  select.addEventListener("change", function () {
    var s = schemas[select.value];
    if (params && s) {
      var defaults = {};
      s.params.forEach(function (p) { defaults[p.name] = p.default; });
      params.value = JSON.stringify(defaults);
    }
    describe();
  });
  describe();
})();
