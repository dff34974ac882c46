// Sentences our JavaScript shows, in the page's language. The server puts the catalogue's
// translations of them in <meta name="wabulk-i18n" content="{…}"> (empty in English; a meta
// tag, as pages carry no inline scripts). `wabulkText("English text", {name: value})` looks
// one up, falls back to the English, and fills %(name)s placeholders. pybabel extracts the
// calls (keyword wabulkText; see docs/translations.md).
"use strict";

(() => {
  let catalogue = {};
  const element = document.querySelector('meta[name="wabulk-i18n"]');
  try {
    catalogue = element ? JSON.parse(element.content || "{}") : {};
  } catch (_error) {
    catalogue = {};
  }
  // The locale the page writes numbers in (the server's number_locale(); charts take it too).
  const numberLocale = (element && element.dataset.numberLocale) || document.documentElement.lang || "en";
  window.wabulkNumberLocale = numberLocale;
  // One Intl.NumberFormat per number of decimals, in that locale (English where the browser
  // does not know it).
  const formats = {};
  const numberFormat = (digits, least) => {
    const key = `${least}-${digits}`;
    if (!formats[key]) {
      const options = { minimumFractionDigits: least, maximumFractionDigits: digits };
      try {
        formats[key] = new Intl.NumberFormat(numberLocale, options);
      } catch (_error) {
        formats[key] = new Intl.NumberFormat("en", options);
      }
    }
    return formats[key];
  };
  const blank = (value) => value === null || value === undefined || value === "";
  // A count or amount as the server's |number filter writes it (1,00,000 in Hindi and in
  // English for a shop in India; 100.000 in Portuguese, Spanish and Indonesian): Intl's own
  // default of up to three decimals.
  window.wabulkNumber = (value) => (blank(value) ? "—" : numberFormat(3, 0).format(Number(value)));
  // A decimal with `digits` decimals, as the server's |decimal(digits) filter writes it (18.5
  // in English, 18,5 in Portuguese), and a percentage already out of 100 with its sign, as
  // |percent does (18.5%, 18,5%). `least` below `digits` drops trailing zeros: 100 for 100.0,
  // as `${value}` wrote it. The server's values come rounded already.
  window.wabulkDecimal = (value, digits = 1, least = digits) =>
    (blank(value) ? "—" : numberFormat(digits, least).format(Number(value)));
  window.wabulkPercent = (value, digits = 1, least = digits) =>
    (blank(value) ? "—" : `${window.wabulkDecimal(value, digits, least)}%`);
  window.wabulkText = (text, values) => {
    const translated = Object.prototype.hasOwnProperty.call(catalogue, text) ? catalogue[text] : text;
    if (!values) return translated;
    return translated.replace(/%\((\w+)\)s/g, (whole, name) =>
      Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole);
  };
})();
