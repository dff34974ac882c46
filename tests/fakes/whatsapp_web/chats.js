// Chat list rows, message bubbles and limit banners of the stand-in, for each markup
// variant (see "Drift seen in 2025–26" in /work/shared/whatsapp-web-dom.md). Loaded before
// app.js, whose helpers (el, icon, older) these functions use once the page runs.
"use strict";

const V2026 = document.body.dataset.variant === "v2026";

// status -> icon, in a bubble and in a chat list row.
const BUBBLE_TICKS = {
  pending: V2026 ? "msg-clock" : "msg-time",
  sent: "msg-check",
  delivered: "msg-dblcheck",
  read: V2026 ? "msg-dblcheck-ack" : "msg-dblcheck",
  failed: "msg-failed",
};
const ROW_TICKS = V2026
  ? {
      pending: "msg-clock",
      sent: "status-check",
      delivered: "status-dblcheck",
      read: "status-dblcheck-ack",
      failed: "msg-failed",
    }
  : BUBBLE_TICKS;
const TICK_WORDS = {
  pending: "Pending",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
  failed: "Failed",
};
// A 1×1 picture stands in for a photo a customer sent.
const PIXEL =
  "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQ" +
  "GAhKmMIQAAAABJRU5ErkJggg==";

let rowsCache = []; // the chat list as the server last gave it
const inFlight = new Map(); // digits -> {count, preview, title} of messages not yet ticked

function tickIcon(status, inRow) {
  const name = (inRow ? ROW_TICKS : BUBBLE_TICKS)[status];
  // Older builds pad the label with spaces, 2026 ones do not.
  const label = V2026 ? TICK_WORDS[status] : ` ${TICK_WORDS[status]} `;
  return el("span", { class: "tick", "data-icon": name, "aria-label": label });
}

function setTick(bubble, status) {
  bubble.shownStatus = status;
  bubble.querySelector(".tick")?.replaceWith(tickIcon(status, false));
}

// --- chat list -------------------------------------------------------------------------

function chatListHolder() {
  const attrs = V2026
    ? { role: "list", "aria-label": "Chat list", class: "chat-list" }
    : { role: older ? "grid" : "list", class: "chat-list" };
  return el("div", attrs);
}

function showRows(rows) {
  rowsCache = rows;
  paintRows();
}

// Rows are kept and reordered, not rebuilt, so an element a test (or the product) holds
// stays attached unless its chat left the list.
function paintRows() {
  const list = document.querySelector("#pane-side .chat-list");
  if (!list) return;
  const rows = rowsCache.map((row) => ({ ...row }));
  for (const [number, sending] of inFlight) {
    let row = rows.find((r) => r.chat === number);
    if (!row) {
      row = { chat: number, title: sending.title, unread: 0 };
      rows.push(row);
    }
    Object.assign(row, { ours: true, status: "pending", preview: sending.preview });
    rows.splice(rows.indexOf(row), 1);
    rows.unshift(row);
  }
  const existing = new Map([...list.children].map((node) => [node.dataset.chat, node]));
  const wanted = rows.slice(0, 30).map((row) => {
    const node = existing.get(row.chat) || newRow(row.chat);
    fillRow(node, row);
    return node;
  });
  for (const node of existing.values()) if (!wanted.includes(node)) node.remove();
  wanted.forEach((node, index) => {
    if (list.children[index] !== node) list.insertBefore(node, list.children[index] || null);
  });
}

function newRow(number) {
  const role = older ? "row" : "listitem";
  const open = () => openChat(generation, number, "");
  return el("div", { role, class: "chat", "data-chat": number, tabindex: "-1", onclick: open });
}

function fillRow(node, row) {
  const signature = JSON.stringify([row.title, row.ours, row.status, row.preview, row.unread]);
  if (node.shownAs === signature) return;
  node.shownAs = signature;
  const unread = row.unread
    ? el("span", {
        class: "badge",
        "aria-label": `${row.unread} unread message${row.unread === 1 ? "" : "s"}`,
        text: String(row.unread),
      })
    : null;
  node.replaceChildren(
    el("span", { dir: "auto", title: row.title, text: row.title }),
    el(
      "div",
      { class: "last" },
      row.ours && row.status ? tickIcon(row.status, true) : null,
      el("span", { dir: "ltr", title: row.preview, text: row.preview }),
      unread,
    ),
  );
}

// Sent from this page and not yet ticked: the row shows the clock meanwhile.
function noteSending(current, preview) {
  const sending = inFlight.get(current.digits) || { count: 0 };
  inFlight.set(current.digits, { count: sending.count + 1, preview, title: current.title });
  paintRows();
}

function doneSending(current) {
  const sending = inFlight.get(current.digits);
  if (!sending) return;
  if (sending.count > 1) sending.count -= 1;
  else inFlight.delete(current.digits);
  paintRows();
}

// --- limit banners ---------------------------------------------------------------------

function showBanner(text) {
  const side = document.getElementById(older ? "pane-side" : "side");
  if (!side) return;
  let banner = side.querySelector(".limit-banner");
  if (!text) return banner?.remove();
  if (!banner) {
    const attrs = V2026
      ? { "data-testid": "chatlist-banner", class: "limit-banner" }
      : { role: "alert", class: "limit-banner" };
    banner = el("div", attrs);
    const before = older ? side.firstChild : document.getElementById("pane-side");
    side.insertBefore(banner, before);
  }
  if (banner.shownText !== text) {
    banner.shownText = text;
    banner.replaceChildren(el("div", { dir: "auto", text }));
  }
}

// --- bubbles ---------------------------------------------------------------------------

function stamp(at, who) {
  const when = new Date(at);
  const two = (n) => String(n).padStart(2, "0");
  const time = `${two(when.getHours())}:${two(when.getMinutes())}`;
  const day = `${two(when.getDate())}/${two(when.getMonth() + 1)}/${when.getFullYear()}`;
  return `[${time}, ${day}] ${who}: `;
}

function kindNode(message) {
  const name = message.filename || "";
  if (message.kind === "image") return el("img", { src: PIXEL, alt: "" });
  if (message.kind === "video") return el("video", { preload: "none", muted: "" });
  if (message.kind === "voice") {
    return el("div", { class: "voice" }, icon("audio-play"), el("span", { text: "0:07" }));
  }
  if (message.kind === "document") {
    const label = el("span", { dir: "auto", title: name, text: name });
    return el("div", { class: "attachment" }, icon("document"), label);
  }
  return null;
}

// One bubble: `message` as the server describes it (out, kind, text, filename, data_id,
// status, at, who). data-id sits on the bubble; 2026 builds dropped the class names.
function bubbleNode(message) {
  const way = message.out ? "out" : "in";
  const attrs = { class: V2026 ? `bubble b-${way}` : `bubble message-${way}` };
  const media = message.kind !== "text";
  const shown = message.out && media ? message.text || message.filename : message.text;
  const copy = shown
    ? el(
        "div",
        { class: "copyable-text", "data-pre-plain-text": stamp(message.at, message.who) },
        el("span", { class: "selectable-text copyable-text", dir: "auto", text: shown }),
      )
    : null;
  const bubble = el(
    "div",
    { ...attrs, "data-id": message.data_id },
    message.out && media && message.kind !== "document"
      ? el("div", { class: "attachment", text: message.filename })
      : null,
    kindNode(message),
    copy,
    message.out ? tickIcon(message.status, false) : null,
  );
  bubble.shownStatus = message.status;
  return bubble;
}

function appendBubble(current, message) {
  const bubble = bubbleNode(message);
  current.list.append(bubble);
  current.list.scrollTop = current.list.scrollHeight;
  return bubble;
}

// The poll's view of the open chat: ticks of acknowledged bubbles move, and messages the
// customer wrote meanwhile appear. Bubbles this page is still sending are left alone.
function showOpenChat(current, messages) {
  const known = new Map([...current.list.children].map((node) => [node.dataset.id, node]));
  for (const message of messages) {
    const node = known.get(message.data_id);
    if (node) {
      if (message.out && node.acked && node.shownStatus !== message.status) {
        setTick(node, message.status);
      }
    } else if (!message.out) {
      appendBubble(current, message);
    }
  }
}
