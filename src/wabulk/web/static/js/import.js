// Live progress of an import: polls its status and reloads once it has finished.
"use strict";

(() => {
  const box = document.getElementById("import-progress");
  if (!box || box.dataset.finished === "1") return;
  const bar = box.querySelector("[data-field=bar]");
  const label = box.querySelector("[data-field=label]");
  const rows = box.querySelector("[data-field=rows]");
  const hint = box.querySelector("[data-field=hint]"); // what to check while it waits
  const labels = { queued: wabulkText("Waiting to start…"), running: wabulkText("Importing…") };

  async function poll() {
    try {
      const response = await fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(String(response.status));
      const s = await response.json();
      bar.style.width = `${s.percent}%`;
      bar.parentElement.setAttribute("aria-valuenow", String(s.percent));
      rows.textContent = wabulkText("%(n)s rows read", { n: wabulkNumber(s.rows_read) });
      label.textContent = labels[s.status] || wabulkText("Finishing…");
      if (hint) hint.hidden = s.status !== "queued";
      const counts = { rows_read: s.rows_read, created: s.created, updated: s.updated,
        unchanged: s.unchanged, duplicates: s.duplicates, invalid: s.invalid, opted_out: s.opted_out };
      for (const [key, value] of Object.entries(counts)) {
        const el = document.querySelector(`[data-count=${key}]`);
        if (el) el.textContent = wabulkNumber(value);
      }
      if (s.status === "completed" || s.status === "failed") {
        window.location.reload();
        return;
      }
    } catch (err) {
      label.textContent = wabulkText("Connection lost; retrying…");
    }
    window.setTimeout(poll, 1000);
  }
  window.setTimeout(poll, 500);
})();
