// The Inbox without a reload: the navigation's unread count on every page, and on the Inbox
// page the list and the open conversation. Short polling like live.js, but self-contained:
// it is loaded on every page, where live.js (and its one status note) may be loaded too.
// - Paused while the tab is hidden; polls at once when it is shown again.
// - Backs off on errors (doubling, up to a minute) and stops when signed out.
// - A fragment is put in place only when it changed, so focus and scrolling stay put.
"use strict";

(() => {
  const badge = document.querySelector("[data-inbox-unread]");
  const page = document.querySelector("[data-inbox]");
  if (!badge && !page) return;

  function showCount(n) {
    if (!badge || typeof n !== "number") return;
    badge.hidden = n === 0;
    // The server counts to 100 and no further (a badge needs no more): "99+" past 99.
    badge.querySelector("[data-count]").textContent = n > 99 ? "99+" : String(n);
  }

  const listBox = page && page.querySelector("[data-inbox-list]");
  const threadBox = page && page.querySelector("[data-inbox-thread]");
  let lastList = listBox ? listBox.innerHTML.trim() : "";
  let lastThread = threadBox ? threadBox.innerHTML.trim() : "";

  function scrollToEnd() {
    if (threadBox) threadBox.scrollTop = threadBox.scrollHeight;
  }

  function apply(data) {
    showCount(data.unread);
    if (listBox && typeof data.list === "string" && data.list.trim() !== lastList) {
      lastList = data.list.trim();
      listBox.innerHTML = data.list;
    }
    if (threadBox && typeof data.thread === "string" && data.thread.trim() !== lastThread) {
      const atEnd = threadBox.scrollHeight - threadBox.scrollTop - threadBox.clientHeight < 40;
      lastThread = data.thread.trim();
      threadBox.innerHTML = data.thread;
      if (atEnd) scrollToEnd();
    }
  }

  const url = page ? page.dataset.liveUrl : badge.dataset.url;
  const interval = page ? 3000 : 15000;
  let failures = 0;
  let timer = null;
  let stopped = false;

  async function tick() {
    timer = null;
    if (document.hidden || stopped) return;
    const abort = new AbortController();
    const timeout = window.setTimeout(() => abort.abort(), 10000);
    try {
      const response = await fetch(url, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
        signal: abort.signal,
      });
      if (response.redirected || response.status === 401 || response.status === 403) {
        stopped = true; // signed out: the next page load asks to sign in
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      apply(await response.json());
      failures = 0;
    } catch (err) {
      failures += 1;
    } finally {
      window.clearTimeout(timeout);
    }
    const wait = failures
      ? Math.min(60000, interval * 2 ** failures)
      : interval * (0.9 + Math.random() * 0.2);
    timer = window.setTimeout(tick, wait);
  }

  document.addEventListener("visibilitychange", () => {
    window.clearTimeout(timer);
    timer = null;
    if (!document.hidden) timer = window.setTimeout(tick, 0);
  });
  timer = window.setTimeout(tick, interval);

  if (!page) return;
  scrollToEnd();

  // A quick reply fills the answer box, already filled for this contact, so the operator
  // reads (and may change) exactly what goes out before sending it.
  const pick = page.querySelector("[data-quick-pick]");
  const form = page.querySelector("[data-answer-form]");
  if (pick && form) {
    const text = form.querySelector("textarea[name=text]");
    const quickId = form.querySelector("[data-quick-id]");
    pick.addEventListener("change", () => {
      const option = pick.selectedOptions[0];
      quickId.value = pick.value;
      if (pick.value) text.value = option.dataset.text || "";
      text.focus();
    });
  }
  // One answer per click: the button stays disabled until the page comes back.
  if (form) {
    form.addEventListener("submit", (event) => {
      if (event.defaultPrevented) return;
      form.querySelectorAll("button[type=submit]").forEach((b) => { b.disabled = true; });
    });
  }

  // The window's time left counts down while the page stays open.
  const left = page.querySelector("[data-closes-at]");
  if (left) {
    const closes = Date.parse(left.dataset.closesAt);
    const show = () => {
      const minutes = Math.max(0, Math.floor((closes - Date.now()) / 60000));
      const h = Math.floor(minutes / 60);
      left.textContent = h
        ? wabulkText("%(hours)s h %(minutes)s min", {hours: h, minutes: minutes % 60})
        : wabulkText("%(minutes)s min", {minutes});
    };
    window.setInterval(show, 30000);
  }
})();
