// API tokens page: copy the new token, shown once. Loaded as a file: the CSP forbids inline scripts.
"use strict";

document.querySelectorAll("[data-copy]").forEach((button) => {
  button.addEventListener("click", async () => {
    const field = document.querySelector(button.dataset.copy);
    const label = button.querySelector("[data-copy-label]");
    if (!field) return;
    field.select();
    try {
      // The Clipboard API needs a secure context (HTTPS or localhost); elsewhere the token
      // stays selected so Ctrl+C copies it.
      await navigator.clipboard.writeText(field.value);
      if (label) label.textContent = wabulkText("Copied");
    } catch (error) {
      if (label) label.textContent = wabulkText("Press Ctrl+C");
    }
  });
});
