// Segment builder: each condition row shows the choices its field needs, rows are added and
// removed in place, and who matches (the count and ten of them) is asked of the server a
// moment after the last change; while a row is unfinished its message shows instead of the
// count. Saving is the form's own post, which works without this script.
"use strict";

(() => {
  const form = document.getElementById("segment-form");
  if (!form) return;
  const spec = JSON.parse(form.dataset.spec);
  const rowsBox = form.querySelector("[data-rows]");
  const template = form.querySelector("template[data-row-template]");
  const addButton = form.querySelector("[data-add-row]");
  const live = document.querySelector("[data-live]");
  const FAILED = ["failed", "failed_retryable"];
  const PLACEHOLDERS = {
    gt: "500", gte: "500", lt: "500", lte: "500",
    before: "2025-12-31", after: "2025-01-31",
    within_days: "90", not_within_days: "90",
  };

  const rows = () => Array.from(rowsBox.querySelectorAll("[data-row]"));
  const part = (row, name) => row.querySelector(`[name$="-${name}"]`);

  // --- a row's boxes follow its field and condition -------------------------------------

  function showBoxes(row) {
    const field = part(row, "field").value;
    const op = part(row, "op").value;
    const wanted = spec.widgets[field] || [];
    row.querySelector('[data-box="op"]').hidden = !field;
    for (const box of row.querySelectorAll("[data-widget]")) {
      const name = box.dataset.widget;
      let show = wanted.includes(name);
      if (name === "value" && spec.noValue.includes(op)) show = false;
      if (name === "reason" && !FAILED.includes(op)) show = false;
      box.hidden = !show;
    }
    const value = part(row, "value");
    value.placeholder = PLACEHOLDERS[op] || "";
    value.inputMode = spec.numberOps.includes(op) ? "decimal" : "text";
  }

  function fillOps(row) {
    const field = part(row, "field").value;
    const select = part(row, "op");
    const before = select.value;
    const options = (spec.ops[field] || []).map(([value, label]) => new Option(label, value));
    select.replaceChildren(...options);
    if (options.some((o) => o.value === before)) select.value = before;
  }

  function clearError(row) {
    const message = row.querySelector("[data-row-error]");
    message.hidden = true;
    message.textContent = "";
    row.classList.remove("border-danger");
    row.querySelectorAll(".is-invalid").forEach((el) => el.classList.remove("is-invalid"));
  }

  function showError(row, text, which) {
    const message = row.querySelector("[data-row-error]");
    message.textContent = text;
    message.hidden = false;
    row.classList.add("border-danger");
    const name = which === "campaign_id" ? "campaign" : which;
    const box = row.querySelector(`[data-widget="${name}"] .form-select, [data-widget="${name}"] .form-control, [data-widget="${name}"] fieldset`)
      || (name ? part(row, name) : null);
    if (box) box.classList.add("is-invalid");
  }

  // --- adding and removing rows ---------------------------------------------------------

  let next = rows().length;
  function addRow() {
    if (rows().length >= Number(addButton.dataset.max)) return;
    const n = next++;
    const holder = document.createElement("div");
    holder.innerHTML = template.innerHTML.replaceAll("__N__", String(n));
    const row = holder.querySelector("[data-row]");
    rowsBox.append(row);
    showAddButton();
    part(row, "field").focus();
  }

  function showAddButton() {
    if (addButton) addButton.disabled = rows().length >= Number(addButton.dataset.max);
  }

  if (addButton) {
    addButton.addEventListener("click", (event) => {
      event.preventDefault();
      addRow();
    });
  }

  rowsBox.addEventListener("click", (event) => {
    const button = event.target.closest("[data-remove-row]");
    if (!button) return;
    event.preventDefault();
    button.closest("[data-row]").remove();
    if (!rows().length) addRow();
    showAddButton();
    countSoon();
  });

  rowsBox.addEventListener("change", (event) => {
    const row = event.target.closest("[data-row]");
    if (!row) return;
    if (event.target.dataset.part === "field") fillOps(row);
    if (["field", "op"].includes(event.target.dataset.part)) showBoxes(row);
  });

  // --- the terms as the page shows them -------------------------------------------------

  function checked(row, name) {
    return Array.from(row.querySelectorAll(`input[name$="-${name}"]:checked`)).map((b) => b.value);
  }

  // A number typed as the page's language writes them ("1,500.5" in English and Hindi,
  // "1.500,5" in Portuguese, Spanish and Indonesian), as the server reads the saved form.
  const marks = (() => {
    const locale = window.wabulkNumberLocale || "en";
    let parts;
    try {
      parts = new Intl.NumberFormat(locale).formatToParts(12345.6);
    } catch (_error) {
      parts = new Intl.NumberFormat("en").formatToParts(12345.6);
    }
    const mark = (type, fallback) => (parts.find((p) => p.type === type) || { value: fallback }).value;
    return { group: mark("group", ","), decimal: mark("decimal", ".") };
  })();

  function number(text) {
    let bare = text.trim().replaceAll(marks.group, "").replaceAll(/[\s\u00a0\u202f]/g, "");
    if (marks.decimal !== ".") bare = bare.replace(marks.decimal, ".");
    return /^-?\d+(\.\d+)?$/.test(bare) ? Number(bare) : text;
  }

  function conditionOf(row) {
    const field = part(row, "field").value;
    const op = part(row, "op").value;
    const text = (name) => part(row, name).value.trim();
    switch (field) {
      case "list": return { field, op, value: checked(row, "lists").map(Number) };
      case "country": return { field, op, value: checked(row, "countries") };
      case "timezone": return { field, op, value: checked(row, "zones") };
      case "opt_in": return { field, op: "eq", value: text("optin") };
      case "not_on_whatsapp": return { field, op: "eq", value: text("wa") === "1" };
      case "outcome": {
        const campaign = text("campaign");
        return {
          field, op, campaign_id: campaign ? Number(campaign) : null, value: text("reason") || null,
        };
      }
      default: {
        let value = spec.noValue.includes(op) ? null : text("value");
        if (value !== null && spec.numberOps.includes(op)) value = number(value);
        const out = { field, op, value };
        if (field === "attribute") out.key = text("key");
        return out;
      }
    }
  }

  function termsNow() {
    const match = form.querySelector("input[name=match]:checked");
    const conditions = [];
    const where = [];
    rows().forEach((row, i) => {
      if (!part(row, "field").value) return;
      conditions.push(conditionOf(row));
      where.push(i);
    });
    return { terms: { match: match ? match.value : "all", conditions }, rows: where };
  }

  // --- who matches ----------------------------------------------------------------------

  let seq = 0;
  let timer = null;
  const mirror = form.querySelector("[data-count-mirror]");  // the count beside Save, on phones

  function showCount(answer) {
    live.querySelector('[data-testid="segment-count"]').hidden = false;
    live.querySelector("[data-sample-box]").hidden = false;
    live.querySelector("[data-live-error]").hidden = true;
    live.querySelector("[data-count]").textContent = answer.text;
    live.querySelector("[data-count-noun]").textContent = answer.noun;  // in the page's language
    live.querySelector("[data-sentence]").textContent = answer.sentence;
    if (mirror) {
      mirror.hidden = false;
      mirror.textContent = answer.matches;
    }
    live.querySelector("[data-away]").hidden = !answer.not_on_whatsapp;
    live.querySelector("[data-away-n]").textContent = answer.not_on_whatsapp;
    const body = live.querySelector("[data-sample]");
    const lines = answer.sample.map((c) => {
      const tr = document.createElement("tr");
      for (const [text, nowrap] of [[c.name || "—"], [c.phone, true], [c.country || "—"]]) {
        const td = document.createElement("td");
        td.textContent = text;
        if (nowrap) td.className = "text-nowrap";
        tr.append(td);
      }
      return tr;
    });
    if (!lines.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 3;
      td.className = "text-body-secondary";
      td.textContent = wabulkText("Nobody matches yet.");
      tr.append(td);
      lines.push(tr);
    }
    body.replaceChildren(...lines);
  }

  function showProblem(text) {
    if (mirror) mirror.hidden = true;
    live.querySelector('[data-testid="segment-count"]').hidden = true;
    live.querySelector("[data-sample-box]").hidden = true;
    const box = live.querySelector("[data-live-error]");
    box.querySelector("[data-live-error-text]").textContent = text;
    box.hidden = false;
  }

  async function count() {
    if (!live) return;
    const mine = ++seq;
    const body = termsNow();
    try {
      const response = await fetch(live.dataset.url, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": live.dataset.csrf,
        },
        body: JSON.stringify(body),
      });
      const answer = await response.json();
      if (mine !== seq) return;
      rows().forEach(clearError);
      if (answer.ok) {
        showCount(answer);
        return;
      }
      const row = answer.row === null || answer.row === undefined ? null : rows()[answer.row];
      if (row) {
        showError(row, answer.error, answer.part);
        showProblem(answer.error);
      } else {
        showProblem(answer.error);
      }
    } catch (err) {
      if (mine === seq) showProblem(wabulkText("Could not count just now; saving still works."));
    }
  }

  function countSoon() {
    clearTimeout(timer);
    timer = setTimeout(count, 400);
  }

  form.addEventListener("input", countSoon);
  form.addEventListener("change", countSoon);
  rows().forEach(showBoxes);
  showAddButton();
})();
