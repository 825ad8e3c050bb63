/* opsdash.js — theme toggle + htmx CSRF. No framework.
 *
 * Load it in <head> WITHOUT defer/async so the stored theme is applied before
 * the first paint (no light flash on a dark page):
 *   <meta name="csrf-token" content="{{ csrf_token }}">
 *   <script src="{% static 'js/opsdash.js' %}"></script>
 *
 * Theme modes: "auto" (follow the OS; no data-theme attribute), "light", "dark".
 * A <button id="theme-toggle"> cycles auto -> light -> dark -> auto.
 * Every change (including an OS switch while in auto) fires
 * `opsdash:themechange` on document with detail {mode, theme}.
 */
(function () {
  "use strict";

  var STORAGE_KEY = "opsdash-theme";
  var MODES = ["auto", "light", "dark"];
  var LABELS = { auto: "Theme: auto", light: "Theme: light", dark: "Theme: dark" };
  var root = document.documentElement;
  var darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function storedMode() {
    try {
      var mode = window.localStorage.getItem(STORAGE_KEY);
      return MODES.indexOf(mode) >= 0 ? mode : "auto";
    } catch (e) {
      return "auto"; // storage blocked (privacy mode, sandboxed iframe)
    }
  }

  function effectiveTheme(mode) {
    if (mode === "light" || mode === "dark") return mode;
    return darkQuery && darkQuery.matches ? "dark" : "light";
  }

  function updateButton(mode) {
    var button = document.getElementById("theme-toggle");
    if (!button) return;
    var next = MODES[(MODES.indexOf(mode) + 1) % MODES.length];
    button.textContent = LABELS[mode];
    button.setAttribute("aria-label", LABELS[mode] + " (switch to " + next + ")");
    button.title = "Switch to " + next;
    button.dataset.themeMode = mode;
  }

  function applyMode(mode, notify) {
    if (mode === "auto") root.removeAttribute("data-theme");
    else root.setAttribute("data-theme", mode);
    updateButton(mode);
    if (notify) {
      document.dispatchEvent(new CustomEvent("opsdash:themechange", {
        detail: { mode: mode, theme: effectiveTheme(mode) }
      }));
    }
  }

  function setMode(mode) {
    try {
      if (mode === "auto") window.localStorage.removeItem(STORAGE_KEY);
      else window.localStorage.setItem(STORAGE_KEY, mode);
    } catch (e) { /* not persisted; still applied for this page */ }
    applyMode(mode, true);
  }

  // Runs right away, while <head> is parsed.
  applyMode(storedMode(), false);

  if (darkQuery) {
    var onSchemeChange = function () {
      if (storedMode() === "auto") applyMode("auto", true);
    };
    if (darkQuery.addEventListener) darkQuery.addEventListener("change", onSchemeChange);
    else if (darkQuery.addListener) darkQuery.addListener(onSchemeChange); // Safari < 14
  }

  // Another tab changed the theme.
  window.addEventListener("storage", function (event) {
    if (event.key === STORAGE_KEY) applyMode(storedMode(), true);
  });

  // Delegated, so it also works for a toggle that htmx swaps in later.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("#theme-toggle");
    if (!button) return;
    event.preventDefault();
    var current = storedMode();
    setMode(MODES[(MODES.indexOf(current) + 1) % MODES.length]);
  });

  document.addEventListener("DOMContentLoaded", function () {
    updateButton(storedMode());
  });

  // ---- htmx: send Django's CSRF token on every request ----------------------
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : null;
  }

  function isSameOrigin(path) {
    try {
      return new URL(path, window.location.href).origin === window.location.origin;
    } catch (e) {
      return false;
    }
  }

  // Listening on document works whether htmx.min.js is loaded before or after this file.
  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    // Never hand the token to another origin.
    if (token && isSameOrigin(event.detail.path)) {
      event.detail.headers["X-CSRFToken"] = token;
    }
  });

  // ---- htmx: say so when a refresh or a load fails ---------------------------
  // Polled lists and panes would otherwise go stale without a word. One notice at the top of
  // the page names what failed and when the data shown was last fresh; the next request that
  // succeeds removes it. (400 and 409 carry a form's own message and are not failures here.)
  var lastOk = new Date();

  function notice() {
    var box = document.getElementById("request-failed");
    if (!box) {
      var main = document.querySelector("main.content, main");
      if (!main) return null;
      box = document.createElement("div");
      box.id = "request-failed";
      box.className = "message error";
      box.setAttribute("role", "alert");
      main.insertBefore(box, main.firstChild);
    }
    return box;
  }

  function failed(what) {
    var box = notice();
    if (!box) return;
    // UTC, as every time on opsdash's pages.
    var since = lastOk.toISOString().slice(11, 16) + " UTC";
    box.textContent = what + " What you see is from " + since + "; opsdash keeps retrying " +
      "where the page refreshes itself, or reload the page.";
  }

  // A 400 carries the form's own message: targets marked data-swap-400 show it in place.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (event.detail.xhr.status === 400 && target && target.hasAttribute("data-swap-400")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    if (status === 400 || status === 409) return;
    failed("The server could not answer (HTTP " + status + ").");
  });
  document.addEventListener("htmx:sendError", function () {
    failed("The server cannot be reached.");
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (!event.detail.successful) return;
    lastOk = new Date();
    var box = document.getElementById("request-failed");
    if (box) box.remove();
  });

  window.opsdash = window.opsdash || {};
  window.opsdash.theme = {
    get: storedMode,
    set: function (mode) { if (MODES.indexOf(mode) >= 0) setMode(mode); },
    effective: function () { return effectiveTheme(storedMode()); }
  };
})();
