// The SMS code page: count the resend cool-down down on the button.
(function () {
  "use strict";
  var button = document.getElementById("resend-button");
  if (!button) return;
  var left = parseInt(button.getAttribute("data-wait-seconds"), 10) || 0;
  var label = button.getAttribute("data-label");
  var waitLabel = button.getAttribute("data-wait-label");
  var note = document.getElementById("resend-wait");
  if (note) note.hidden = true;

  function tick() {
    if (left <= 0) {
      button.disabled = false;
      button.textContent = label;
      return;
    }
    button.disabled = true;
    button.textContent = waitLabel.replace("%s", String(left));
    left -= 1;
    window.setTimeout(tick, 1000);
  }
  tick();
})();
