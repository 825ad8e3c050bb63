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

  window.opsdash = window.opsdash || {};
  window.opsdash.theme = {
    get: storedMode,
    set: function (mode) { if (MODES.indexOf(mode) >= 0) setMode(mode); },
    effective: function () { return effectiveTheme(storedMode()); }
  };
})();
