// Linking by phone number on the stand-in (server side: pairing.py). Loaded before app.js,
// whose helpers (el, api, enter, linked, showQr, …) it uses once the page runs; app.js's
// showQr adds `phoneLinkButton()` under the QR.
"use strict";

// The 2026 build words the link differently and drops the test id, and keeps the code in
// data-link-code as comma-separated characters: the channel must cope with both.
const PAIRING_2026 = document.body.dataset.variant === "v2026";

function phoneLinkButton() {
  const attrs = { role: "button", tabindex: "0", class: "link-phone", onclick: showPhoneEntry };
  if (PAIRING_2026) return el("div", attrs, el("span", { text: "Log in with phone number" }));
  return el("div", { ...attrs, "data-testid": "link-phone" }, "Link with phone number");
}

function backToQrButton() {
  return el("div", { role: "button", tabindex: "0", onclick: showQr }, "Link with QR code");
}

function showPhoneEntry() {
  // The QR leaves the screen: it can no longer be scanned.
  if (qrRef) navigator.sendBeacon(`/_api/qr/${encodeURIComponent(qrRef)}/gone`);
  qrRef = null;
  const mine = enter("phone");
  // Prefilled with a country code from the visitor's location, as the real page does.
  const input = el("input", {
    type: "text",
    inputmode: "tel",
    autocomplete: "tel",
    "aria-label": "Type your phone number.",
    value: "+1 ",
  });
  const submit = (event) => {
    event?.preventDefault();
    askCode(mine, input);
  };
  const next = PAIRING_2026
    ? el("div", { role: "button", tabindex: "0", "aria-label": "Next", onclick: submit }, "Next")
    : el("button", { type: "submit" }, "Next");
  const fields = PAIRING_2026
    ? el("div", {}, input, next)
    : el("form", { onsubmit: submit }, input, next);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && PAIRING_2026) submit(event);
  });
  root.replaceChildren(
    el(
      "div",
      { class: "landing" },
      el("h1", { text: "Enter phone number" }),
      el("p", { text: "Select a country and enter your phone number." }),
      fields,
      backToQrButton(),
    ),
  );
  input.focus();
}

async function askCode(mine, input) {
  let res;
  try {
    res = await api("POST", "/_api/pairing", { phone: input.value });
  } catch {
    return;
  }
  if (mine !== generation) return;
  // The refusal appears under the field only once there is one, as on the real page.
  input.parentNode.querySelector(".phone-error")?.remove();
  if (!res.ok) {
    input.after(el("div", { class: "phone-error", role: "alert", text: res.data.error }));
    input.setAttribute("aria-invalid", "true");
    return;
  }
  showCode(res.data.code, input.value.trim());
}

function showCode(code, phone) {
  const mine = enter("code");
  const chars = Array.from(code, (ch) => el("span", { class: "code-char", text: ch }));
  chars.splice(4, 0, el("span", { class: "code-dash", text: "-" }));
  const box = el(
    "div",
    {
      "data-link-code": PAIRING_2026 ? Array.from(code).join(",") : code,
      style: "font: 600 2rem monospace; letter-spacing: .3em; margin: 1rem 0",
    },
    ...chars,
  );
  root.replaceChildren(
    el(
      "div",
      { class: "landing" },
      el("h1", { text: "Enter code on phone" }),
      el("p", { text: `Linking WhatsApp account ${phone}` }),
      box,
      el("p", { text: "Open WhatsApp on your phone, tap Linked devices, Link a device, then Link with phone number instead." }),
      backToQrButton(),
    ),
  );
  pollCode(mine, code);
}

async function pollCode(mine, code) {
  while (mine === generation) {
    await sleep(POLL_MS);
    let res;
    try {
      res = await api("GET", `/_api/pairing/${encodeURIComponent(code)}`);
    } catch {
      continue; // server away for a moment
    }
    if (mine !== generation) return;
    if (res.data.status === "linked") return linked(res.data);
    if (res.data.status === "unknown") return showQr(); // the server was reset
  }
}
