// Sentences our JavaScript shows, in the page's language. The server puts the catalogue's
// translations of them in <script type="application/json" id="wabulk-i18n"> (empty in
// English); `wabulkText("English text", {name: value})` looks one up, falling back to the
// English, and fills %(name)s placeholders. pybabel extracts the calls (keyword wabulkText).
"use strict";

(() => {
  let catalogue = {};
  try {
    const element = document.getElementById("wabulk-i18n");
    catalogue = element ? JSON.parse(element.textContent || "{}") : {};
  } catch (_error) {
    catalogue = {};
  }
  window.wabulkText = (text, values) => {
    const translated = Object.prototype.hasOwnProperty.call(catalogue, text) ? catalogue[text] : text;
    if (!values) return translated;
    return translated.replace(/%\((\w+)\)s/g, (whole, name) =>
      Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole);
  };
})();
