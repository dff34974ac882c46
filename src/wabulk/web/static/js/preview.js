// Message editor (template editor and campaign wizard): insert-field buttons with a fallback,
// the emoji picker, the character count, and the live preview rendered for real customers
// with WhatsApp's formatting.
"use strict";

(() => {
  // Where the cursor was in the message box, kept while focus is on a button or the picker.
  const selections = new WeakMap();
  function remember(box) {
    selections.set(box, [box.selectionStart ?? box.value.length, box.selectionEnd ?? box.value.length]);
  }
  function insertAt(box, text) {
    const [start, end] = selections.get(box) || [box.value.length, box.value.length];
    box.focus();
    box.setRangeText(text, start, end, "end");
    remember(box);
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }

  // A fallback inside the placeholder's quotes: one line, its quotes and backslashes escaped.
  function placeholder(field, fallback) {
    const words = fallback.replace(/\s+/g, " ").trim();
    if (!words) return `{{ ${field} }}`;
    const quoted = words.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
    return `{{ ${field} | default("${quoted}") }}`;
  }

  document.querySelectorAll("[data-field-inserter]").forEach((inserter) => {
    const box = document.querySelector(inserter.dataset.target);
    if (!box) return;
    ["keyup", "mouseup", "select", "input", "blur"].forEach((name) => box.addEventListener(name, () => remember(box)));
    const panel = inserter.querySelector("[data-fallback-panel]");
    const title = panel.querySelector("[data-fallback-title]");
    const fallback = panel.querySelector("#field-fallback");
    let asking = null;  // the field button whose fallback is being asked

    function close(focusBack) {
      panel.hidden = true;
      if (focusBack && asking) asking.focus();
      asking = null;
    }
    function insertAsked() {
      if (!asking) return;
      const field = asking.dataset.field;
      close(false);
      insertAt(box, placeholder(field, fallback.value));
    }

    inserter.querySelectorAll("[data-field]").forEach((button) => {
      button.addEventListener("click", () => {
        if (box.disabled || box.readOnly) return;
        if (button.dataset.ask !== "yes") {
          insertAt(box, placeholder(button.dataset.field, ""));
          return;
        }
        asking = button;
        title.textContent = wabulkText("Insert each customer's %(words)s.", { words: button.dataset.words });
        fallback.value = button.dataset.fallback || "";
        panel.hidden = false;
        fallback.focus();
        fallback.select();
      });
    });
    panel.querySelector("[data-fallback-insert]").addEventListener("click", insertAsked);
    panel.querySelector("[data-fallback-cancel]").addEventListener("click", () => close(true));
    fallback.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();  // not the form's submit
        insertAsked();
      } else if (event.key === "Escape") {
        event.preventDefault();
        close(true);
      }
    });

    const toggle = inserter.querySelector("[data-emoji-toggle]");
    const holder = inserter.querySelector("[data-emoji-panel]");
    if (toggle && holder) setUpEmoji(toggle, holder, box);
  });

  // The emoji picker (emoji-picker-element, served by the app with its data: nothing is
  // fetched from elsewhere), loaded the first time it is opened.
  function setUpEmoji(toggle, holder, box) {
    let picker = null;
    function show(open) {
      holder.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
    }
    async function open() {
      if (!picker) {
        const { default: Picker } = await import(holder.dataset.picker);
        picker = new Picker({ dataSource: holder.dataset.source, locale: "en" });
        picker.classList.add("light");
        adoptStyles(picker);
        picker.addEventListener("emoji-click", (event) => {
          insertAt(box, event.detail.unicode);
          show(false);
        });
        picker.addEventListener("keydown", (event) => {
          if (event.key === "Escape") {
            show(false);
            toggle.focus();
          }
        });
        holder.append(picker);
      }
      show(true);
      // The search box first, so a keyboard user can type "smile" at once.
      window.requestAnimationFrame(() => {
        const search = picker.shadowRoot && picker.shadowRoot.querySelector("input");
        if (search) search.focus();
      });
    }
    toggle.addEventListener("click", () => {
      if (box.disabled) return;
      if (holder.hidden) open(); else show(false);
    });
  }

  // The page's security policy allows no inline <style>, which the picker writes into its
  // own shadow root; the same rules handed over as a constructed style sheet are allowed.
  // Its inline style attributes are refused too, so the rules they carried are added here.
  function adoptStyles(picker) {
    const style = picker.shadowRoot && picker.shadowRoot.querySelector("style");
    if (!style || !("adoptedStyleSheets" in picker.shadowRoot)) return;
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(style.textContent + ".nav{grid-auto-flow:column;grid-auto-columns:1fr}.indicator-wrapper{display:none}");
    picker.shadowRoot.adoptedStyleSheets = [sheet];
  }

  // "123 / 4096" under the message box.
  document.querySelectorAll("[data-char-count]").forEach((counter) => {
    const box = document.getElementById(counter.dataset.charCount);
    if (!box) return;
    const max = Number(counter.dataset.max);
    const update = () => {
      counter.textContent = `${wabulkNumber(box.value.length)} / ${wabulkNumber(max)}`;
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
  const form = body ? body.form : null;
  const mediaId = form ? form.querySelector("input[name=media_id]") : null;
  const upload = form ? form.querySelector("input[name=media]") : null;
  const removeMedia = form ? form.querySelector("input[name=remove_media]") : null;
  const samplesBox = panel.querySelector("[data-preview-samples]");
  const warningsBox = panel.querySelector("[data-preview-warnings]");
  const errorBox = panel.querySelector("[data-preview-error]");
  const statusLine = panel.querySelector("[data-preview-status]");
  let timer = null;
  let sequence = 0;
  let chosen = { mode: "first", ids: [] };  // which customers the preview is for
  let uploadedImage = null;  // a photo chosen but not saved yet, as a data: URL

  // The campaign wizard's audience may be a segment instead of lists: the preview is then
  // for the segment's first recipients.
  const segment = document.getElementById("segment_id");
  const audienceKinds = Array.from(document.querySelectorAll("input[name=audience]"));
  const toSegment = () => audienceKinds.some((r) => r.checked && r.value === "segment");

  function chosenLists() {
    return Array.from(document.querySelectorAll(panel.dataset.listsSource))
      .filter((el) => (el.type === "checkbox" ? el.checked : true))
      .map((el) => el.value)
      .filter((value) => value !== "");
  }

  // An empty message is fine when a WhatsApp template is linked: say which one is sent.
  function emptyHint() {
    if (whatsapp && whatsapp.value) {
      const block = document.querySelector(`[data-cloud-block="${whatsapp.value}"]`);
      const name = block ? block.dataset.whatsappTemplate : whatsapp.selectedOptions[0].textContent;
      return wabulkText("No message of its own: the WhatsApp template %(whatsapp)s is sent, as its preview below shows.", { whatsapp: name });
    }
    const option = template && template.value ? template.selectedOptions[0] : null;
    if (option && option.dataset.whatsappTemplate) {
      return wabulkText("No message of its own: this template sends the WhatsApp template %(whatsapp)s, filled in for each customer. Its preview is on the template's page.", { whatsapp: option.dataset.whatsappTemplate });
    }
    return wabulkText("Write the message to see it as your customers will.");
  }

  function hint(text) {
    const p = document.createElement("p");
    p.className = "wa-chat-hint mb-0";
    p.textContent = text;
    samplesBox.replaceChildren(p);
  }

  // WhatsApp's formatting, from the server's tree: every piece of text goes in as text.
  const TAGS = { b: "strong", i: "em", s: "del", code: "code" };
  function formatted(parts) {
    const fragment = document.createDocumentFragment();
    parts.forEach((part) => {
      if (typeof part === "string") {
        fragment.append(document.createTextNode(part));
      } else if (TAGS[part.style]) {
        const el = document.createElement(TAGS[part.style]);
        el.append(formatted(part.children));
        fragment.append(el);
      }
    });
    return fragment;
  }

  function sizeText(bytes) {
    // As the server's file_size macro writes it, in the reader's numbers (1.5 MB, 1,5 MB).
    if (bytes >= 1048576) return `${wabulkDecimal(bytes / 1048576, 1)} MB`;
    if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
    return wabulkText("%(n)s bytes", { n: bytes });
  }

  // What goes above the text: a chosen file not saved yet, else the saved attachment.
  function currentAttachment(saved) {
    if (removeMedia && removeMedia.checked && !(upload && upload.files.length)) return null;
    if (upload && upload.files.length) {
      const file = upload.files[0];
      const kind = file.type.startsWith("image/") ? "image"
        : file.type.startsWith("video/") ? "video" : "document";
      return { kind, name: file.name, size: file.size, url: kind === "image" ? uploadedImage : null };
    }
    if (saved) return saved;
    if (template && template.value) {
      const option = template.selectedOptions[0];
      if (option && option.dataset.attachment) return { kind: "document", name: option.dataset.attachment };
    }
    return panel.dataset.attachmentName ? { kind: "document", name: panel.dataset.attachmentName } : null;
  }

  function attachmentBox(media) {
    const box = document.createElement("div");
    box.className = `wa-bubble-attachment wa-attachment-${media.kind}`;
    if (media.kind === "image" && media.url) {
      const img = document.createElement("img");
      img.src = media.url;
      img.alt = `Photo: ${media.name}`;
      img.className = "wa-bubble-photo";
      box.append(img);
      return box;
    }
    const icon = document.createElement("i");
    icon.className = `bi bi-${media.kind === "video" ? "play-circle" : media.kind === "image" ? "image" : "file-earmark-text"}`;
    icon.setAttribute("aria-hidden", "true");
    const name = document.createElement("span");
    name.className = "wa-attachment-name";
    name.textContent = media.name;
    box.append(icon, " ", name);
    if (media.size) {
      const size = document.createElement("span");
      size.className = "wa-attachment-size";
      size.textContent = ` · ${sizeText(media.size)}`;
      box.append(size);
    }
    return box;
  }

  function bubble(sample, media) {
    const div = document.createElement("div");
    div.className = "wa-bubble";
    const to = document.createElement("div");
    to.className = "wa-bubble-to";
    to.textContent = wabulkText("To %(name)s · %(phone)s", { name: sample.name || sample.phone, phone: sample.phone });
    div.append(to);
    if (media) div.append(attachmentBox(media));
    const text = document.createElement("div");
    text.className = "wa-bubble-text";
    if (Array.isArray(sample.parts)) text.append(formatted(sample.parts));
    else text.textContent = sample.text;
    div.append(text);
    return div;
  }

  let lastResult = null;
  function render(result) {
    lastResult = result;
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
      const media = currentAttachment(result.attachment);
      samplesBox.replaceChildren(...result.samples.map((s) => bubble(s, media)));
    } else if (!result.error) {
      hint(wabulkText("No contacts to preview with: the chosen lists are empty, or everyone in them opted out."));
    } else {
      hint(wabulkText("Correct the mistake above to see the message again."));
    }
    statusLine.textContent = result.checked
      ? wabulkText("Fields checked for %(n)s recipient(s).", { n: wabulkNumber(result.checked) }) : "";
  }

  async function refresh() {
    const mine = ++sequence;
    const data = new FormData();
    if (template && template.value) {
      data.append("template_id", template.value);
    } else {
      data.append("body", body ? body.value : "");
    }
    if (mediaId && mediaId.value && !(removeMedia && removeMedia.checked)) data.append("media_id", mediaId.value);
    if (segment && toSegment()) {
      if (segment.value) data.append("segment_id", segment.value);
    } else {
      chosenLists().forEach((id) => data.append("list_ids", id));
    }
    if (chosen.mode === "random") data.append("random", "1");
    chosen.ids.forEach((id) => data.append("contact_ids", id));
    statusLine.textContent = wabulkText("Updating…");
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
      if (mine === sequence) statusLine.textContent = wabulkText("The preview is unavailable right now; it retries when you type.");
    }
  }

  function later(delay = 350) {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, delay);
  }

  if (body) body.addEventListener("input", () => later());
  if (template) template.addEventListener("change", () => later(0));
  if (whatsapp) whatsapp.addEventListener("change", () => later(0));
  [segment, ...audienceKinds].forEach((el) => {
    if (el) el.addEventListener("change", () => later(0));
  });
  document.querySelectorAll(panel.dataset.listsSource).forEach((el) => {
    el.addEventListener("change", () => later(0));
  });
  if (removeMedia) removeMedia.addEventListener("change", () => { if (lastResult) render(lastResult); });
  if (upload) {
    upload.addEventListener("change", () => {
      uploadedImage = null;
      const file = upload.files[0];
      // Shown from memory as a data: URL (the page allows no other kind), photos of a
      // sensible size only.
      if (file && file.type.startsWith("image/") && file.size <= 5 * 1048576) {
        const reader = new FileReader();
        reader.addEventListener("load", () => {
          uploadedImage = reader.result;
          if (lastResult) render(lastResult);
        });
        reader.readAsDataURL(file);
      }
      if (lastResult) render(lastResult);
    });
  }

  // Which customers: the first ones, a random few (a new draw each press), or one found.
  const sampler = document.querySelector("[data-preview-sampler]");
  if (sampler) {
    const modes = sampler.querySelectorAll("[data-sample-mode]");
    const search = sampler.querySelector("#sample-search");
    const results = sampler.querySelector("[data-sample-results]");
    const status = sampler.querySelector("[data-sample-status]");
    let searchTimer = null;
    let searchSequence = 0;

    function pressed(mode) {
      modes.forEach((b) => {
        const on = b.dataset.sampleMode === mode;
        b.classList.toggle("active", on);
        b.setAttribute("aria-pressed", String(on));
      });
    }
    modes.forEach((button) => {
      button.addEventListener("click", () => {
        chosen = { mode: button.dataset.sampleMode, ids: [] };
        pressed(chosen.mode);
        results.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", "false"));
        later(0);
      });
    });

    async function find() {
      const mine = ++searchSequence;
      const q = search.value.trim();
      if (!q) {
        results.replaceChildren();
        status.textContent = "";
        return;
      }
      try {
        const url = `${sampler.dataset.searchUrl}?q=${encodeURIComponent(q.slice(0, 60))}`;
        const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (!response.ok) throw new Error(String(response.status));
        const { contacts } = await response.json();
        if (mine !== searchSequence) return;
        status.textContent = contacts.length
          ? wabulkText("%(n)s found: choose one to see the message as they will.", { n: wabulkNumber(contacts.length) })
          : wabulkText("No customer found with that name or number.");
        results.replaceChildren(...contacts.map((c) => {
          const b = document.createElement("button");
          b.type = "button";
          b.className = "btn btn-sm btn-outline-secondary";
          b.setAttribute("aria-pressed", "false");
          b.textContent = c.name ? `${c.name} · ${c.phone}` : c.phone;
          b.addEventListener("click", () => {
            chosen = { mode: "chosen", ids: [String(c.id)] };
            pressed(null);
            results.querySelectorAll("button").forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
            later(0);
          });
          return b;
        }));
      } catch (err) {
        if (mine === searchSequence) status.textContent = wabulkText("The search is unavailable right now; try again.");
      }
    }
    search.addEventListener("input", () => {
      window.clearTimeout(searchTimer);
      searchTimer = window.setTimeout(find, 300);
    });
    search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") event.preventDefault();  // not the form's submit
    });
  }
  later(0);
})();
