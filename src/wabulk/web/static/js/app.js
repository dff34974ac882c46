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

// A file over the upload limit is refused before it is sent (the server refuses it too).
document.querySelectorAll("input[type=file][data-max-bytes]").forEach((input) => {
  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    const tooLarge = Boolean(file && file.size > Number(input.dataset.maxBytes));
    input.classList.toggle("is-invalid", tooLarge);
    // The sentence is in the page only while it is true (a refused page says nothing of size).
    const feedback = input.parentElement && input.parentElement.querySelector("[data-too-large]");
    if (feedback) {
      feedback.textContent = tooLarge ? (input.dataset.tooLargeText || "") : "";
      feedback.hidden = !tooLarge;
    }
    input.setCustomValidity(tooLarge ? wabulkText("This file is over the upload limit.") : "");
  });
});

// Forms marked novalidate still must not send a file the browser already knows is too large.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  const tooLarge = form.querySelector("input[type=file][data-max-bytes].is-invalid");
  if (tooLarge) {
    event.preventDefault();
    event.stopImmediatePropagation();
    tooLarge.focus();
  }
}, true);
