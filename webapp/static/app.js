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

  // A form sent by a page load (not by htmx) is sent once: a double click on "Save job" or
  // "Launch now" makes one request, not two (the server refuses a second launch anyway). A form
  // whose answer is a download leaves the page in place: it may be sent again after a while.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (event.defaultPrevented || !(form instanceof HTMLFormElement)) return;  // htmx sends it
    if (form.dataset.sending) {
      event.preventDefault();
      return;
    }
    form.dataset.sending = "1";
    window.setTimeout(function () { delete form.dataset.sending; }, 5000);
  });

  // <a data-leaves-row>: a monitor row leaves once its result is downloaded (the server drops
  // it from the monitor; the next poll would too).
  document.addEventListener("click", function (event) {
    const link = event.target.closest && event.target.closest("a[data-leaves-row]");
    if (!link) return;
    const row = link.closest("tr");
    if (row) window.setTimeout(function () { row.remove(); }, 800);
  });
})();
