// Small enhancements; every page works without them.
(function () {
  "use strict";
  // The company switcher goes at once when a company is chosen (its button stays for no-JS).
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit") && target.form) {
      target.form.submit();
    }
  });
  // New operation: choosing a task fills in its arguments (defaults, blanks for the
  // required ones), unless the user has typed something of their own.
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLSelectElement) || target.id !== "n-task") { return; }
    var args = document.getElementById("n-args");
    var chosen = target.selectedOptions[0];
    if (!(args instanceof HTMLTextAreaElement) || !chosen) { return; }
    var examples = Array.prototype.map.call(target.options, function (o) { return o.dataset.example || ""; });
    if (args.value.trim() === "" || examples.indexOf(args.value) !== -1) {
      args.value = chosen.dataset.example || "";
    }
  });
  // A Delete's Undo lasts a few seconds: past them the button says so instead of failing.
  var undo = document.getElementById("undo-form");
  if (undo) {
    var seconds = parseInt(undo.getAttribute("data-undo-seconds") || "0", 10);
    window.setTimeout(function () {
      var button = document.getElementById("undo");
      var left = undo.querySelector(".undo-left");
      if (button) { button.disabled = true; }
      if (left) { left.textContent = "(too late: Undo lasted " + seconds + " seconds)"; }
    }, Math.max(seconds - 2, 1) * 1000);
  }
  // An ETA's time left counts down between updates, and once passed says by how much it is
  // overdue (the same words as present.eta_relative): a frozen "in about 5.0 s" 20 s after
  // it told nothing. Each element counts from when it was drawn (no clock skew).
  var etaSeen = new WeakMap();
  function duration(seconds) {
    if (seconds < 0) { seconds = 0; }
    if (seconds < 10) { return seconds.toFixed(1) + " s"; }
    var whole = Math.round(seconds);
    var hours = Math.floor(whole / 3600);
    var minutes = Math.floor((whole % 3600) / 60);
    var secs = whole % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    if (hours) { return hours + " h " + two(minutes) + " min"; }
    if (minutes) { return minutes + " min " + two(secs) + " s"; }
    return secs + " s";
  }
  function tickEtas() {
    var now = Date.now();
    document.querySelectorAll("[data-eta-left]").forEach(function (el) {
      var drawn = etaSeen.get(el);
      if (drawn === undefined) { drawn = now; etaSeen.set(el, now); }
      var left = parseFloat(el.getAttribute("data-eta-left")) - (now - drawn) / 1000;
      if (isNaN(left)) { return; }
      var note = el.getAttribute("data-eta-note") || "";
      var text;
      if (left > 0) {
        text = "in about " + duration(left) + (note ? " (" + note + ")" : "");
      } else {
        text = "overdue by " + duration(-left) +
          (note === "from past runs" ? " (taking longer than usual)" : "");
      }
      if (el.textContent !== text) { el.textContent = text; }
    });
  }
  tickEtas();
  window.setInterval(tickEtas, 1000);
  document.addEventListener("htmx:afterSettle", tickEtas);
  // Toasts fade out after ~6 s (the inbox keeps them), stack in one place, and never sit
  // on a control: the stack goes to the first free spot of the screen, scanning from the
  // bottom right along the bottom edge, then upwards (narrower toasts, then the newest
  // alone, then as one line, where the full ones find no room). Where no spot is free at all (a screen full of controls), the stack
  // shows in the page's flow above the content instead of over it.
  var TOAST_MS = 6000;
  var STEP = 8;
  var MARGIN = 8;
  var GAP = 6;
  var CONTROLS = "main button, main a, main input, main select, main textarea, main summary, " +
    "main label, header button, header a, header select, header input";
  function overlaps(a, b) {
    return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  }
  function controlBoxes() {
    var out = [];
    document.querySelectorAll(CONTROLS).forEach(function (el) {
      if (el.closest("#toasts")) { return; }
      var r = el.getBoundingClientRect();
      if (r.width && r.height && r.bottom > 0 && r.top < window.innerHeight &&
          r.right > 0 && r.left < window.innerWidth) {
        // A little room around each, more than the toast's slide-in moves it.
        out.push({ left: r.left - GAP, top: r.top - GAP, right: r.right + GAP, bottom: r.bottom + GAP });
      }
    });
    return out;
  }
  function freeSpot(width, height, boxes) {
    var right = window.innerWidth - MARGIN - width;
    var bottom = window.innerHeight - MARGIN - height;
    for (var y = bottom; y >= MARGIN; y -= STEP) {
      for (var x = right; x >= MARGIN; x -= STEP) {
        var spot = { left: x, top: y, right: x + width, bottom: y + height };
        var hit = false;
        for (var i = 0; i < boxes.length && !hit; i++) { hit = overlaps(spot, boxes[i]); }
        if (!hit) { return spot; }
      }
    }
    return null;
  }
  function placeToasts() {
    var box = document.getElementById("toasts");
    if (!box) { return; }
    if (!box.querySelector(".toast")) { return; }
    box.classList.remove("compact", "newest", "line", "in-flow");
    box.style.width = "";
    if (box.parentElement !== document.body) { document.body.appendChild(box); }
    box.style.left = "0px";
    box.style.top = "0px";
    var boxes = controlBoxes();
    // Ever smaller until one fits: the stack, the stack compact, the newest toast alone
    // (the others wait their turn; the inbox keeps them all), then the newest as one
    // line as wide as a free band of the screen allows (a phone's list has such bands
    // between its rows' controls, where no corner is free).
    var line = window.innerWidth - 2 * MARGIN;
    var tries = [
      { classes: [] },
      { classes: ["compact"] },
      { classes: ["compact", "newest"] },
      { classes: ["line", "newest"], width: line },
      { classes: ["line", "newest"], width: Math.min(line, 256) },
      { classes: ["line", "newest"], width: Math.min(line, 160) }
    ];
    for (var k = 0; k < tries.length; k++) {
      box.classList.remove("compact", "newest", "line");
      tries[k].classes.forEach(function (c) { box.classList.add(c); });
      box.style.width = tries[k].width ? tries[k].width + "px" : "";
      var spot = freeSpot(box.offsetWidth, box.offsetHeight, boxes);
      if (spot) {
        box.style.left = spot.left + "px";
        box.style.top = spot.top + "px";
        return;
      }
    }
    box.classList.remove("compact", "newest", "line");
    box.style.width = "";
    box.classList.add("in-flow");
    box.style.left = "";
    box.style.top = "";
    var main = document.getElementById("main");
    if (main) { main.insertBefore(box, main.firstChild); }
  }
  var pending = false;
  function placeSoon() {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () { pending = false; placeToasts(); });
  }
  document.addEventListener("htmx:sseMessage", function () {
    var toasts = document.querySelectorAll("#toasts .toast:not([data-timed])");
    toasts.forEach(function (toast) {
      toast.setAttribute("data-timed", "1");
      window.setTimeout(function () { toast.classList.add("leaving"); }, TOAST_MS - 600);
      window.setTimeout(function () { toast.remove(); placeSoon(); }, TOAST_MS);
    });
    placeToasts();
  });
  // Toasts leaving, rows redrawn, a menu opened, the page scrolled: look again.
  document.addEventListener("htmx:afterSettle", placeSoon);
  document.addEventListener("toggle", placeSoon, true);
  document.addEventListener("transitionend", placeSoon);
  window.addEventListener("scroll", placeSoon, { passive: true });
  window.addEventListener("resize", placeSoon);
})();
