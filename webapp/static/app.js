// What the pages do in the browser besides htmx (the Content-Security-Policy allows no inline
// script or event handler): confirmation questions and rows that leave after a download.
(function () {
  "use strict";

  // <button data-confirm="Delete this job?">: the click goes ahead only if the person agrees.
  // (htmx requests ask with hx-confirm instead.)
  document.addEventListener("click", function (event) {
    const asker = event.target.closest && event.target.closest("[data-confirm]");
    if (asker && !window.confirm(asker.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // <a data-leaves-row>: a monitor row leaves once its result is downloaded (the server drops
  // it from the monitor; the next poll would too).
  document.addEventListener("click", function (event) {
    const link = event.target.closest && event.target.closest("a[data-leaves-row]");
    if (!link) return;
    const row = link.closest("tr");
    if (row) window.setTimeout(function () { row.remove(); }, 800);
  });
})();
