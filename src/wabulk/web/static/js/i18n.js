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
  // A decimal with `digits` decimals, as the server's |decimal(digits) filter writes it (18.5
  // in English, 18,5 in Portuguese), and a percentage already out of 100 with its sign, as
  // |percent does (18.5%, 18,5%). `least` below `digits` drops trailing zeros: 100 for 100.0,
  // as `${value}` wrote it. The server's values come rounded already.
  const fixed = {};
  const fixedFormat = (digits, least) => {
    const key = `${least}-${digits}`;
    if (!fixed[key]) {
      const options = { minimumFractionDigits: least, maximumFractionDigits: digits };
      try {
        fixed[key] = new Intl.NumberFormat(numberLocale, options);
      } catch (_error) {
        fixed[key] = new Intl.NumberFormat("en", options);
      }
    }
    return fixed[key];
  };
  const blank = (value) => value === null || value === undefined || value === "";
  window.wabulkDecimal = (value, digits = 1, least = digits) =>
    (blank(value) ? "—" : fixedFormat(digits, least).format(Number(value)));
  window.wabulkPercent = (value, digits = 1, least = digits) =>
    (blank(value) ? "—" : `${window.wabulkDecimal(value, digits, least)}%`);
  window.wabulkText = (text, values) => {
    const translated = Object.prototype.hasOwnProperty.call(catalogue, text) ? catalogue[text] : text;
    if (!values) return translated;
    return translated.replace(/%\((\w+)\)s/g, (whole, name) =>
      Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole);
  };
})();
