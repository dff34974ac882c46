// Sentences our JavaScript shows, in the page's language. The server puts the catalogue's
// translations of them in <meta name="wabulk-i18n" content="{…}"> (empty in English; a meta
// tag, as pages carry no inline scripts). `wabulkText("English text", {name: value})` looks
// one up, falls back to the English, and fills %(name)s placeholders. pybabel extracts the
// calls (keyword wabulkText; see docs/translations.md).
"use strict";

(() => {
  let catalogue = {};
  const element = document.querySelector('meta[name="wabulk-i18n"]');
  const numberLocale = (element && element.dataset.numberLocale) || document.documentElement.lang || "en";
  let numbers;
  try {
    numbers = new Intl.NumberFormat(numberLocale);
  } catch (_error) {
    numbers = new Intl.NumberFormat("en");
  }
  try {
    catalogue = element ? JSON.parse(element.content || "{}") : {};
  } catch (_error) {
    catalogue = {};
  }
  // A count or amount as the server's |number filter writes it (1,00,000 in Hindi and in
  // English for a shop in India; 100.000 in Portuguese, Spanish and Indonesian).
  window.wabulkNumber = (value) => (value === null || value === undefined || value === "" ? "—" : numbers.format(Number(value)));
  // A decimal with a fixed number of decimals, as the server's |decimal(digits) filter writes
  // it (18.5 in English, 18,5 in Portuguese), and a percentage already out of 100 with its
  // sign, as |percent does (18.5%, 18,5%). The server's values come rounded already.
  const fixed = {};
  const fixedFormat = (digits) => {
    if (!fixed[digits]) {
      const options = { minimumFractionDigits: digits, maximumFractionDigits: digits };
      try {
        fixed[digits] = new Intl.NumberFormat(numberLocale, options);
      } catch (_error) {
        fixed[digits] = new Intl.NumberFormat("en", options);
      }
    }
    return fixed[digits];
  };
  window.wabulkDecimal = (value, digits = 1) =>
    (value === null || value === undefined || value === "" ? "—" : fixedFormat(digits).format(Number(value)));
  window.wabulkPercent = (value, digits = 1) =>
    (value === null || value === undefined || value === "" ? "—" : `${window.wabulkDecimal(value, digits)}%`);
  window.wabulkText = (text, values) => {
    const translated = Object.prototype.hasOwnProperty.call(catalogue, text) ? catalogue[text] : text;
    if (!values) return translated;
    return translated.replace(/%\((\w+)\)s/g, (whole, name) =>
      Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole);
  };
})();
