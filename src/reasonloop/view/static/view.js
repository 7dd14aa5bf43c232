// reasonloop view: fold/unfold, pick two trajectories to compare, synced scrolling, pass-rate bars.
// No inline handlers (the page's CSP forbids inline script); nothing here touches model text.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const btn of document.querySelectorAll("button[data-fold]")) {
    btn.addEventListener("click", () => {
      const open = btn.dataset.fold === "open";
      for (const d of document.querySelectorAll("details.fold")) d.open = open;
    });
  }

  const picks = Array.from(document.querySelectorAll("input.pick"));
  const compareBtn = document.getElementById("compare-btn");
  const update = () => {
    const on = picks.filter((p) => p.checked);
    for (const p of picks) p.disabled = !p.checked && on.length >= 2;
    if (compareBtn) compareBtn.disabled = on.length !== 2;
  };
  for (const p of picks) p.addEventListener("change", update);
  update();

  const cols = Array.from(document.querySelectorAll(".side-by-side pre.text"));
  const sync = document.getElementById("sync-scroll");
  let busy = false;
  for (const pre of cols) {
    pre.addEventListener("scroll", () => {
      if (busy || !sync || !sync.checked) return;
      busy = true;
      const frac = pre.scrollTop / Math.max(1, pre.scrollHeight - pre.clientHeight);
      const kind = pre.closest("details").classList;
      for (const other of cols) {
        if (other !== pre && other.closest("details").className === kind.value) {
          other.scrollTop = frac * (other.scrollHeight - other.clientHeight);
        }
      }
      requestAnimationFrame(() => { busy = false; });
    });
  }

  for (const bar of document.querySelectorAll(".bar[data-w]")) {
    bar.style.width = (Number(bar.dataset.w) * 0.6) + "px";
  }
});
