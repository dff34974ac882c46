// Sentences our JavaScript shows, in the page's language. The server puts the catalogue's
// translations of them in <meta name="wabulk-i18n" content="{…}"> (empty in English; a meta
// tag, as pages carry no inline scripts). `wabulkText("English text", {name: value})` looks
// one up, falls back to the English, and fills %(name)s placeholders. pybabel extracts the
// calls (keyword wabulkText; see docs/translations.md).
"use strict";

(() => {
  let catalogue = {};
  try {
    const element = document.querySelector('meta[name="wabulk-i18n"]');
    catalogue = element ? JSON.parse(element.content || "{}") : {};
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
