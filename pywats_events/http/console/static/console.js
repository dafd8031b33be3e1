// pyWATS events console: live fragments over server-sent events, select-all boxes, purge confirmation.
// No inline script anywhere (the pages send a Content-Security-Policy of 'self').
(function () {
  "use strict";

  function live() {
    var targets = document.querySelectorAll("[data-live]");
    if (!targets.length || !window.EventSource) { return; }
    var source = new EventSource("/console/stream");
    source.addEventListener("snapshot", function (msg) {
      var fragments = JSON.parse(msg.data);
      targets.forEach(function (el) {
        var html = fragments[el.getAttribute("data-live")];
        if (html !== undefined) { el.innerHTML = html; }
      });
      document.body.setAttribute("data-live-at", String(Date.now()));
    });
  }

  function selectAll() {
    document.querySelectorAll("[data-select-all]").forEach(function (box) {
      box.addEventListener("change", function () {
        var form = box.closest("form");
        form.querySelectorAll("input[name=id]").forEach(function (b) { b.checked = box.checked; });
      });
    });
  }

  function confirmPurge() {
    document.querySelectorAll("button.danger").forEach(function (button) {
      button.addEventListener("click", function (ev) {
        var form = button.closest("form");
        var box = form.querySelector("input[name=confirm]");
        if (!box || !box.checked) {
          ev.preventDefault();
          window.alert("Tick 'yes, delete for good' first: purging cannot be undone.");
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { live(); selectAll(); confirmPurge(); });
})();
