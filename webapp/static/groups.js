// The group wizard's job lists: drag and drop to add, remove and reorder (the Add, Remove and
// Move buttons do the same from the keyboard), each change saved at once, and focus kept on the
// moved job after a swap.
(function () {
  "use strict";
  let dragged = null;
  let lastOp = null;

  function listOf(node) {
    return node && node.closest ? node.closest(".dnd-list") : null;
  }

  document.addEventListener("dragstart", function (event) {
    const item = event.target.closest && event.target.closest(".dnd-list li[data-job-id]");
    if (!item) return;
    dragged = item;
    item.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", item.dataset.jobId);
  });

  document.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
  });

  document.addEventListener("dragover", function (event) {
    const list = listOf(event.target);
    if (!dragged || !list) return;
    event.preventDefault();
    const over = event.target.closest("li[data-job-id]");
    if (over === dragged) return;
    if (over) {
      const box = over.getBoundingClientRect();
      list.insertBefore(dragged, event.clientY > box.top + box.height / 2 ? over.nextSibling : over);
    } else {
      list.appendChild(dragged);
    }
  });

  document.addEventListener("drop", function (event) {
    const list = listOf(event.target);
    if (!dragged || !list) return;
    event.preventDefault();
    const form = list.closest("form");
    // the Group list's items carry the steps, in order; the Jobs list's items carry nothing
    form.querySelectorAll(".dnd-list li[data-job-id]").forEach(function (item) {
      const inGroup = listOf(item).dataset.list === "group";
      let input = item.querySelector("input[name=steps]");
      if (inGroup && !input) {
        input = document.createElement("input");
        input.type = "hidden";
        input.name = "steps";
        input.value = item.dataset.jobId;
        item.prepend(input);
      } else if (!inGroup && input) {
        input.remove();
      }
    });
    lastOp = null;
    // saved at once, as a button's change is: op=order says so (htmx leaves out the name of a
    // hidden submitter, so it goes as a field of its own)
    const op = document.createElement("input");
    op.type = "hidden";
    op.name = "op";
    op.value = "order";
    form.append(op);
    form.requestSubmit(form.querySelector("button.dnd-order"));
  });

  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest("#wizard button[name=op]");
    if (button) lastOp = button.value;
  });

  document.addEventListener("htmx:afterSettle", function () {
    if (!lastOp) return;
    const [verb, id] = lastOp.split(":");
    lastOp = null;
    const next = {add: ["remove"], remove: ["add"], up: ["up", "down", "remove"],
                  down: ["down", "up", "remove"]}[verb] || [];
    for (const candidate of next) {
      const button = document.querySelector(
        '#wizard button[name=op][value="' + candidate + ":" + id + '"]:not([disabled])');
      if (button) { button.focus(); return; }
    }
  });
})();
