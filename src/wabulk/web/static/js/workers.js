// Settings → Workers: the table is swapped for the server's every 10 seconds (live.js), so
// a worker that stops beating turns "Lost" without a reload. Without JavaScript the page
// shows the table as served and a link to look again.
"use strict";

(() => {
  const box = document.getElementById("workers");
  if (!box || !window.WabulkLive) return;
  window.WabulkLive.follow({
    type: "text",
    interval: Number(box.dataset.interval) || 10000,
    url: box.dataset.url,
    onData(html) {
      box.innerHTML = html;
    },
  });
})();
