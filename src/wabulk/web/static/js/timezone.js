// The browser's timezone, offered to the server. Loaded as a file: the CSP forbids inline scripts.
"use strict";

(() => {
  let zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (_error) {
    return; // a browser without Intl: the account keeps UTC until the user picks a zone
  }
  if (!zone) return;

  // Sign-in and first-run setup: a hidden input the server stores for a user with no zone yet.
  document.querySelectorAll("input[data-browser-timezone]").forEach((input) => {
    input.value = zone;
  });

  // Settings → Account: "Use my browser's timezone" fills the box it names.
  document.querySelectorAll("[data-use-browser-timezone]").forEach((button) => {
    const target = document.querySelector(button.dataset.useBrowserTimezone);
    if (!target) return;
    button.hidden = false;
    button.title = zone;
    button.addEventListener("click", () => {
      target.value = zone;
      target.dispatchEvent(new Event("input", { bubbles: true }));
      target.focus();
    });
  });
})();
