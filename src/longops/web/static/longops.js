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
  // Toasts fade out after ~6 s (the inbox keeps them), stack in one corner, and never sit
  // on a control: when one would cover a button, link or field, the stack moves to
  // another corner (bottom right, bottom left, top right, top left), the first that is free.
  var TOAST_MS = 6000;
  var CORNERS = ["corner-br", "corner-bl", "corner-tr", "corner-tl"];
  function overlaps(a, b) {
    return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  }
  function covers(box) {
    var toasts = box.querySelectorAll(".toast");
    if (!toasts.length) { return false; }
    var controls = document.querySelectorAll("main button, main a, main input, main select, main textarea, header button, header a");
    for (var i = 0; i < toasts.length; i++) {
      var t = toasts[i].getBoundingClientRect();
      for (var j = 0; j < controls.length; j++) {
        var c = controls[j].getBoundingClientRect();
        if (c.width && c.height && overlaps(t, c)) { return true; }
      }
    }
    return false;
  }
  function tryCorners(box) {
    for (var i = 0; i < CORNERS.length; i++) {
      CORNERS.forEach(function (c) { box.classList.remove(c); });
      box.classList.add(CORNERS[i]);
      if (!covers(box)) { return true; }
    }
    return false;
  }
  function placeToasts() {
    var box = document.getElementById("toasts");
    if (!box || !box.querySelector(".toast")) { return; }
    box.classList.remove("compact", "waiting");
    if (tryCorners(box)) { return; }
    // Every corner covers a control: narrower toasts, then none shown until the page
    // scrolls to room for them (the inbox and the unread count keep the news).
    box.classList.add("compact");
    if (tryCorners(box)) { return; }
    box.classList.add("waiting");
  }
  document.addEventListener("htmx:sseMessage", function () {
    var toasts = document.querySelectorAll("#toasts .toast:not([data-timed])");
    toasts.forEach(function (toast) {
      toast.setAttribute("data-timed", "1");
      window.setTimeout(function () { toast.classList.add("leaving"); }, TOAST_MS - 600);
      window.setTimeout(function () { toast.remove(); }, TOAST_MS);
    });
    placeToasts();
  });
  window.addEventListener("scroll", placeToasts, { passive: true });
  window.addEventListener("resize", placeToasts);
})();
