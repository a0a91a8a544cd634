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
