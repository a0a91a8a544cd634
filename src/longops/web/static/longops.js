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
  // Toasts leave after a while; the inbox keeps them.
  var TOAST_MS = 30000;
  document.addEventListener("htmx:sseMessage", function () {
    var toasts = document.querySelectorAll("#toasts .toast:not([data-timed])");
    toasts.forEach(function (toast) {
      toast.setAttribute("data-timed", "1");
      window.setTimeout(function () { toast.remove(); }, TOAST_MS);
    });
  });
})();
