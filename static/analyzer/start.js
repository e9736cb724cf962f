// Starts the analyzer page scripts with the data the page carries (json_script), as no inline script may.
(function () {
  "use strict";
  function data(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }
  const form = document.getElementById("upload-form");
  if (form) window.AnalyzerUpload.init(form);
  const session = data("analyzer-session");
  if (session) {
    window.AnalyzerChat.init(session);
    const processing = data("analyzer-processing");
    if (processing) window.AnalyzerProcessing.init(processing, window.AnalyzerChat);
  }
})();
