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

  // The monitor's group runs fold their step rows (monitor/partials/_row.html): a group row's
  // button [data-fold] shows or hides the rows [data-step-of] under it, folded by default.
  // Which groups are open is kept here (and for the tab in sessionStorage) and put back after
  // every htmx swap: the 2 s refresh replaces rows, and a new step row arrives folded. A step
  // row whose group row is not on the page, or has no button any more, shows as a plain row.
  const FOLDS_KEY = "conveyor.monitor.open";
  const openGroups = new Set(JSON.parse(window.sessionStorage.getItem(FOLDS_KEY) || "[]"));
  const applyFolds = function () {
    document.querySelectorAll("tr[data-step-of]").forEach(function (row) {
      const group = document.getElementById("run-" + row.dataset.stepOf);
      const button = group && group.querySelector("button[data-fold]");
      row.hidden = Boolean(button) && !openGroups.has(row.dataset.stepOf);
    });
    document.querySelectorAll("button[data-fold]").forEach(function (button) {
      const id = button.dataset.fold;
      button.setAttribute("aria-expanded", String(openGroups.has(id)));
      button.hidden = !document.querySelector('tr[data-step-of="' + id + '"]');
    });
  };
  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest("button[data-fold]");
    if (!button) return;
    const id = button.dataset.fold;
    if (openGroups.has(id)) openGroups.delete(id); else openGroups.add(id);
    window.sessionStorage.setItem(FOLDS_KEY, JSON.stringify(Array.from(openGroups)));
    applyFolds();
  });
  ["htmx:afterSwap", "htmx:oobAfterSwap"].forEach(function (name) {
    document.addEventListener(name, applyFolds);
  });
  applyFolds();

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

// A page message says what was just done: once the person does something else on the page
// through htmx (a wizard step, a button; not a background refresh), it has served and goes,
// so "Group created" is not still on screen three steps later.
document.body.addEventListener("htmx:beforeRequest", function (event) {
  var trigger = (event.detail.elt && event.detail.elt.getAttribute("hx-trigger")) || "";
  if (trigger.indexOf("every") !== -1) return;
  document.querySelectorAll("main > .flash.success, main > .flash.info").forEach(function (message) {
    message.remove();
  });
});
