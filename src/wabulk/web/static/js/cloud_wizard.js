// Campaign wizard, Cloud API senders: what they need (an approved WhatsApp template) or how
// many of the audience a one-off message reaches (24-hour window), said again as the
// template, the senders, the audience (lists or a segment) or the attachment change.
"use strict";

(() => {
  const form = document.getElementById("wizard");
  const box = form && form.querySelector("[data-cloud-notes]");
  if (!box) return;
  const template = document.getElementById("template_id");
  const kept = form.querySelector("input[name=media_id]");
  let timer = null;
  let sequence = 0;

  function checked(name) {
    return Array.from(form.querySelectorAll(`input[name=${name}]`))
      .filter((b) => b.checked).map((b) => b.value);
  }

  function note(item) {
    const div = document.createElement("div");
    div.className = `alert ${item.blocking ? "alert-danger" : "alert-info"} small py-2 mb-2`;
    div.dataset.blocking = item.blocking ? "1" : "0";
    const icon = document.createElement("i");
    icon.className = `bi bi-${item.blocking ? "x-octagon" : "info-circle"}`;
    icon.setAttribute("aria-hidden", "true");
    div.append(icon, document.createTextNode(` ${item.text}`));
    return div;
  }

  async function refresh() {
    const mine = ++sequence;
    const query = new URLSearchParams();
    if (template && template.value) query.append("template_id", template.value);
    checked("sender_ids").forEach((id) => query.append("sender_ids", id));
    const segment = document.getElementById("segment_id");
    if (checked("audience").includes("segment")) {
      query.append("audience", "segment");
      if (segment && segment.value) query.append("segment_id", segment.value);
    } else {
      checked("list_ids").forEach((id) => query.append("list_ids", id));
    }
    if (kept && kept.value) query.append("media_id", kept.value);
    try {
      const response = await fetch(`${box.dataset.url}?${query}`, {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      if (!response.ok) throw new Error(String(response.status));
      const result = await response.json();
      if (mine === sequence) box.replaceChildren(...result.notes.map(note));
    } catch (err) {
      // The launch checks the same again and says why it refuses.
    }
  }

  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 250);
  }

  form.addEventListener("change", (event) => {
    const name = event.target && event.target.name;
    if (["template_id", "sender_ids", "list_ids", "audience", "segment_id", "remove_media"].includes(name)) later();
  });
})();
