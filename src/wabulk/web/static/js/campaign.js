// One campaign's page: follows its progress live through live.js without reloading, so
// the bar, counters, funnel, status, buttons, log and Meta's hold change as the dispatcher works, and
// delivered, read, replied and billed keep rising from receipts for a while after the end.
"use strict";

// A campaign's status or a log line's level as its badge reads (the server sends them in
// English, as stored).
function statusWord(value) {
  const words = {
    draft: wabulkText("draft"),
    scheduled: wabulkText("scheduled"),
    running: wabulkText("running"),
    paused: wabulkText("paused"),
    completed: wabulkText("completed"),
    cancelled: wabulkText("cancelled"),
    info: wabulkText("info"),
    warning: wabulkText("warning"),
    error: wabulkText("error"),
  };
  return Object.prototype.hasOwnProperty.call(words, value) ? words[value] : value;
}

(() => {
  const page = document.getElementById("campaign");
  if (!page || !window.WabulkLive) return;
  const live = page.dataset.live === "1";
  if (!live && page.dataset.hearing !== "1") return;
  const fmt = { format: window.wabulkNumber };
  const field = (name) => document.querySelector(`[data-field="${name}"]`);
  const bar = field("bar");
  let lastEvent = page.dataset.lastEvent || "";

  function setBar(percent) {
    if (!bar) return;
    bar.className = bar.className.replace(/\bpct-\d+\b/g, "").trim();
    bar.style.width = `${percent}%`;
    bar.parentElement.setAttribute("aria-valuenow", String(Math.round(percent)));
  }
  if (bar) setBar(Number(bar.dataset.percent || 0));

  function showStatus(p) {
    const badge = field("status");
    badge.textContent = statusWord(p.status);
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

  // Meta's daily limit holding the campaign back: shown while it holds, gone when it lifts.
  function showHeld(p) {
    const held = field("held");
    if (!held) return;
    held.hidden = !p.held_reason;
    field("held-reason").textContent = p.held_reason || "";
    field("held-until").hidden = !p.held_until_text;
    field("held-until-text").textContent = p.held_until_text || "";
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
      badge.textContent = statusWord(e.level);
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
        link.textContent = wabulkText("screenshot");
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
    // Up to one decimal, as this line always wrote it live (100%, 18.5%).
    field("percent").textContent = wabulkPercent(p.percent, 1, 0);
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
    showHeld(p);
    const eta = field("eta");
    eta.hidden = !p.eta_text;
    field("eta-text").textContent = p.eta_text || "";
    showStatus(p);
    showEvents(p.events);
    if (p.funnel) showFunnel(p.funnel);
  }

  // Failures by reason and the latest replies: reloaded only when the figures moved.
  const outcomesBox = document.querySelector("[data-outcomes]");
  const outcomes = outcomesBox && window.WabulkLive.follow({
    stopped: true,
    type: "text",
    url: outcomesBox.dataset.outcomesUrl,
    onData(html) {
      outcomesBox.innerHTML = html;
      return false;
    },
  });
  let shownFigures = null;

  function showFunnel(f) {
    for (const step of f.steps) {
      const value = document.querySelector(`[data-funnel="${step.key}"]`);
      if (value) value.textContent = fmt.format(step.n);
      const share = document.querySelector(`[data-funnel-percent="${step.key}"]`);
      // One decimal in the reader's numbers, as the server writes it (100.0%, not 100%).
      if (share) {
        const percent = wabulkPercent(step.percent);
        share.textContent = step.base === "sent"
          ? wabulkText("%(percent)s of sent", { percent })
          : wabulkText("%(percent)s of recipients", { percent });
      }
    }
    const limited = field("limited");
    if (limited) {
      limited.hidden = !f.limited;
      field("limited-n").textContent = fmt.format(f.limited);
    }
    const billed = field("billed");
    if (billed) {
      billed.hidden = !f.billed_list.length;
      const list = field("billed-list");
      list.replaceChildren();
      f.billed_list.forEach((b, i) => {
        const count = document.createElement("strong");
        count.textContent = fmt.format(b.count);
        list.append(i ? " · " : "", `${b.label} `, count);
      });
    }
    // The first answer may already differ from the page as served: it counts as a move.
    const figures = JSON.stringify([f.failed, f.replied, f.delivered, f.read, f.billed]);
    if (figures !== shownFigures) {
      if (outcomes) outcomes.refresh();
      page.dispatchEvent(new Event("campaign:moved"));
    }
    shownFigures = figures;
  }

  function progressUrl() {
    const url = new URL(page.dataset.progressUrl, window.location.href);
    if (lastEvent) url.searchParams.set("after_event", lastEvent);
    return url;
  }

  // After the last send, receipts and replies still arrive: follow them, more slowly.
  function followReceipts() {
    window.WabulkLive.follow({
      interval: 10000,
      url: progressUrl,
      onData(p) {
        show(p);
        return p.live || p.hearing;
      },
    });
  }

  if (!live) {
    followReceipts();
    return;
  }
  window.WabulkLive.follow({
    interval: 2000,
    url: progressUrl,
    onData(p) {
      show(p);
      // The recipients table (below) refreshes at once, so it never lags the counters.
      if (!p.live) {
        page.dispatchEvent(new Event("campaign:finished"));
        if (p.hearing) followReceipts();
      }
      return p.live;
    },
  });
})();

// The recipients table: swapped in every few seconds while sending, once at the end, and
// whenever receipts or replies move the funnel afterwards.
(() => {
  const page = document.getElementById("campaign");
  const box = document.querySelector("[data-recipients]");
  if (!page || !box || !window.WabulkLive) return;
  const live = page.dataset.live === "1";
  if (!live && page.dataset.hearing !== "1") return;
  const table = window.WabulkLive.follow({
    interval: 4000,
    type: "text",
    stopped: !live,
    url: box.dataset.recipientsUrl,
    onData(html) {
      box.innerHTML = html;
      return page.dataset.live === "1";
    },
  });
  page.addEventListener("campaign:finished", () => {
    table.stop();
    table.refresh();
  });
  page.addEventListener("campaign:moved", () => {
    if (page.dataset.live !== "1") table.refresh();
  });
})();

// The campaigns list: rows of campaigns that can still move follow their counters.
(() => {
  const table = document.getElementById("campaigns-list");
  if (!table || !table.dataset.liveUrl || !window.WabulkLive) return;
  const fmt = window.wabulkNumber;
  window.WabulkLive.follow({
    url: table.dataset.liveUrl,
    onData(answer) {
      for (const c of answer.campaigns) {
        const row = table.querySelector(`tr[data-campaign="${c.id}"]`);
        if (!row) continue;
        const status = row.querySelector('[data-field="status"]');
        status.className = `badge status-${c.status}`;
        status.textContent = statusWord(c.status);
        const bar = row.querySelector('[data-field="bar"]');
        if (bar) {
          bar.className = bar.className.replace(/\bpct-\d+\b/g, "").trim();
          bar.style.width = `${c.percent}%`;
          row.querySelector('[data-field="progress"]').setAttribute("aria-valuenow", String(Math.round(c.percent)));
        }
        const summary = row.querySelector('[data-field="summary"]');
        if (summary) {
          summary.textContent = wabulkText("%(done)s of %(total)s · %(sent)s sent", {
            done: fmt(c.done),
            total: fmt(c.total),
            sent: fmt(c.sent),
          });
          if (c.failed) {
            const failed = document.createElement("span");
            failed.className = "text-danger";
            failed.textContent = wabulkText("%(n)s failed", { n: fmt(c.failed) });
            summary.append(" · ", failed);
          }
        }
      }
      return answer.live;
    },
  });
})();
