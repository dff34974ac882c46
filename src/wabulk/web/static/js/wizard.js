// Campaign wizard: the audience count as lists are chosen, a template or a one-off message,
// the text's place beside a document only with an attachment, the start time only when
// scheduling, the senders' pacing defaults as placeholders, and the plan (how long, until
// when, who heard from us this week, what to fix before launch) as any of those change.
"use strict";

(() => {
  const form = document.getElementById("wizard");
  if (!form) return;

  // Audience: lists or one segment; recipients of the chosen lists and the opted-out
  // members left out, or the segment's recipients as a launch now would reach them.
  const audience = form.querySelector("[data-audience]");
  const listBoxes = Array.from(form.querySelectorAll("input[name=list_ids]"));
  const kinds = Array.from(form.querySelectorAll("input[name=audience]"));
  const segment = document.getElementById("segment_id");
  const segmentSentence = form.querySelector("[data-segment-sentence]");
  const toSegment = () => kinds.some((r) => r.checked && r.value === "segment");
  function showAudienceKind() {
    const lists = form.querySelector("[data-audience-lists]");
    const seg = form.querySelector("[data-audience-segment]");
    if (lists) lists.hidden = toSegment();
    if (seg) seg.hidden = !toSegment();
    if (segment && segmentSentence) {
      const option = segment.selectedOptions[0];
      const who = option && option.dataset.sentence
        ? wabulkText("Who: %(who)s.", { who: option.dataset.sentence }) + " " : "";
      segmentSentence.textContent = who + wabulkText("Worked out again when you launch, so it is up to date then; people who opted out are never in it.");
    }
  }
  let audienceSeq = 0;
  async function countAudience() {
    if (!audience) return;
    const chosen = listBoxes.filter((b) => b.checked).map((b) => b.value);
    let query;
    if (toSegment()) {
      if (!segment || !segment.value) {
        audience.textContent = wabulkText("Choose a segment.");
        return;
      }
      query = new URLSearchParams({ segment_id: segment.value });
    } else if (!chosen.length) {
      audience.textContent = wabulkText("Choose one or more lists.");
      return;
    } else {
      query = new URLSearchParams(chosen.map((id) => ["list_ids", id]));
    }
    const mine = ++audienceSeq;
    try {
      const response = await fetch(`${audience.dataset.audienceUrl}?${query}`, {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      if (!response.ok) throw new Error(String(response.status));
      const a = await response.json();
      if (mine !== audienceSeq) return;
      // The sentences are ours and the values numbers: markup from the catalogue is safe.
      const n = wabulkNumber(a.recipients) + (a.capped ? "+" : "");
      audience.innerHTML = a.segment
        ? wabulkText("<strong>%(n)s</strong> recipient(s) now", { n })
        : wabulkText("<strong>%(n)s</strong> recipient(s)", { n });
      if (a.opted_out) {
        audience.append(document.createTextNode(
          " · " + wabulkText("%(n)s opted out, left out", { n: wabulkNumber(a.opted_out) })));
      }
    } catch (err) {
      audience.textContent = wabulkText("Could not count the recipients; they are counted again before launch.");
    }
  }
  listBoxes.forEach((b) => b.addEventListener("change", countAudience));
  [...kinds, segment].forEach((el) => {
    if (!el) return;
    el.addEventListener("change", () => {
      showAudienceKind();
      countAudience();
    });
  });

  // A template or a one-off message.
  const template = document.getElementById("template_id");
  const oneOff = form.querySelector("[data-one-off]");
  const note = form.querySelector("[data-template-note]");
  function showMessageSource() {
    const usingTemplate = Boolean(template && template.value);
    if (oneOff) oneOff.hidden = usingTemplate;
    if (note) note.hidden = !usingTemplate;
  }
  if (template) template.addEventListener("change", showMessageSource);

  // Where the text goes beside a document matters only when there may be an attachment:
  // an upload, the one kept, or the chosen template's.
  const textPosition = form.querySelector("[data-text-position]");
  const upload = document.getElementById("media");
  const kept = form.querySelector(".attachment-current");
  const remove = document.getElementById("remove_media");
  function showTextPosition() {
    if (!textPosition) return;
    const option = template && template.selectedOptions[0];
    const fromTemplate = Boolean(option && option.dataset.attachment);
    const uploaded = Boolean(upload && upload.files && upload.files.length);
    const keeping = Boolean(kept && !(remove && remove.checked));
    textPosition.hidden = !(fromTemplate || uploaded || keeping);
  }
  [template, upload, remove].forEach((el) => {
    if (el) el.addEventListener("change", showTextPosition);
  });

  // The start time matters only when scheduling.
  const at = document.getElementById("scheduled_at");
  const radios = Array.from(form.querySelectorAll("input[name=schedule]"));
  function showSchedule() {
    const later = radios.some((r) => r.checked && r.value === "later");
    if (at) {
      at.disabled = !later;
      if (later && !at.value) at.focus();
    }
  }
  radios.forEach((r) => r.addEventListener("change", showSchedule));

  // Pacing placeholders: the chosen senders' shared default, or "varies by sender".
  const senderBoxes = Array.from(form.querySelectorAll("input[name=sender_ids]"));
  function showPacingDefaults() {
    const chosen = senderBoxes.filter((b) => b.checked).map((b) => JSON.parse(b.dataset.pace));
    form.querySelectorAll("[data-pace-key]").forEach((input) => {
      const key = input.dataset.paceKey;
      const values = new Set(chosen.map((p) => p[key]));
      let text = wabulkText("sender's default");
      if (values.size > 1) text = wabulkText("varies by sender");
      else if (values.size === 1) text = [...values][0] || wabulkText("none");
      if (input.type === "time") {
        const help = document.getElementById(`${key}-help`);
        if (help) help.textContent = wabulkText("Sender's: %(value)s", { value: text });
      } else {
        input.placeholder = text;
      }
    });
  }
  senderBoxes.forEach((b) => b.addEventListener("change", showPacingDefaults));

  // The plan, asked of the server (it knows the senders' caps, warm-up and today's sends)
  // a moment after the last change; an older answer arriving late is dropped.
  const plan = form.querySelector("[data-plan]");
  const overlap = form.querySelector("[data-overlap]");
  let planSeq = 0;
  let planTimer = null;

  function alertList(className, testid, icon, lead, texts, tail) {
    const box = document.createElement("div");
    box.className = className;
    box.dataset.testid = testid;
    const i = document.createElement("i");
    i.className = `bi bi-${icon}`;
    i.setAttribute("aria-hidden", "true");
    const list = document.createElement("ul");
    list.className = "mb-0 mt-1";
    for (const text of texts) {
      const li = document.createElement("li");
      li.textContent = text;
      list.append(li);
    }
    box.append(i, document.createTextNode(` ${lead}`), list);
    if (tail) box.append(document.createTextNode(tail));
    return box;
  }

  function showPlan(p) {
    const estimate = plan.querySelector('[data-testid="estimate"]');
    estimate.hidden = !p.estimate;
    estimate.querySelector("[data-estimate]").textContent = p.estimate || "";
    const outlook = plan.querySelector("[data-outlook]");
    outlook.replaceChildren(
      ...(p.warnings.length
        ? [alertList("alert alert-warning", "outlook", "exclamation-triangle", wabulkText("Before you launch:"), p.warnings)]
        : []),
    );
    if (overlap) {
      overlap.replaceChildren(
        ...(p.overlap.length
          ? [alertList(
            "alert alert-warning small py-2 mb-0", "overlap", "people",
            wabulkText("Some of them heard from you this week:"), p.overlap,
            wabulkText("Messaging people again so soon makes them more likely to block or report your number."),
          )]
          : []),
      );
    }
  }

  async function askPlan() {
    const query = new URLSearchParams();
    for (const name of ["list_ids", "sender_ids"]) {
      form.querySelectorAll(`input[name=${name}]:checked`).forEach((b) => query.append(name, b.value));
    }
    if (toSegment()) {
      query.delete("list_ids");
      query.set("audience", "segment");
      if (segment && segment.value) query.set("segment_id", segment.value);
    }
    const schedule = radios.find((r) => r.checked);
    if (schedule) query.set("schedule", schedule.value);
    for (const el of form.querySelectorAll("#scheduled_at, #ends_at, [data-pace-key]")) {
      if (el.value) query.set(el.name, el.value);
    }
    const mine = ++planSeq;
    try {
      const response = await fetch(`${plan.dataset.planUrl}?${query}`, {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      if (!response.ok) throw new Error(String(response.status));
      const p = await response.json();
      if (mine === planSeq) showPlan(p);
    } catch (err) {
      // The page keeps the last plan; launching checks everything again.
    }
  }

  function planSoon() {
    if (!plan) return;
    clearTimeout(planTimer);
    planTimer = setTimeout(askPlan, 400);
  }
  [...listBoxes, ...senderBoxes, ...radios, ...kinds].forEach((b) => b.addEventListener("change", planSoon));
  if (segment) segment.addEventListener("change", planSoon);
  form.querySelectorAll("#scheduled_at, #ends_at, [data-pace-key]").forEach((el) => {
    el.addEventListener("input", planSoon);
    el.addEventListener("change", planSoon);
  });

  showAudienceKind();
  showMessageSource();
  showTextPosition();
  showSchedule();
  showPacingDefaults();
  if (listBoxes.some((b) => b.checked) || (toSegment() && segment && segment.value)) countAudience();
})();
