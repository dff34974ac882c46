// Browser half of the WhatsApp Web stand-in: renders the DOM hooks of the real page
// (see /work/shared/whatsapp-web-dom.md) and talks to server.py under /_api/.
"use strict";

const SESSION_KEY = "wabulk-fake-session";
const WID_KEY = "last-wid-md";
const POLL_MS = 500;
const older = document.body.dataset.variant === "older";
const root = document.getElementById("app");

// Everything that differs between the markup generations, in one place (the chat list
// and bubbles are in chats.js).
const HOOKS = older
  ? {
      qrLabel: "Scan me!",
      sendIcon: "send",
      composeAttrs: { contenteditable: "true", "data-tab": "10", title: "Type a message" },
      attachButton: () => el("div", { title: "Attach", role: "button" }, icon("clip")),
      sendButton: () => el("button", {}, icon("send")),
      voiceButton: () => el("button", {}, icon("ptt")),
      captionAttrs: { role: "textbox", "aria-label": "Add a caption" },
    }
  : V2026
    ? {
        qrLabel: "Scan this QR code to link a device!",
        // Lexical editors; a test id instead of data-icon; the send button a div.
        composeAttrs: {
          contenteditable: "true",
          "data-lexical-editor": "true",
          "aria-label": "Type a message",
        },
        attachButton: () => el("button", { title: "Attach" }, icon("plus-rounded")),
        sendButton: () => testIdButton("Send", "wds-ic-send-filled"),
        voiceButton: () => testIdButton("Voice message", "wds-ic-mic-filled"),
        captionAttrs: {
          "data-lexical-editor": "true",
          "data-tab": "6",
          "aria-placeholder": "Add a caption",
        },
      }
    : {
      qrLabel: "Scan this QR code to link a device!",
      sendIcon: "wds-ic-send-filled",
      composeAttrs: {
        contenteditable: "true",
        role: "textbox",
        "data-tab": "10",
        "aria-placeholder": "Type a message",
      },
      attachButton: () => el("button", { title: "Attach" }, icon("plus-rounded")),
      sendButton: () => el("button", { "aria-label": "Send" }, icon("wds-ic-send-filled")),
      voiceButton: () => el("button", { "aria-label": "Voice message" }, icon("ptt")),
      captionAttrs: { role: "textbox", "aria-label": "Add a caption" },
    };

function testIdButton(label, name) {
  return el(
    "div",
    { role: "button", "aria-label": label, tabindex: "0" },
    el("span", { "data-testid": name, class: "icon" }),
  );
}

let screen = "startup"; // "qr" | "app" | "use-here": which screen #app shows
let generation = 0; // bumped on every screen change, so stale async work can bail out
let account = null; // E.164 of the linked account
let chat = null; // the open chat
let seen = null; // the server's chat version this page shows; null: show whatever comes
let qrRef = null;

// --- small helpers -------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function icon(name) {
  return el("span", { "data-icon": name });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const onlyDigits = (phone) => String(phone).replace(/\D/g, "");
const token = () => localStorage.getItem(SESSION_KEY);

async function api(method, path, body) {
  const init = { method, cache: "no-store" };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { "Content-Type": "application/json" };
  }
  const response = await fetch(path, init);
  const json = (response.headers.get("Content-Type") || "").includes("json");
  return { ok: response.ok, status: response.status, data: json ? await response.json() : null };
}

function enter(name) {
  screen = name;
  generation += 1;
  chat = null;
  return generation;
}

// --- start-up and session ------------------------------------------------------------

async function boot() {
  const mine = enter("startup");
  if (!token()) return showQr();
  let res;
  try {
    res = await api("GET", `/_api/session?token=${encodeURIComponent(token())}`);
  } catch {
    await sleep(1000); // the server restarts between tests: try again, like the real page
    if (mine === generation) boot();
    return;
  }
  if (mine !== generation) return;
  if (!res.data || !res.data.valid) return loggedOut();
  account = res.data.phone;
  rowsCache = res.data.rows;
  pendingBanner = res.data.banner;
  seen = res.data.version;
  watchSession();
  if (res.data.use_here) showUseHere();
  else showApp();
}

function loggedOut() {
  localStorage.removeItem(SESSION_KEY);
  localStorage.removeItem(WID_KEY);
  account = null;
  showQr();
}

// One poll loop per page, for the whole logged-in life of the page: the server can
// revoke the session (logout) or hand it to "another window" (Use here) at any time, and
// ticks, replies and banners change what the chat list and the open chat show.
let watching = false;
let pendingBanner = null;
let wakeUp = () => {};
async function watchSession() {
  if (watching) return;
  watching = true;
  try {
    while (screen !== "qr" && token()) {
      await new Promise((resolve) => {
        wakeUp = resolve;
        setTimeout(resolve, POLL_MS);
      });
      const query = new URLSearchParams({ token: token() || "" });
      if (seen !== null) query.set("since", seen);
      const asked = screen === "app" && chat ? chat : null;
      if (asked) query.set("open", asked.digits);
      let res;
      try {
        res = await api("GET", `/_api/state?${query}`);
      } catch {
        continue;
      }
      if (screen === "qr" || !res.data) continue;
      if (!res.data.logged_in) return loggedOut();
      if (res.data.use_here) {
        if (screen === "app") showUseHere();
        continue;
      }
      if (screen !== "app") continue;
      showBanner(res.data.banner);
      pendingBanner = res.data.banner;
      if (res.data.rows) showRows(res.data.rows);
      if (res.data.open && asked && asked === chat) showOpenChat(chat, res.data.open);
      seen = res.data.version;
    }
  } finally {
    watching = false;
  }
}

// Look again now, showing everything: a tick just appeared that the server may have moved on.
function refreshSoon() {
  seen = null;
  wakeUp();
}

// --- logged out: the QR code ---------------------------------------------------------

function showQr() {
  const mine = enter("qr");
  const landing = el(
    "div",
    { class: "landing" },
    el("h1", { text: "Log into WhatsApp Web" }),
    el("div", { class: "startup", text: "Loading QR code…" }),
  );
  root.replaceChildren(landing, phoneLinkButton()); // pairing.js
  qrLoop(mine, landing);
}

// Registers a QR ref, shows it, polls it, and swaps it for a new one when it expires.
// The canvas only appears once the server knows the ref, so a test may scan at once.
async function qrLoop(mine, landing) {
  let expires = 0;
  qrRef = null;
  while (mine === generation) {
    try {
      if (!qrRef || Date.now() >= expires) {
        const res = await api("POST", "/_api/qr", { previous: qrRef });
        if (mine !== generation) return;
        qrRef = res.data.ref;
        expires = Date.now() + res.data.refresh_seconds * 1000;
        showQrCode(landing, qrRef);
      } else {
        const res = await api("GET", `/_api/qr/${encodeURIComponent(qrRef)}`);
        if (mine !== generation) return;
        if (res.data.status === "scanned") return linked(res.data);
        if (res.data.status === "unknown") qrRef = null; // the server was reset
      }
    } catch {
      // server away for a moment: keep trying
    }
    await sleep(POLL_MS);
  }
}

function showQrCode(landing, ref) {
  let holder = landing.querySelector("div[data-ref]");
  if (!holder) {
    const canvas = el("canvas", {
      "aria-label": HOOKS.qrLabel,
      role: "img",
      width: "264",
      height: "264",
    });
    holder = el("div", { "data-ref": ref }, canvas);
    landing.lastChild.replaceWith(holder);
  }
  holder.setAttribute("data-ref", ref);
  drawQr(holder.querySelector("canvas"), ref);
}

function linked(data) {
  localStorage.setItem(SESSION_KEY, data.token);
  // The real page keeps the linked account as a JSON string, e.g. "919876543210:12@c.us".
  localStorage.setItem(WID_KEY, JSON.stringify(`${onlyDigits(data.phone)}:12@c.us`));
  qrRef = null;
  boot();
}

// Tell the server at once when a displayed QR goes away (navigation, tab closed).
window.addEventListener("pagehide", () => {
  if (screen === "qr" && qrRef) navigator.sendBeacon(`/_api/qr/${encodeURIComponent(qrRef)}/gone`);
});

// Looks like a version 3 QR code (29×29 modules, 2 of quiet zone, 8 px each): three
// finder squares, timing lines, one alignment square, and modules derived from the ref.
function drawQr(canvas, ref) {
  const modules = 29;
  const scale = canvas.width / (modules + 4);
  const random = seeded(ref);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = "#122e31";
  for (let y = 0; y < modules; y++) {
    for (let x = 0; x < modules; x++) {
      if (isDark(x, y, modules, random)) {
        ctx.fillRect((x + 2) * scale, (y + 2) * scale, scale, scale);
      }
    }
  }
}

function isDark(x, y, n, random) {
  for (const [ox, oy] of [[0, 0], [n - 7, 0], [0, n - 7]]) {
    const dx = x - ox;
    const dy = y - oy;
    if (dx >= -1 && dx <= 7 && dy >= -1 && dy <= 7) {
      if (dx < 0 || dy < 0 || dx > 6 || dy > 6) return false; // separator
      const ring = Math.min(dx, dy, 6 - dx, 6 - dy);
      return ring !== 1;
    }
  }
  const ax = Math.abs(x - (n - 7));
  const ay = Math.abs(y - (n - 7));
  if (ax <= 2 && ay <= 2) return Math.max(ax, ay) !== 1;
  if (y === 6) return x % 2 === 0;
  if (x === 6) return y % 2 === 0;
  return random() < 0.5;
}

// FNV-1a of the text seeds a mulberry32 generator: same ref, same picture.
function seeded(text) {
  let state = 2166136261;
  for (const ch of text) state = Math.imul(state ^ ch.codePointAt(0), 16777619);
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// --- "Use here" ----------------------------------------------------------------------

function showUseHere() {
  enter("use-here");
  const text =
    "WhatsApp is open in another window. Click “Use here” to use WhatsApp in this window.";
  const close = () => dialog.parentNode.replaceWith(el("div", { class: "intro", text }));
  const dialog = el(
    "div",
    { "data-animate-modal-popup": "true" },
    el("div", { text }),
    el("button", { onclick: close }, "Close"),
    el("button", { onclick: useHere }, "Use here"),
  );
  root.replaceChildren(el("div", { class: "overlay" }, dialog));
}

async function useHere() {
  let res;
  try {
    res = await api("POST", "/_api/use-here", { token: token() });
  } catch {
    return;
  }
  if (res.status === 401) return loggedOut();
  if (res.ok) showApp();
}

// --- logged in: chat list and chat ---------------------------------------------------

// Renders the app as a fresh load of the current URL would: /send opens its chat.
function showApp() {
  const mine = enter("app");
  const pane = el("div", { id: "pane-side" }, chatListHolder());
  const side = older
    ? pane
    : el("div", { id: "side" }, el("header", { text: account, title: account }), pane);
  const intro = "Send and receive messages without keeping your phone online.";
  root.replaceChildren(side, el("div", { class: "intro", text: intro }));
  paintRows();
  showBanner(pendingBanner);
  watchSession();
  const params = new URLSearchParams(location.search);
  if (location.pathname === "/send" && params.has("phone")) {
    // URLSearchParams decodes "+" as a space, exactly like the real page does.
    openChat(mine, params.get("phone"), params.get("text") || "");
  }
}

async function openChat(mine, phone, draft) {
  let res;
  try {
    const query = new URLSearchParams({ token: token(), phone });
    res = await api("GET", `/_api/contact?${query}`);
  } catch {
    return;
  }
  if (mine !== generation) return;
  if (res.status === 401) return loggedOut();
  document.getElementById("main")?.remove();
  root.querySelector(".intro")?.remove();
  if (!res.data.registered) return showInvalidNumber();
  chat = renderChat(phone, res.data, draft);
  refreshSoon(); // opening read the chat: its row loses the badge
}

function showInvalidNumber() {
  root.append(el("div", { class: "intro" }));
  const overlay = el(
    "div",
    { class: "overlay" },
    el(
      "div",
      { "data-animate-modal-popup": "true" },
      el("div", { text: "Phone number shared via url is invalid." }),
      el("button", { onclick: () => overlay.remove() }, "OK"),
    ),
  );
  root.append(overlay);
}

function renderChat(phone, contact, draft) {
  const current = { phone, digits: onlyDigits(phone), menu: null, preview: null };
  Object.assign(current, { title: contact.title, me: contact.me });
  current.list = el("div", { class: "messages", role: "application" });
  for (const message of contact.messages) {
    appendBubble(current, message).acked = true;
  }
  current.box = el("div", { ...HOOKS.composeAttrs, style: "white-space:pre-wrap" });
  setLines(current.box, draft.replace(/\r\n?/g, "\n"));
  current.box.addEventListener("keydown", (event) => {
    // Enter sends; Shift+Enter is left to the browser, which inserts a <br>.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendText(current);
    }
  });
  current.box.addEventListener("input", () => refreshSendButton(current));
  current.box.addEventListener("paste", pastePlainText);
  current.slot = el("span", { class: "send-slot" });
  current.sending = null;
  const attach = HOOKS.attachButton();
  attach.addEventListener("click", () => toggleAttachMenu(current));
  const compose = el("div", { class: "compose" }, attach, current.box, current.slot);
  current.footer = el("footer", {}, compose);
  const header = el(
    "header",
    {},
    el("span", { title: current.title, dir: "auto", text: current.title }),
  );
  current.main = el("div", { id: "main" }, header, current.list, current.footer);
  root.append(current.main);
  refreshSendButton(current);
  caretToEnd(current.box);
  return current;
}

// Lines as text nodes with <br> between them, so innerText gives the text back unchanged;
// a Lexical editor (2026) holds one paragraph per line instead.
function setLines(box, text) {
  box.replaceChildren();
  if (box.hasAttribute("data-lexical-editor")) {
    for (const line of text.split("\n")) {
      const content = line ? el("span", { "data-lexical-text": "true", text: line }) : el("br");
      box.append(el("p", { class: "selectable-text copyable-text", dir: "auto" }, content));
    }
    return;
  }
  text.split("\n").forEach((line, index) => {
    if (index > 0) box.append(el("br"));
    if (line) box.append(document.createTextNode(line));
  });
}

// What a compose or caption box holds: innerText, or a Lexical editor's paragraphs, each
// a line (an empty one shows only a <br>).
function boxText(box) {
  const paragraphs = [...box.children].filter((child) => child.tagName === "P");
  if (!paragraphs.length) return box.innerText;
  return paragraphs.map((p) => (p.textContent ? p.innerText.replace(/\n$/, "") : "")).join("\n");
}

function caretToEnd(box) {
  box.focus();
  const range = document.createRange();
  range.selectNodeContents(box);
  range.collapse(false);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

// WhatsApp drops formatting from pasted content.
function pastePlainText(event) {
  event.preventDefault();
  document.execCommand("insertText", false, event.clipboardData.getData("text/plain"));
}

// Send only while there is something to send, otherwise the microphone; swapped only on
// change, so a button Selenium already holds does not go stale for nothing.
function refreshSendButton(current) {
  const wanted = boxText(current.box).trim() ? "send" : "voice";
  if (current.sending === wanted) return;
  current.sending = wanted;
  const button = wanted === "send" ? HOOKS.sendButton() : HOOKS.voiceButton();
  if (wanted === "send") button.addEventListener("click", () => sendText(current));
  current.slot.replaceChildren(button);
}

// A new outgoing bubble with its clock. WhatsApp Web makes the message's id itself, so
// the bubble carries its data-id from the start.
function addBubble(current, kind, text, filename) {
  const id = `3EB0${[...crypto.getRandomValues(new Uint8Array(8))]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("")
    .toUpperCase()}`;
  const at = new Date().toISOString();
  const data_id = `true_${current.digits}@c.us_${id}`;
  const who = current.me;
  const message = { out: true, kind, text, filename, data_id, status: "pending", at, who };
  noteSending(current, text.split("\n")[0] || filename || "");
  return appendBubble(current, message);
}

const messageId = (bubble) => bubble.dataset.id.split("_").pop();

function sendText(current) {
  // WhatsApp trims the message; a box holding only blanks sends nothing.
  const text = boxText(current.box).trim();
  if (!text) return;
  setLines(current.box, "");
  refreshSendButton(current);
  const bubble = addBubble(current, "text", text, null);
  const body = { token: token(), phone: current.phone, text, id: messageId(bubble) };
  deliver(current, bubble, api("POST", "/_api/messages", body));
}

// The clock stays when no answer comes (logged out, server gone, renderer killed):
// exactly the case a channel must treat as "maybe sent".
async function deliver(current, bubble, request) {
  let res;
  try {
    res = await request;
  } catch {
    return;
  }
  if (!res.ok) return;
  bubble.dataset.id = `true_${current.digits}@c.us_${res.data.id}`;
  await sleep(res.data.ack_delay * 1000);
  doneSending(current);
  bubble.acked = true;
  setTick(bubble, res.data.failed ? "failed" : "sent");
  if (res.data.failed) return;
  if (res.data.after_tick.length) return takeSessionAway(res.data.after_tick);
  refreshSoon(); // later ticks come from the server
}

// WhatsApp confirmed the message, then took the session away: the screen changes in the
// very next task, so the tick is on screen for no poll to see. A beacon, so that the
// server hears of it even if the page is navigated away at once.
function takeSessionAway(faults) {
  for (const fault of faults) {
    navigator.sendBeacon("/_api/fault", JSON.stringify({ token: token(), fault }));
  }
  const mine = generation;
  setTimeout(() => {
    if (mine !== generation) return;
    if (faults.includes("logout_after")) loggedOut();
    else showUseHere();
  }, 0);
}

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || !chat) return;
  if (chat.preview) closePreview(chat);
  else closeAttachMenu(chat);
});

boot();
