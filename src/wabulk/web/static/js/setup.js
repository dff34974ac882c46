// First-run setup: preselect the country from the browser's timezone, else its language
// ("en-IN"). Nothing is chosen when neither says; the owner picks it from the list.
"use strict";

(() => {
  const select = document.querySelector("select[data-country-guess]");
  if (!select || select.value) return;
  const has = (code) => code && Array.from(select.options).some((o) => o.value === code);
  let guess = "";
  try {
    const zones = JSON.parse(document.getElementById("zone-countries").textContent || "{}");
    guess = zones[Intl.DateTimeFormat().resolvedOptions().timeZone] || "";
  } catch (_error) {
    guess = "";
  }
  if (!has(guess)) {
    const languages = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || ""];
    guess = "";
    for (const language of languages) {
      const region = (language.split("-")[1] || "").toUpperCase();
      if (has(region)) { guess = region; break; }
    }
  }
  if (has(guess)) select.value = guess;
})();
