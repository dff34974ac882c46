// Repeat this campaign: show only the boxes the chosen frequency uses (days of the week
// for "every week", the day of the month for "every month"). Without JavaScript all show,
// each labelled with the frequency it is for.
"use strict";

(() => {
  const form = document.querySelector("form[data-recurrence-form]");
  if (!form) return;
  const parts = form.querySelectorAll("[data-for-frequency]");
  const update = () => {
    const chosen = form.querySelector("input[name=frequency]:checked");
    parts.forEach((part) => {
      part.hidden = !chosen || part.dataset.forFrequency !== chosen.value;
    });
  };
  form.querySelectorAll("input[name=frequency]").forEach((radio) => radio.addEventListener("change", update));
  update();
})();
