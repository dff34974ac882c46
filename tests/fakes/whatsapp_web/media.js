// Attachments in the stand-in's open chat: the attach menu with both file inputs, the
// preview with its caption box and send button (beside the dialog in 2026 builds), and
// the media message sent from it. Loaded before app.js, whose helpers these use.
"use strict";

// The file inputs exist only while the menu is open, as on the real page.
function toggleAttachMenu(current) {
  if (current.menu) return closeAttachMenu(current);
  const item = (label, accept, kind) => {
    const input = el("input", { type: "file", accept, style: "display:none" });
    input.addEventListener("change", () => {
      const file = input.files[0];
      if (!file) return;
      closeAttachMenu(current);
      showPreview(current, file, kind);
    });
    const glyph = icon(kind === "media" ? "media-filled-refreshed" : "document-filled-refreshed");
    return el("li", {}, el("label", {}, glyph, label, input));
  };
  current.menu = el(
    "ul",
    { class: "attach-menu", role: "application" },
    item("Document", "*", "document"),
    item("Photos & videos", "image/*,video/mp4,video/3gpp,video/quicktime", "media"),
  );
  current.footer.append(current.menu);
}

function closeAttachMenu(current) {
  current.menu?.remove();
  current.menu = null;
}

function showPreview(current, file, kind) {
  current.preview?.remove();
  const caption = el("div", {
    contenteditable: "true",
    ...HOOKS.captionAttrs,
    style: "white-space:pre-wrap",
  });
  setLines(caption, "");
  const button = (label, name) =>
    el("div", { role: "button", "aria-label": label, tabindex: "0" }, icon(name));
  const send = V2026 ? testIdButton("Send", "wds-ic-send-filled") : button("Send", HOOKS.sendIcon);
  const close = button("Close", "x");
  const picture = file.type.startsWith("image/")
    ? el("img", { src: URL.createObjectURL(file), alt: "" })
    : null;
  const shown = [
    el("header", {}, close),
    picture,
    el("div", { class: "file-name", dir: "auto", text: file.name }),
  ];
  const row = el("div", { class: "caption-row" }, caption, send);
  // 2026 builds keep the caption and its send button beside the dialog, not inside it.
  const dialog = V2026
    ? el("div", { class: "media-preview" }, el("div", { role: "dialog" }, ...shown), row)
    : el("div", { role: "dialog", class: "media-preview" }, ...shown, row);
  current.preview = dialog;
  let sent = false;
  const submit = () => {
    if (sent) return; // one file, one message, however many clicks arrive
    sent = true;
    sendMedia(current, file, kind, boxText(caption).trim());
  };
  caption.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  caption.addEventListener("paste", pastePlainText);
  send.addEventListener("click", submit);
  close.addEventListener("click", () => closePreview(current));
  current.main.append(dialog);
  caption.focus();
}

function closePreview(current) {
  current.preview?.remove();
  current.preview = null;
  current.box.focus();
}

function sendMedia(current, file, kind, text) {
  closePreview(current);
  const shownKind = kind === "document" ? kind : file.type.startsWith("video/") ? "video" : "image";
  const bubble = addBubble(current, shownKind, text, file.name);
  const form = new FormData();
  form.append("id", messageId(bubble));
  form.append("token", token());
  form.append("phone", current.phone);
  form.append("kind", kind);
  form.append("caption", text);
  form.append("file", file, file.name);
  deliver(current, bubble, api("POST", "/_api/messages", form));
}
