// One campaign's page: follows its progress live (every second) without reloading, so the
// bar, counters, status, buttons and log change as the dispatcher works.
"use strict";

(() => {
  const page = document.getElementById("campaign");
  if (!page || page.dataset.live !== "1") return;
  const fmt = new Intl.NumberFormat();
  const field = (name) => document.querySelector(`[data-field="${name}"]`);
  const bar = field("bar");
  let lastEvent = page.dataset.lastEvent || "";
  let failures = 0;

  function setBar(percent) {
    if (!bar) return;
    bar.className = bar.className.replace(/\bpct-\d+\b/g, "").trim();
    bar.style.width = `${percent}%`;
    bar.parentElement.setAttribute("aria-valuenow", String(Math.round(percent)));
  }
  if (bar) setBar(Number(bar.dataset.percent || 0));

  function showStatus(p) {
    const badge = field("status");
    badge.textContent = p.status;
    badge.className = badge.className.replace(/\bstatus-\w+\b/, `status-${p.status}`);
    page.dataset.status = p.status;
    page.dataset.live = p.live ? "1" : "0";
    const reason = field("reason");
    reason.hidden = !p.reason;
    field("reason-text").textContent = p.reason || "";
    reason.classList.toggle("alert-warning", p.status === "paused");
    reason.classList.toggle("alert-info", p.status !== "paused");
    if (bar) {
      const moving = p.status === "running";
      bar.classList.toggle("progress-bar-striped", moving);
      bar.classList.toggle("progress-bar-animated", moving);
    }
    // Exactly the moves the status allows now; the others stay in the page, hidden.
    document.querySelectorAll("form[data-action]").forEach((form) => {
      form.hidden = !p.actions.includes(form.dataset.action);
    });
    document.querySelectorAll("[data-when]").forEach((el) => {
      el.hidden = !el.dataset.when.split(" ").includes(p.status);
    });
    const finishedLabel = field("finished-label");
    if (finishedLabel && p.finished_at) {
      finishedLabel.hidden = false;
      field("finished").hidden = false;
      field("finished").textContent = p.finished_at;
    }
  }

  function showEvents(events) {
    if (!events.length) return;
    const log = document.querySelector("[data-log]");
    const empty = log.querySelector("[data-log-empty]");
    if (empty) empty.remove();
    // Newest first in the answer; prepend oldest first so the newest ends on top.
    [...events].reverse().forEach((e) => {
      const li = document.createElement("li");
      const badge = document.createElement("span");
      badge.className = `badge level-${e.level}`;
      badge.textContent = e.level;
      const at = document.createElement("span");
      at.className = "text-body-secondary";
      at.textContent = e.at;
      li.append(badge, " ", at, ` ${e.text}`);
      if (e.screenshot) {
        // What WhatsApp Web showed when something unexpected happened.
        const link = document.createElement("a");
        link.href = e.screenshot;
        link.target = "_blank";
        link.rel = "noopener";
        link.dataset.testid = "screenshot";
        link.textContent = "screenshot";
        li.append(" ", link);
      }
      li.classList.add("log-new");
      log.prepend(li);
    });
    while (log.children.length > 50) log.lastElementChild.remove();
    lastEvent = String(events[0].id);
  }

  function show(p) {
    setBar(p.percent);
    field("percent").textContent = `${p.percent}%`;
    field("done").textContent = fmt.format(p.done);
    field("total").textContent = fmt.format(p.total);
    for (const [status, n] of Object.entries(p.counts)) {
      const counter = document.querySelector(`[data-count="${status}"]`);
      if (counter) counter.textContent = fmt.format(n);
      const tab = document.querySelector(`[data-tab-count="${status}"]`);
      if (tab) tab.textContent = fmt.format(n);
    }
    const all = document.querySelector('[data-tab-count="all"]');
    if (all) all.textContent = fmt.format(p.total);
    const eta = field("eta");
    eta.hidden = !p.eta_text;
    field("eta-text").textContent = p.eta_text || "";
    showStatus(p);
    showEvents(p.events);
  }

  async function poll() {
    let live = true;
    try {
      const url = new URL(page.dataset.progressUrl, window.location.href);
      if (lastEvent) url.searchParams.set("after_event", lastEvent);
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      const p = await response.json();
      failures = 0;
      show(p);
      live = p.live;
    } catch (err) {
      failures += 1;
      const eta = field("eta");
      if (eta && failures > 2) {
        eta.hidden = false;
        field("eta-text").textContent = "connection lost; retrying…";
      }
    }
    if (live) window.setTimeout(poll, 1000);
    // The recipients table (below) refreshes at once, so it never lags the counters.
    else page.dispatchEvent(new Event("campaign:finished"));
  }
  window.setTimeout(poll, 1000);
})();

// The recipients table: swapped in every few seconds while sending, and once at the end.
(() => {
  const page = document.getElementById("campaign");
  const box = document.querySelector("[data-recipients]");
  if (!page || !box || page.dataset.live !== "1") return;
  async function refresh() {
    try {
      const response = await fetch(box.dataset.recipientsUrl, { credentials: "same-origin" });
      if (response.ok) box.innerHTML = await response.text();
    } catch (err) {
      // The progress poll reports a lost connection; the table simply stays as it was.
    }
  }
  let timer = null;
  async function loop() {
    await refresh();
    if (page.dataset.live === "1") timer = window.setTimeout(loop, 4000);
  }
  page.addEventListener("campaign:finished", () => {
    window.clearTimeout(timer);
    refresh();
  });
  timer = window.setTimeout(loop, 4000);
})();
