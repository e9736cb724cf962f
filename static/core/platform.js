// Behaviour shared by every page. The Content-Security-Policy allows no inline script or handler,
// so pages ask for it with data attributes:
//   <form data-confirm="Delete …?">       asks before submitting
//   <button data-show-modal="dialog-id">   opens that <dialog>;  <button data-close-dialog> closes its own
//   <input data-select-on-focus>           selects its text on focus

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm !== undefined && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

// Disable submit buttons while a form's request is in flight (HTMX or plain).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (event.defaultPrevented) return;
  if (form.hasAttribute("hx-post") || form.hasAttribute("hx-get")) return;
  form.querySelectorAll("button[type=submit]").forEach((b) => setTimeout(() => (b.disabled = true), 0));
});

document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-show-modal]");
  if (opener) {
    const dialog = document.getElementById(opener.dataset.showModal);
    if (dialog) dialog.showModal();
    return;
  }
  const closer = event.target.closest("[data-close-dialog]");
  if (closer) {
    const dialog = closer.closest("dialog");
    if (dialog) dialog.close();
  }
});

document.addEventListener("focusin", (event) => {
  if (event.target.matches("[data-select-on-focus]")) event.target.select();
});
