// Contacts page: select every row at once.
"use strict";

document.querySelectorAll("[data-select-all]").forEach((master) => {
  master.addEventListener("change", () => {
    const form = master.closest("form");
    form.querySelectorAll("input[name=contact_ids]").forEach((box) => { box.checked = master.checked; });
  });
});
