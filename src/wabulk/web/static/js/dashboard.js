// The Dashboard follows today's figures, the running and scheduled campaigns, the senders'
// day and the last finished campaign's results through live.js, while anything can still
// move.
"use strict";

(() => {
  const root = document.getElementById("dashboard");
  if (!root || !window.WabulkLive) return;
  const fmt = window.wabulkNumber;
  const setText = (el, text) => {
    if (el && el.textContent !== text) el.textContent = text;
  };
  const field = (el, name) => el.querySelector(`[data-field="${name}"]`);

  function showTotals(today) {
    for (const [key, n] of Object.entries(today)) {
      setText(root.querySelector(`[data-today="${key}"]`), fmt(n));
      // The 29 days before today no longer move: the page brought them, today is added.
      const month = root.querySelector(`[data-month="${key}"]`);
      if (month) setText(month, fmt(Number(month.dataset.base || 0) + n));
    }
    const failed = root.querySelector('[data-stat="failed"]');
    if (failed) failed.classList.toggle("stat-bad", today.failed > 0);
  }

  function setBar(item, c) {
    const bar = field(item, "bar");
    bar.className = bar.className.replace(/\bpct-\d+\b/g, "").trim();
    bar.style.width = `${c.percent}%`;
    bar.classList.toggle("progress-bar-striped", c.status === "running");
    bar.classList.toggle("progress-bar-animated", c.status === "running");
    field(item, "progress").setAttribute("aria-valuenow", String(Math.round(c.percent)));
    field(item, "progress").setAttribute("aria-label", wabulkText("Progress of %(name)s", { name: c.name }));
  }

  function fillCampaign(item, c) {
    item.dataset.campaign = String(c.id);
    item.dataset.testid = `campaign-${c.id}`;
    const name = field(item, "name");
    name.href = c.url;
    setText(name, c.name);
    const status = field(item, "status");
    status.className = `badge status-${c.status}`;
    setText(status, c.status_label || c.status);
    setBar(item, c);
    setText(field(item, "percent"), wabulkPercent(c.percent, 1, 0)); // 100%, 18.5% as before
    setText(field(item, "done"), fmt(c.done));
    setText(field(item, "total"), fmt(c.total));
    setText(field(item, "sent"), fmt(c.sent));
    const failed = field(item, "failed");
    setText(failed, fmt(c.failed));
    failed.classList.toggle("text-danger", c.failed > 0);
    const reason = field(item, "reason");
    reason.hidden = !c.reason;
    reason.title = c.reason || "";
    setText(reason, c.reason || "");
  }

  // Rows for the campaigns in the answer, in its order: known ones updated in place (their
  // bars then glide), new ones made from the page's <template>, finished ones dropped.
  function showList(name, campaigns, make, fill) {
    const list = root.querySelector(`[data-list="${name}"]`);
    if (!list) return;
    const known = new Map([...list.children].map((el) => [el.dataset.campaign, el]));
    const rows = campaigns.map((c) => {
      const row = known.get(String(c.id)) || make();
      fill(row, c);
      return row;
    });
    const same = rows.length === list.children.length && rows.every((r, i) => list.children[i] === r);
    if (!same) list.replaceChildren(...rows);
    const empty = root.querySelector(`[data-empty="${name}"]`);
    if (empty) empty.hidden = campaigns.length > 0;
  }

  const template = document.getElementById("campaign-item");
  const newCampaign = () => template.content.firstElementChild.cloneNode(true);

  function newScheduled() {
    const li = document.createElement("li");
    li.className = "d-flex flex-wrap justify-content-between gap-2";
    const link = document.createElement("a");
    const when = document.createElement("span");
    when.className = "small text-body-secondary";
    li.append(link, when);
    return li;
  }

  function fillScheduled(li, c) {
    li.dataset.campaign = String(c.id);
    const [link, when] = li.children;
    link.href = c.url;
    setText(link, c.name);
    setText(when, wabulkText("starts %(when)s · %(count)s recipient(s)", {
      when: c.scheduled_at || wabulkText("soon"),
      count: fmt(c.total),
    }));
  }

  function showSenders(senders) {
    for (const s of senders) {
      const row = root.querySelector(`[data-sender="${s.id}"]`);
      if (!row) continue;
      const badge = field(row, "state");
      badge.className = `badge sender-${s.state}`;
      setText(badge, s.label);
      setText(field(row, "sent-today"), fmt(s.sent_today));
    }
  }

  function showLast(last) {
    const box = root.querySelector("[data-last]");
    if (!box || !last) return;
    const empty = root.querySelector('[data-empty="last"]');
    box.hidden = !last.id;
    if (empty) empty.hidden = Boolean(last.id);
    if (!last.id) return;
    box.dataset.last = String(last.id);
    const name = field(box, "name");
    name.href = last.url;
    setText(name, last.name);
    setText(field(box, "when"), last.when);
    for (const step of last.steps) {
      const cell = box.querySelector(`[data-result="${step.key}"]`);
      if (!cell) continue;
      const n = field(cell, "n");
      setText(n, fmt(step.n));
      n.classList.toggle("text-danger", step.key === "failed" && step.n > 0);
      setText(field(cell, "percent"), step.percent);
    }
  }

  window.WabulkLive.follow({
    url: root.dataset.liveUrl,
    stopped: root.dataset.live !== "1",
    resumeOnShow: true,
    onData(p) {
      showTotals(p.today);
      showList("running", p.running, newCampaign, fillCampaign);
      showList("scheduled", p.scheduled, newScheduled, fillScheduled);
      showSenders(p.senders);
      showLast(p.last_finished);
      root.dataset.live = p.live ? "1" : "0";
      return p.live;
    },
  });
})();
