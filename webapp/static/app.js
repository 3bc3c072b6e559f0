// What the pages do in the browser besides htmx (the Content-Security-Policy allows no inline
// script or event handler): confirmation questions, rows that leave after a download and the
// Menu button of a narrow screen.
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

  // The Menu button of the main navigation (app.css shows it on a narrow screen only) opens and
  // closes the menu; Escape closes it. Without JavaScript the button stays hidden and the menu
  // open, so every page stays reachable.
  const menuButton = document.querySelector(".main-nav .menu-toggle button");
  if (menuButton) {
    const nav = menuButton.closest("nav");
    const setOpen = function (open) {
      menuButton.setAttribute("aria-expanded", String(open));
      nav.dataset.menu = open ? "open" : "closed";
    };
    setOpen(false);
    menuButton.hidden = false;
    menuButton.addEventListener("click", function () {
      setOpen(menuButton.getAttribute("aria-expanded") !== "true");
    });
    nav.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && nav.dataset.menu === "open" && menuButton.offsetParent) {
        setOpen(false);
        menuButton.focus();
      }
    });
  }
})();
