// Template editor, WhatsApp Cloud API part: the chosen template's blanks, each filled by a
// contact field or a fixed text, and a live preview of the filled template for real contacts
// with its buttons drawn as WhatsApp shows them.
"use strict";

(() => {
  const section = document.querySelector("[data-cloud-editor]");
  if (!section) return;
  const choice = section.querySelector("#cloud_template_id");
  const blocks = Array.from(section.querySelectorAll("[data-cloud-block]"));

  function showBlock() {
    const chosen = choice ? choice.value : "";
    blocks.forEach((block) => { block.hidden = block.dataset.cloudBlock !== chosen; });
  }

  // Each blank: a contact field, a fixed text, or (quick-reply buttons) "opt out".
  function showInputs(row) {
    const kind = row.querySelector("[data-cloud-kind]").value;
    const field = row.querySelector("[data-cloud-field]");
    const text = row.querySelector("[data-cloud-text]");
    const note = row.querySelector("[data-cloud-opt-out-note]");
    if (field) {
      field.hidden = kind !== "field";
      text.hidden = kind !== "text";
    } else {
      text.hidden = kind === "opt_out";
    }
    if (note) note.hidden = kind !== "opt_out";
  }
  section.querySelectorAll("[data-cloud-var]").forEach((row) => {
    row.querySelector("[data-cloud-kind]").addEventListener("change", () => showInputs(row));
  });
  if (choice) choice.addEventListener("change", showBlock);
  showBlock();

  const panel = document.querySelector("[data-cloud-preview]");
  if (!panel || !choice) return;
  const samplesBox = panel.querySelector("[data-cloud-preview-samples]");
  const errorBox = panel.querySelector("[data-cloud-preview-error]");
  const statusLine = panel.querySelector("[data-cloud-preview-status]");
  const phone = panel.querySelector("#preview_phone");
  const list = document.getElementById("preview_list");
  const mediaWords = {
    image: ["image", wabulkText("Photo")], video: ["camera-video", wabulkText("Video")], document: ["file-earmark", wabulkText("Document")],
  };
  const buttonIcons = {
    quick_reply: "reply", url: "box-arrow-up-right", phone_number: "telephone", copy_code: "copy",
  };
  let timer = null;
  let sequence = 0;

  function line(className, text) {
    const div = document.createElement("div");
    div.className = className;
    div.textContent = text;
    return div;
  }

  function hint(text) {
    const p = document.createElement("p");
    p.className = "wa-chat-hint mb-0";
    p.textContent = text;
    samplesBox.replaceChildren(p);
  }

  function attachmentName() {
    const upload = document.getElementById("media");
    if (upload && upload.files && upload.files.length) return upload.files[0].name;
    return panel.dataset.attachmentName || "";
  }

  function bubble(sample) {
    const div = document.createElement("div");
    div.className = "wa-bubble";
    div.dataset.testid = "cloud-bubble";
    if (sample.phone) div.append(line("wa-bubble-to", wabulkText("To %(name)s · %(phone)s", {name: sample.name || sample.phone, phone: sample.phone})));
    if (sample.media) {
      const [icon, word] = mediaWords[sample.media] || ["file-earmark", wabulkText("File")];
      const name = attachmentName();
      const file = line("wa-bubble-attachment", "");
      const i = document.createElement("i");
      i.className = `bi bi-${icon}`;
      i.setAttribute("aria-hidden", "true");
      file.append(i, document.createTextNode(" " + word + " · " + (name || wabulkText("attach it below"))));
      div.append(file);
    }
    if (sample.heading) div.append(line("fw-bold", sample.heading));
    if (sample.message) div.append(line("wa-bubble-text", sample.message));
    if (sample.footer) div.append(line("small text-body-secondary mt-1", sample.footer));
    (sample.buttons || []).forEach((button) => {
      let text = ` ${button.text}`;
      if (button.kind === "copy_code" && button.code) text += ` (${button.code})`;
      const row = line("border-top mt-1 pt-1 text-center small text-primary", "");
      const icon = document.createElement("i");
      icon.className = `bi bi-${buttonIcons[button.kind] || "dot"}`;
      icon.setAttribute("aria-hidden", "true");
      row.append(icon, document.createTextNode(text));
      if (button.url) row.title = button.url;
      if (button.phone) row.title = button.phone;
      if (button.opt_out) row.append(line("text-body-secondary", wabulkText("opts the contact out")));
      div.append(row);
    });
    return div;
  }

  function render(result) {
    errorBox.hidden = !result.error;
    errorBox.textContent = result.error || "";
    statusLine.textContent = "";
    if (result.empty) {
      hint(wabulkText("Choose a WhatsApp template to see it as your customers will."));
      return;
    }
    const shown = result.samples.length ? result.samples : (result.skeleton ? [result.skeleton] : []);
    if (shown.length) {
      samplesBox.replaceChildren(...shown.map(bubble));
    } else {
      hint(wabulkText("No contacts to preview with: the list is empty, or no contact has that number."));
    }
    if (!result.samples.length && result.skeleton) statusLine.textContent = wabulkText("Shown with its blanks until each is filled.");
  }

  async function refresh() {
    const mine = ++sequence;
    const data = new FormData();
    data.append("cloud_template_id", choice.value);
    const block = blocks.find((b) => b.dataset.cloudBlock === choice.value);
    if (block) {
      block.querySelectorAll("select[name], input[name]").forEach((el) => data.append(el.name, el.value));
    }
    if (list && list.value) data.append("list_ids", list.value);
    if (phone && phone.value.trim()) data.append("preview_phone", phone.value.trim());
    statusLine.textContent = wabulkText("Updating…");
    try {
      const response = await fetch(panel.dataset.url, {
        method: "POST",
        body: data,
        headers: { "X-CSRFToken": panel.dataset.csrf, Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(String(response.status));
      const result = await response.json();
      if (mine === sequence) render(result);  // an older answer arriving late is dropped
    } catch (err) {
      if (mine === sequence) statusLine.textContent = wabulkText("The preview is unavailable right now; it retries when you type.");
    }
  }

  function later(delay = 350) {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, delay);
  }

  section.addEventListener("input", () => later());
  section.addEventListener("change", () => later(0));
  if (list) list.addEventListener("change", () => later(0));
  if (phone) phone.addEventListener("input", () => later());
  const upload = document.getElementById("media");
  if (upload) upload.addEventListener("change", () => later(0));
  later(0);
})();
