// The Analytics page's charts, drawn with Chart.js from the numbers the server put in the
// page (a JSON data block: the CSP allows no inline script). The same numbers are in the
// tables beneath each chart, so nothing is lost when a chart cannot be drawn.
"use strict";

(() => {
  const source = document.getElementById("analytics-data");
  if (!source) return;
  const boxes = document.querySelectorAll("[data-chart-box]");

  function say(box, state, text) {
    box.dataset.state = state;
    const status = box.querySelector("[data-chart-status]");
    status.hidden = state === "ready";
    if (text) status.textContent = text;
  }

  if (typeof window.Chart !== "function") {
    boxes.forEach((box) => say(box, "error", wabulkText("The chart could not be drawn here; its numbers are in the table below.")));
    return;
  }

  const data = JSON.parse(source.textContent);
  const Chart = window.Chart;
  const COLORS = {
    sent: "#128c7e",
    delivered: "#34b7f1",
    read: "#6f42c1",
    replied: "#f0ad4e",
    failed: "#c0392b",
    opt_outs: "#667781",
    billed: "#075e54",
  };
  // Numbers as the page writes them (the reader's locale), in tooltips and on the axes.
  const fmt = { format: window.wabulkNumber };
  Chart.defaults.locale = window.wabulkNumberLocale;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#54656f";
  // Drawn at once: a chart that moves adds nothing here and unsettles some readers.
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.plugins.tooltip.callbacks.label = (ctx) =>
    `${ctx.dataset.label}: ${fmt.format(ctx.parsed[ctx.chart.options.indexAxis === "y" ? "x" : "y"])}`;

  const kinds = data.kinds;
  const series = (block, keys) =>
    keys.map((k) => ({
      label: data.labels[k],
      data: block[k],
      backgroundColor: COLORS[k],
      borderColor: COLORS[k],
      borderWidth: 2,
      pointRadius: block.labels.length > 60 ? 0 : 2,
      tension: 0.2,
    }));
  const wholeNumbers = { beginAtZero: true, ticks: { precision: 0 } };

  const charts = {
    days: () => ({
      type: "line",
      data: { labels: data.days.labels, datasets: series(data.days, kinds) },
      options: { scales: { y: wholeNumbers }, interaction: { mode: "index", intersect: false } },
    }),
    hours: () => ({
      type: "bar",
      data: { labels: data.hours.labels, datasets: series(data.hours, kinds) },
      options: { scales: { y: wholeNumbers }, interaction: { mode: "index", intersect: false } },
    }),
    funnel: () => ({
      type: "bar",
      data: {
        labels: data.funnel.labels,
        datasets: [{
          label: wabulkText("Messages"),
          data: data.funnel.values,
          backgroundColor: ["sent", "delivered", "read", "replied"].map((k) => COLORS[k]),
        }],
      },
      options: { indexAxis: "y", scales: { x: wholeNumbers }, plugins: { legend: { display: false } } },
    }),
    campaigns: () => ({
      type: "bar",
      data: { labels: data.campaigns.labels, datasets: series(data.campaigns, ["sent", "delivered", "read", "replied"]) },
      options: { indexAxis: "y", scales: { x: wholeNumbers } },
    }),
    failures: () => ({
      type: "bar",
      data: {
        labels: data.failures.labels,
        datasets: [{ label: wabulkText("Messages"), data: data.failures.values, backgroundColor: COLORS.failed }],
      },
      options: { indexAxis: "y", scales: { x: wholeNumbers }, plugins: { legend: { display: false } } },
    }),
    billed: () => ({
      type: "bar",
      data: {
        labels: data.billed.labels,
        datasets: [{ label: wabulkText("Messages"), data: data.billed.values, backgroundColor: COLORS.billed }],
      },
      options: { indexAxis: "y", scales: { x: wholeNumbers }, plugins: { legend: { display: false } } },
    }),
    senders: () => ({
      type: "bar",
      data: {
        labels: data.senders.labels,
        datasets: [
          { label: data.labels.sent, data: data.senders.sent, backgroundColor: COLORS.sent },
          { label: data.labels.failed, data: data.senders.failed, backgroundColor: COLORS.failed },
        ],
      },
      options: { scales: { x: { stacked: true }, y: { ...wholeNumbers, stacked: true } } },
    }),
    opt_outs: () => ({
      type: "bar",
      data: {
        labels: data.opt_outs.labels,
        datasets: [{ label: wabulkText("Opted out"), data: data.opt_outs.values, backgroundColor: COLORS.opt_outs }],
      },
      options: { scales: { y: wholeNumbers }, plugins: { legend: { display: false } } },
    }),
  };

  boxes.forEach((box) => {
    const key = box.dataset.chartBox;
    try {
      new Chart(box.querySelector("canvas"), charts[key]());
      say(box, "ready");
    } catch (err) {
      say(box, "error", wabulkText("The chart could not be drawn here; its numbers are in the table below."));
    }
  });
})();
