// Behaviour shared by every page. Loaded as a file: the CSP forbids inline scripts.
"use strict";

// Forms marked data-confirm ask before a destructive action is sent.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  const question = form.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// Stop double submissions: a second click while the first request is under way does nothing.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || event.defaultPrevented) return;
  if (form.dataset.submitting === "1") {
    event.preventDefault();
    return;
  }
  form.dataset.submitting = "1";
  window.setTimeout(() => { delete form.dataset.submitting; }, 4000);
});
