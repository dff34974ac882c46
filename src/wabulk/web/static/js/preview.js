// Message editor (template editor and campaign wizard): the live preview rendered for real
// contacts, placeholder chips that insert at the cursor, and the character count.
"use strict";

(() => {
  // Placeholder chips: insert the placeholder where the cursor is.
  document.querySelectorAll("[data-insert]").forEach((chip) => {
    chip.addEventListener("click", () => {
      const target = document.querySelector(chip.dataset.target);
      if (!target || target.disabled) return;
      const text = chip.dataset.insert;
      const start = target.selectionStart ?? target.value.length;
      const end = target.selectionEnd ?? target.value.length;
      target.setRangeText(text, start, end, "end");
      target.focus();
      target.dispatchEvent(new Event("input", { bubbles: true }));
    });
  });

  // "123 / 4096" under the message box.
  document.querySelectorAll("[data-char-count]").forEach((counter) => {
    const box = document.getElementById(counter.dataset.charCount);
    if (!box) return;
    const fmt = new Intl.NumberFormat();
    const max = Number(counter.dataset.max);
    const update = () => {
      counter.textContent = `${fmt.format(box.value.length)} / ${fmt.format(max)}`;
      counter.classList.toggle("text-danger", box.value.length > max * 0.95);
    };
    box.addEventListener("input", update);
    update();
  });

  const panel = document.querySelector("[data-preview]");
  if (!panel) return;
  const body = document.querySelector(panel.dataset.bodySource);
  const template = panel.dataset.templateSource
    ? document.querySelector(panel.dataset.templateSource) : null;
  const whatsapp = panel.dataset.whatsappSource
    ? document.querySelector(panel.dataset.whatsappSource) : null;
  const samplesBox = panel.querySelector("[data-preview-samples]");
  const warningsBox = panel.querySelector("[data-preview-warnings]");
  const errorBox = panel.querySelector("[data-preview-error]");
  const statusLine = panel.querySelector("[data-preview-status]");
  const fmt = new Intl.NumberFormat();
  let timer = null;
  let sequence = 0;

  function chosenLists() {
    return Array.from(document.querySelectorAll(panel.dataset.listsSource))
      .filter((el) => (el.type === "checkbox" ? el.checked : true))
      .map((el) => el.value)
      .filter((value) => value !== "");
  }

  function attachmentName() {
    if (template && template.value) {
      const option = template.selectedOptions[0];
      if (option && option.dataset.attachment) return option.dataset.attachment;
    }
    return panel.dataset.attachmentName || "";
  }

  // An empty message is fine when a WhatsApp template is linked: say which one is sent.
  function emptyHint() {
    if (whatsapp && whatsapp.value) {
      const block = document.querySelector(`[data-cloud-block="${whatsapp.value}"]`);
      const name = block ? block.dataset.whatsappTemplate : whatsapp.selectedOptions[0].textContent;
      return `No message of its own: the WhatsApp template ${name} is sent, as its preview below shows.`;
    }
    const option = template && template.value ? template.selectedOptions[0] : null;
    if (option && option.dataset.whatsappTemplate) {
      return `No message of its own: this template sends the WhatsApp template ${option.dataset.whatsappTemplate}, filled in for each customer. Its preview is on the template's page.`;
    }
    return "Write the message to see it as your customers will.";
  }

  function hint(text) {
    const p = document.createElement("p");
    p.className = "wa-chat-hint mb-0";
    p.textContent = text;
    samplesBox.replaceChildren(p);
  }

  function bubble(sample, attachment) {
    const div = document.createElement("div");
    div.className = "wa-bubble";
    const to = document.createElement("div");
    to.className = "wa-bubble-to";
    to.textContent = `To ${sample.name || sample.phone} · ${sample.phone}`;
    div.append(to);
    if (attachment) {
      const file = document.createElement("div");
      file.className = "wa-bubble-attachment";
      file.textContent = `📎 ${attachment}`;
      div.append(file);
    }
    const text = document.createElement("div");
    text.className = "wa-bubble-text";
    text.textContent = sample.text;
    div.append(text);
    return div;
  }

  function render(result) {
    errorBox.hidden = !result.error;
    errorBox.textContent = result.error || "";
    if (body) body.classList.toggle("is-invalid-preview", Boolean(result.error));
    const warnings = result.warnings || [];
    warningsBox.replaceChildren(...warnings.map((w) => {
      const li = document.createElement("li");
      li.textContent = w;
      return li;
    }));
    warningsBox.hidden = warnings.length === 0;
    if (result.empty) {
      hint(emptyHint());
      statusLine.textContent = "";
      return;
    }
    if (result.samples.length) {
      const attachment = attachmentName();
      samplesBox.replaceChildren(...result.samples.map((s) => bubble(s, attachment)));
    } else if (!result.error) {
      hint("No contacts to preview with: the chosen lists are empty, or everyone in them opted out.");
    } else {
      hint("Correct the mistake above to see the message again.");
    }
    statusLine.textContent = result.checked
      ? `Placeholders checked for ${fmt.format(result.checked)} recipient(s).` : "";
  }

  async function refresh() {
    const mine = ++sequence;
    const data = new FormData();
    if (template && template.value) {
      data.append("template_id", template.value);
    } else {
      data.append("body", body ? body.value : "");
    }
    chosenLists().forEach((id) => data.append("list_ids", id));
    statusLine.textContent = "Updating…";
    try {
      const response = await fetch(panel.dataset.previewUrl, {
        method: "POST",
        body: data,
        headers: { "X-CSRFToken": panel.dataset.csrf, Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(String(response.status));
      const result = await response.json();
      if (mine === sequence) render(result);  // an older answer arriving late is dropped
    } catch (err) {
      if (mine === sequence) statusLine.textContent = "The preview is unavailable right now; it retries when you type.";
    }
  }

  function later(delay = 350) {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, delay);
  }

  if (body) body.addEventListener("input", () => later());
  if (template) template.addEventListener("change", () => later(0));
  if (whatsapp) whatsapp.addEventListener("change", () => later(0));
  document.querySelectorAll(panel.dataset.listsSource).forEach((el) => {
    el.addEventListener("change", () => later(0));
  });
  later(0);
})();
