// Campaign wizard: the audience count as lists are chosen, a template or a one-off message,
// the text's place beside a document only with an attachment, the start time only when
// scheduling, and the senders' pacing defaults as placeholders.
"use strict";

(() => {
  const form = document.getElementById("wizard");
  if (!form) return;
  const fmt = new Intl.NumberFormat();

  // Audience: recipients of the chosen lists and the opted-out members left out.
  const audience = form.querySelector("[data-audience]");
  const listBoxes = Array.from(form.querySelectorAll("input[name=list_ids]"));
  let audienceSeq = 0;
  async function countAudience() {
    if (!audience) return;
    const chosen = listBoxes.filter((b) => b.checked).map((b) => b.value);
    if (!chosen.length) {
      audience.textContent = "Choose one or more lists.";
      return;
    }
    const mine = ++audienceSeq;
    const query = new URLSearchParams(chosen.map((id) => ["list_ids", id]));
    try {
      const response = await fetch(`${audience.dataset.audienceUrl}?${query}`, {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      if (!response.ok) throw new Error(String(response.status));
      const a = await response.json();
      if (mine !== audienceSeq) return;
      const strong = document.createElement("strong");
      strong.textContent = fmt.format(a.recipients);
      const rest = ` recipient(s)${a.opted_out ? ` · ${fmt.format(a.opted_out)} opted out, left out` : ""}`;
      audience.replaceChildren(strong, document.createTextNode(rest));
    } catch (err) {
      audience.textContent = "Could not count the recipients; they are counted again before launch.";
    }
  }
  listBoxes.forEach((b) => b.addEventListener("change", countAudience));

  // A template or a one-off message.
  const template = document.getElementById("template_id");
  const oneOff = form.querySelector("[data-one-off]");
  const note = form.querySelector("[data-template-note]");
  function showMessageSource() {
    const usingTemplate = Boolean(template && template.value);
    if (oneOff) oneOff.hidden = usingTemplate;
    if (note) note.hidden = !usingTemplate;
  }
  if (template) template.addEventListener("change", showMessageSource);

  // Where the text goes beside a document matters only when there may be an attachment:
  // an upload, the one kept, or the chosen template's.
  const textPosition = form.querySelector("[data-text-position]");
  const upload = document.getElementById("media");
  const kept = form.querySelector(".attachment-current");
  const remove = document.getElementById("remove_media");
  function showTextPosition() {
    if (!textPosition) return;
    const option = template && template.selectedOptions[0];
    const fromTemplate = Boolean(option && option.dataset.attachment);
    const uploaded = Boolean(upload && upload.files && upload.files.length);
    const keeping = Boolean(kept && !(remove && remove.checked));
    textPosition.hidden = !(fromTemplate || uploaded || keeping);
  }
  [template, upload, remove].forEach((el) => {
    if (el) el.addEventListener("change", showTextPosition);
  });

  // The start time matters only when scheduling.
  const at = document.getElementById("scheduled_at");
  const radios = Array.from(form.querySelectorAll("input[name=schedule]"));
  function showSchedule() {
    const later = radios.some((r) => r.checked && r.value === "later");
    if (at) {
      at.disabled = !later;
      if (later && !at.value) at.focus();
    }
  }
  radios.forEach((r) => r.addEventListener("change", showSchedule));

  // Pacing placeholders: the chosen senders' shared default, or "varies by sender".
  const senderBoxes = Array.from(form.querySelectorAll("input[name=sender_ids]"));
  function showPacingDefaults() {
    const chosen = senderBoxes.filter((b) => b.checked).map((b) => JSON.parse(b.dataset.pace));
    form.querySelectorAll("[data-pace-key]").forEach((input) => {
      const key = input.dataset.paceKey;
      const values = new Set(chosen.map((p) => p[key]));
      let text = "sender's default";
      if (values.size > 1) text = "varies by sender";
      else if (values.size === 1) text = [...values][0] || "none";
      if (input.type === "time") {
        const help = document.getElementById(`${key}-help`);
        if (help) help.textContent = `Sender's: ${text}`;
      } else {
        input.placeholder = text;
      }
    });
  }
  senderBoxes.forEach((b) => b.addEventListener("change", showPacingDefaults));

  showMessageSource();
  showTextPosition();
  showSchedule();
  showPacingDefaults();
  if (listBoxes.some((b) => b.checked)) countAudience();
})();
