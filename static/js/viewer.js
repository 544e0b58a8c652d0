/* The study viewer: step through images and frames, window presets, zoom.
   Frame URLs come from data-frames on each instance (built by the server);
   the window is added as a query parameter (?preset=lung). No inline code. */
(function () {
  "use strict";

  function setup(root) {
    var stage = root.querySelector("[data-stage]");
    var message = root.querySelector("[data-message]");
    var messageLink = root.querySelector("[data-show-message]");

    if (messageLink && message && messageLink.getAttribute("href") === "#viewer-message") {
      messageLink.addEventListener("click", function (event) {
        event.preventDefault();
        var open = message.classList.toggle("is-collapsed") === false;
        if (stage) stage.hidden = open;
        messageLink.classList.toggle("is-active", open);
      });
    }
    if (!stage) return;

    var canvas = stage.querySelector("[data-canvas]");
    var image = stage.querySelector("[data-image]");
    var position = stage.querySelector("[data-position]");
    var instances = Array.prototype.map.call(
      stage.querySelectorAll("[data-instances] li"),
      function (li) { return JSON.parse(li.getAttribute("data-frames")); }
    );
    if (!instances.length) return;

    var state = { i: 0, f: 0, preset: "" };
    var labels = {
      image: canvas.getAttribute("data-label-image") || "Image",
      frame: canvas.getAttribute("data-label-frame") || "Frame",
      of: canvas.getAttribute("data-label-of") || "of"
    };

    function urlFor(i, f) {
      var url = new URL(instances[i][f], window.location.href);
      if (state.preset) url.searchParams.set("preset", state.preset);
      else url.searchParams.delete("preset");
      return url.pathname + url.search;
    }

    function prefetch(i, f) {
      if (i < 0 || i >= instances.length) return;
      if (f < 0 || f >= instances[i].length) return;
      var img = new Image();
      img.src = urlFor(i, f);
    }

    function neighbour(step) {
      var i = state.i, f = state.f + step;
      if (f >= instances[i].length) {
        if (i + 1 >= instances.length) return null;
        return { i: i + 1, f: 0 };
      }
      if (f < 0) {
        if (i === 0) return null;
        return { i: i - 1, f: instances[i - 1].length - 1 };
      }
      return { i: i, f: f };
    }

    function show() {
      image.src = urlFor(state.i, state.f);
      var text = labels.image + " " + (state.i + 1) + " " + labels.of + " " + instances.length;
      if (instances[state.i].length > 1) {
        text += " · " + labels.frame + " " + (state.f + 1) + " " + labels.of + " " +
          instances[state.i].length;
      }
      position.textContent = text;
      var next = neighbour(1);
      if (next) prefetch(next.i, next.f);
      var previous = neighbour(-1);
      if (previous) prefetch(previous.i, previous.f);
    }

    function step(delta) {
      var target = neighbour(delta);
      if (!target) return;
      state.i = target.i;
      state.f = target.f;
      show();
    }

    function stepInstance(delta) {
      var i = Math.min(Math.max(state.i + delta, 0), instances.length - 1);
      if (i === state.i) return;
      state.i = i;
      state.f = 0;
      show();
    }

    function stepFrame(delta) {
      var f = state.f + delta;
      if (f < 0 || f >= instances[state.i].length) return step(delta);
      state.f = f;
      show();
    }

    function press(group, button) {
      group.forEach(function (b) { b.setAttribute("aria-pressed", String(b === button)); });
    }

    stage.querySelectorAll("[data-action]").forEach(function (button) {
      button.addEventListener("click", function () {
        var action = button.getAttribute("data-action");
        if (action === "prev-instance") stepInstance(-1);
        else if (action === "next-instance") stepInstance(1);
        else if (action === "prev-frame") stepFrame(-1);
        else if (action === "next-frame") stepFrame(1);
      });
    });

    var windows = Array.prototype.slice.call(stage.querySelectorAll("[data-window]"));
    windows.forEach(function (button) {
      button.addEventListener("click", function () {
        state.preset = button.getAttribute("data-window");
        press(windows, button);
        show();
      });
    });

    var zooms = Array.prototype.slice.call(stage.querySelectorAll("[data-zoom]"));
    zooms.forEach(function (button) {
      button.addEventListener("click", function () {
        var actual = button.getAttribute("data-zoom") === "actual";
        canvas.classList.toggle("is-fit", !actual);
        canvas.classList.toggle("is-actual", actual);
        press(zooms, button);
      });
    });

    var wheelLock = 0;
    canvas.addEventListener("wheel", function (event) {
      event.preventDefault();
      var now = Date.now();
      if (now - wheelLock < 40) return;  // one step per notch, not per pixel
      wheelLock = now;
      step(event.deltaY > 0 ? 1 : -1);
    }, { passive: false });

    root.addEventListener("keydown", function (event) {
      var tag = (event.target.tagName || "").toLowerCase();
      if (tag === "textarea" || tag === "input" || tag === "select") return;
      var handled = true;
      switch (event.key) {
        case "ArrowDown": step(1); break;
        case "ArrowUp": step(-1); break;
        case "ArrowRight": stepFrame(1); break;
        case "ArrowLeft": stepFrame(-1); break;
        case "PageDown": stepInstance(1); break;
        case "PageUp": stepInstance(-1); break;
        case "Home": state.i = 0; state.f = 0; show(); break;
        case "End": state.i = instances.length - 1; state.f = 0; show(); break;
        default: handled = false;
      }
      if (handled) event.preventDefault();
    });

    show();
  }

  function init() {
    document.querySelectorAll("[data-viewer]").forEach(setup);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
