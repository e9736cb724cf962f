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

// The header's "Menu" button folds the app links on a narrow screen (platform.css); without this script the
// button stays hidden and the links stay shown.
document.addEventListener("DOMContentLoaded", () => {
  const header = document.querySelector(".site-header");
  const toggle = header && header.querySelector(".nav-toggle");
  if (!toggle) return;
  header.classList.add("nav-ready");
  toggle.hidden = false;
  toggle.addEventListener("click", () => {
    const open = header.classList.toggle("nav-open");
    toggle.setAttribute("aria-expanded", String(open));
  });
});

// A table box that scrolls (.table-scroll) can be reached with Tab, so it can be scrolled from the keyboard; one
// that fits has no Tab stop. It is named after the heading above it. Boxes added later (htmx swaps, live tables)
// are looked at too.
function markScrollBoxes() {
  document.querySelectorAll(".table-scroll").forEach((box) => {
    const scrolls = box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1;
    if (scrolls && !box.hasAttribute("tabindex")) {
      box.setAttribute("tabindex", "0");
      box.setAttribute("role", "region");
      let heading = box.previousElementSibling;
      while (heading && !/^H[1-6]$/.test(heading.tagName)) heading = heading.previousElementSibling;
      box.setAttribute("aria-label", heading ? heading.textContent.trim() : "Table");
    } else if (!scrolls && box.hasAttribute("tabindex")) {
      ["tabindex", "role", "aria-label"].forEach((name) => box.removeAttribute(name));
    }
  });
}
let scrollBoxTimer = null;
function markScrollBoxesSoon() {
  window.clearTimeout(scrollBoxTimer);
  scrollBoxTimer = window.setTimeout(markScrollBoxes, 100);
}
document.addEventListener("DOMContentLoaded", () => {
  markScrollBoxes();
  new MutationObserver(markScrollBoxesSoon).observe(document.body, { childList: true, subtree: true });
});
window.addEventListener("resize", markScrollBoxesSoon);
