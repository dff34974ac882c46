// Senders: the new-sender form shows the settings of the chosen kind and its usual pacing;
// the link page follows the QR code (or the code to type on the phone) and the sender's state
// every second without reloading.
"use strict";

// The form: only the chosen kind's settings, and its pacing unless the user changed a box.
(() => {
  const form = document.getElementById("sender-form");
  if (!form || !form.dataset.newValues) return;
  const defaults = JSON.parse(form.dataset.newValues);
  const radios = Array.from(form.querySelectorAll("input[name=channel]"));
  const chosen = () => (radios.find((r) => r.checked) || radios[0]).value;
  let shown = chosen();

  function showKind() {
    const kind = chosen();
    form.querySelectorAll("[data-kind]").forEach((section) => {
      section.hidden = section.dataset.kind !== kind;
    });
    if (kind === shown) return;
    // A box still holding the previous kind's value was not typed in: it takes the new one.
    form.querySelectorAll("[data-pacing]").forEach((input) => {
      const key = input.dataset.pacing;
      const before = (defaults[shown] || {})[key] ?? "";
      if (input.value === before) input.value = (defaults[kind] || {})[key] ?? "";
    });
    shown = kind;
  }
  radios.forEach((r) => r.addEventListener("change", showKind));
  showKind();
})();

// The link page: the QR as the worker refreshes it (or the pairing code when linking by phone
// number), a countdown, and the outcome.
(() => {
  const box = document.getElementById("sender-link");
  if (!box) return;
  const panels = Array.from(box.querySelectorAll("[data-panel]"));
  const qr = box.querySelector("[data-testid=qr]");
  const offline = box.querySelector("[data-field=offline]");
  let secondsLeft = 0;
  const linkingPanels = ["qr", "code", "waiting"];
  let wasLinking = linkingPanels.includes(box.dataset.panelShown);
  let failures = 0;

  function panelFor(view) {
    if (view.state === "linked") return "linked";
    if (["in_use", "browser_failed", "disabled"].includes(view.state)) return view.state;
    if (view.linking) return view.code ? "code" : view.qr ? "qr" : "waiting";
    return "idle";
  }

  function showCountdown() {
    const s = Math.max(0, secondsLeft);
    const text = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    box.querySelectorAll("[data-field=countdown]").forEach((el) => { el.textContent = text; });
  }

  function show(view) {
    const panel = panelFor(view);
    panels.forEach((p) => { p.hidden = p.dataset.panel !== panel; });
    box.dataset.panelShown = panel;
    // Only a data URL of a PNG is ever put in the image: the worker writes nothing else.
    if (view.qr && view.qr.startsWith("data:image/png;base64,") && qr.getAttribute("src") !== view.qr) {
      qr.src = view.qr;
    }
    // Shown as WhatsApp shows it, in two groups of four: "K7Q2-M9XA".
    const code = view.code ? `${view.code.slice(0, 4)}-${view.code.slice(4)}` : "";
    box.querySelectorAll("[data-field=code]").forEach((el) => { el.textContent = code; });
    box.querySelectorAll("[data-field=by-phone]").forEach((el) => { el.textContent = view.by_phone || ""; });
    box.querySelectorAll("[data-waiting]").forEach((el) => {
      el.hidden = (el.dataset.waiting === "phone") !== Boolean(view.by_phone);
    });
    secondsLeft = view.seconds_left;
    showCountdown();
    box.querySelectorAll("[data-field=reason]").forEach((el) => { el.textContent = view.reason || ""; });
    box.querySelectorAll("[data-field=detail]").forEach((el) => { el.textContent = view.detail || ""; });
    box.querySelector("[data-field=phone]").textContent = view.phone || wabulkText("an unknown number");
    if (view.linking) wasLinking = true;
    if (panel === "idle") {
      box.querySelector("[data-idle=expired]").hidden = !wasLinking;
      box.querySelector("[data-idle=never]").hidden = wasLinking;
    }
    return panel;
  }

  async function poll() {
    let panel = box.dataset.panelShown;
    try {
      const response = await fetch(box.dataset.linkUrl, {
        headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store",
      });
      if (!response.ok) throw new Error(String(response.status));
      panel = show(await response.json());
      failures = 0;
      offline.hidden = true;
    } catch (err) {
      failures += 1;
      if (failures > 2) offline.hidden = false;
    }
    if (panel === "linked" || panel === "disabled") return; // nothing more will change here
    // Every second while a QR or a code is asked for; calmly otherwise, in case the worker
    // reports.
    const linking = linkingPanels.includes(panel);
    window.setTimeout(poll, linking ? 1000 : 5000);
  }

  // Between polls the countdown still moves.
  window.setInterval(() => {
    if (secondsLeft > 0) {
      secondsLeft -= 1;
      showCountdown();
    }
  }, 1000);
  window.setTimeout(poll, 1000);
})();
