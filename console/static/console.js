// tertib console: keyboard review, confirmations, CSRF header for HTMX, language toggle that keeps the
// place. No inline script anywhere (CSP); nothing here reads markup or URLs out of page content.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Every HTMX request carries the session's CSRF token.
  document.addEventListener("htmx:configRequest", function (evt) {
    evt.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  // Forms with data-confirm ask first (bulk actions).
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    var message = form.getAttribute && form.getAttribute("data-confirm");
    if (message) {
      if (!window.confirm(message)) {
        evt.preventDefault();
        evt.stopImmediatePropagation();
        return;
      }
      var confirmField = form.querySelector('input[name="confirm"]');
      if (confirmField) { confirmField.value = "yes"; }
    }
  }, true);

  // "select all" checkbox in the bulk table.
  document.addEventListener("change", function (evt) {
    var box = evt.target;
    if (box.id === "select-all") {
      document.querySelectorAll('input[name="ids"]').forEach(function (b) { b.checked = box.checked; });
    }
  });

  // The language toggle returns to where the user is now (HTMX may have moved the review card on).
  document.addEventListener("click", function (evt) {
    var link = evt.target && evt.target.closest ? evt.target.closest("#lang-toggle") : null;
    if (!link) { return; }
    var target = new URL(link.getAttribute("href"), window.location.origin);
    target.searchParams.set("next", window.location.pathname + window.location.search);
    link.setAttribute("href", target.pathname + target.search);
  }, true);

  function submit(form) {
    if (!form) { return; }
    if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
  }

  function typing(target) {
    var tag = (target.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  // Review keys: j/k move, a approve, r reject (then 1-6 picks the reason, Enter submits), Esc cancels.
  document.addEventListener("keydown", function (evt) {
    var card = document.getElementById("card");
    if (!card || evt.ctrlKey || evt.metaKey || evt.altKey) { return; }
    var panel = document.getElementById("reject-panel");
    var panelOpen = panel && !panel.hidden;
    if (panelOpen) {
      var select = document.getElementById("reject-reason");
      if (evt.key === "Escape") { panel.hidden = true; evt.preventDefault(); return; }
      if (/^[1-9]$/.test(evt.key) && select) {
        var index = parseInt(evt.key, 10) - 1;
        if (index < select.options.length) {
          select.selectedIndex = index;
          evt.preventDefault();
          submit(document.getElementById("reject-form"));
        }
        return;
      }
      if (evt.key === "Enter") { evt.preventDefault(); submit(document.getElementById("reject-form")); }
      return;
    }
    if (typing(evt.target)) { return; }
    var link;
    switch (evt.key) {
      case "j":
        link = document.getElementById("next-link");
        if (link) { link.click(); evt.preventDefault(); }
        break;
      case "k":
        link = document.getElementById("prev-link");
        if (link) { link.click(); evt.preventDefault(); }
        break;
      case "a":
        if (document.getElementById("approve-form")) {
          evt.preventDefault();
          submit(document.getElementById("approve-form"));
        }
        break;
      case "r":
        if (panel) {
          evt.preventDefault();
          panel.hidden = false;
          var reason = document.getElementById("reject-reason");
          if (reason) { reason.focus(); }
        }
        break;
      default:
        break;
    }
  });

  // The reject button opens the reason panel instead of submitting straight away.
  document.addEventListener("click", function (evt) {
    var target = evt.target;
    if (target && target.id === "reject-open") {
      var panel = document.getElementById("reject-panel");
      if (panel) { panel.hidden = false; evt.preventDefault(); }
    }
  });
})();
