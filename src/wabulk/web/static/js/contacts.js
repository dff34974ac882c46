// Contacts page: select every row at once; refuse a file over the upload limit before sending it.
"use strict";

document.querySelectorAll("[data-select-all]").forEach((master) => {
  master.addEventListener("change", () => {
    const form = master.closest("form");
    form.querySelectorAll("input[name=contact_ids]").forEach((box) => { box.checked = master.checked; });
  });
});

document.querySelectorAll("input[type=file][data-max-bytes]").forEach((input) => {
  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    const tooLarge = Boolean(file && file.size > Number(input.dataset.maxBytes));
    input.classList.toggle("is-invalid", tooLarge);
    input.setCustomValidity(tooLarge ? "This file is over the upload limit." : "");
  });
});
