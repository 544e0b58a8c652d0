// The overview's "Share studies" button: explains itself until a study is checked.
// Progressive: without this script the button simply submits, and the share
// wizard refuses an empty selection on the server.
(function () {
  "use strict";

  var form = document.getElementById("share-form");
  var button = document.getElementById("share-button");
  var hint = document.getElementById("share-hint");
  if (!form || !button || !hint) return;
  var selectAll = document.getElementById("select-all");
  var boxes = Array.prototype.slice.call(form.querySelectorAll("input.study-select"));
  var messages = {
    none: form.getAttribute("data-hint-none") || "Select one or more studies to share.",
    one: form.getAttribute("data-hint-one") || "1 study selected.",
    many: form.getAttribute("data-hint-many") || "%s studies selected.",
  };

  function checkedCount() {
    return boxes.filter(function (box) { return box.checked; }).length;
  }

  function update() {
    var count = checkedCount();
    button.setAttribute("aria-disabled", count === 0 ? "true" : "false");
    button.classList.toggle("is-disabled", count === 0);
    if (count === 0) hint.textContent = messages.none;
    else if (count === 1) hint.textContent = messages.one;
    else hint.textContent = messages.many.replace("%s", String(count));
    hint.hidden = false;
    if (selectAll) {
      selectAll.checked = count > 0 && count === boxes.length;
      selectAll.indeterminate = count > 0 && count < boxes.length;
    }
    boxes.forEach(function (box) {
      var row = box.closest("tr");
      if (row) row.classList.toggle("is-selected", box.checked);
    });
  }

  form.addEventListener("change", function (event) {
    if (event.target === selectAll) {
      boxes.forEach(function (box) { box.checked = selectAll.checked; });
    }
    update();
  });

  form.addEventListener("submit", function (event) {
    if (checkedCount() === 0) {
      event.preventDefault();
      hint.classList.add("is-attention");
      if (boxes.length) boxes[0].focus();
    }
  });

  if (selectAll && boxes.length) selectAll.hidden = false;
  update();
})();
