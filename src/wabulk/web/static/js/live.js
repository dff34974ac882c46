// The one way pages follow live figures: short polling of a small answer built from
// maintained counters. A poll holds a server thread for milliseconds; a stream would hold
// one of its few threads for as long as the page stays open.
// - Every 2.5 s by default, with a little jitter so many open pages do not poll in step.
// - Paused while the tab is hidden; polls at once when it is shown again.
// - On errors it backs off (doubling, up to 30 s) and says "Reconnecting…"; the page keeps
//   the last numbers it had, and without JavaScript it simply shows the server's numbers.
// - Stops when the page says nothing on it can change any more (onData returns false).
"use strict";

window.WabulkLive = (() => {
  const MAX_BACKOFF = 30000;
  const TIMEOUT = 10000;
  const followers = new Set();
  let note = null;

  function noteElement() {
    if (!note) {
      note = document.createElement("div");
      note.className = "live-note";
      note.setAttribute("role", "status");
      note.setAttribute("aria-live", "polite");
      note.dataset.testid = "live-note";
      note.hidden = true;
      document.body.append(note);
    }
    return note;
  }

  // The page-wide state, from every follower: the worst one wins.
  function refreshState() {
    let state = "stopped";
    for (const f of followers) {
      if (f.state === "signed-out") { state = "signed-out"; break; }
      if (f.state === "reconnecting") state = "reconnecting";
      else if (f.state === "paused" && state !== "reconnecting") state = "paused";
      else if (f.state === "live" && state === "stopped") state = "live";
    }
    const el = noteElement();
    el.hidden = !(state === "reconnecting" || state === "signed-out");
    el.textContent = state === "signed-out"
      ? wabulkText("You were signed out: reload the page to sign in again.")
      : wabulkText("Reconnecting…");
    document.querySelectorAll("[data-live-indicator]").forEach((ind) => {
      ind.hidden = false;
      ind.dataset.state = state;
      ind.textContent = {
        live: wabulkText("Live"),
        paused: wabulkText("Paused while this tab is hidden"),
        reconnecting: wabulkText("Reconnecting…"),
        "signed-out": wabulkText("Signed out"),
        stopped: wabulkText("Up to date"),
      }[state];
    });
  }

  class SignedOut extends Error {}

  // follow({url, onData, interval, type: "json" | "text", stopped, resumeOnShow, immediate})
  // url may be a function (called before every poll). Returns {refresh, stop}.
  function follow(options) {
    const interval = options.interval || 2500;
    const type = options.type || "json";
    const f = { state: "live" };
    let timer = null;
    let failures = 0;
    let busy = false;
    // A page with nothing live starts stopped; `resumeOnShow` still looks again later.
    let stopped = Boolean(options.stopped);
    if (stopped) f.state = "stopped";

    function schedule(ms) {
      window.clearTimeout(timer);
      timer = stopped ? null : window.setTimeout(tick, ms);
    }

    async function load() {
      const url = typeof options.url === "function" ? options.url() : options.url;
      const abort = new AbortController();
      const timeout = window.setTimeout(() => abort.abort(), TIMEOUT);
      try {
        const response = await fetch(url, {
          credentials: "same-origin",
          cache: "no-store",
          headers: { Accept: type === "json" ? "application/json" : "text/html" },
          signal: abort.signal,
        });
        // Signed out: the server sends the login page instead.
        if (response.redirected || response.status === 401) throw new SignedOut();
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        return type === "json" ? await response.json() : await response.text();
      } finally {
        window.clearTimeout(timeout);
      }
    }

    async function tick() {
      timer = null;
      if (document.hidden) {
        f.state = "paused";
        refreshState();
        return; // visibilitychange starts it again
      }
      if (busy) return;
      busy = true;
      try {
        const data = await load();
        failures = 0;
        f.state = "live";
        if (options.onData(data) === false) stopped = true;
      } catch (err) {
        if (err instanceof SignedOut) {
          stopped = true;
          f.state = "signed-out";
        } else {
          failures += 1;
          f.state = "reconnecting";
        }
      } finally {
        busy = false;
      }
      if (stopped && f.state !== "signed-out") f.state = "stopped";
      refreshState();
      if (!stopped) {
        const wait = failures
          ? Math.min(MAX_BACKOFF, interval * 2 ** failures)
          : interval * (0.9 + Math.random() * 0.2);
        schedule(wait);
      }
    }

    document.addEventListener("visibilitychange", () => {
      if (document.hidden) {
        window.clearTimeout(timer);
        timer = null;
        if (!stopped) {
          f.state = "paused";
          refreshState();
        }
      } else if (!stopped || (options.resumeOnShow && f.state === "stopped")) {
        // A stopped page may have become live again elsewhere (a campaign launched).
        stopped = false;
        schedule(0);
      }
    });

    followers.add(f);
    if (!stopped) schedule(options.immediate ? 0 : interval);
    refreshState();
    return {
      // One load now, outside the schedule (e.g. a last look once the page stopped).
      async refresh() {
        try {
          options.onData(await load());
        } catch (err) {
          // The schedule, if still running, reports trouble; a last look just keeps what it had.
        }
      },
      stop() {
        stopped = true;
        window.clearTimeout(timer);
        f.state = "stopped";
        refreshState();
      },
    };
  }

  return { follow };
})();
