/* queue.js — the approval queue as a mail inbox, and the keys on the action page.
 *
 * The list (#queue-list) is re-rendered by htmx polling; the selection lives here (by action
 * id), so a refresh keeps it, and keeps the list's focus. The right pane (#queue-detail)
 * shows the selected action's provenance, loaded with htmx.
 *
 * Keys (ignored while typing in a text box, except Esc):
 *   j / ArrowDown, k / ArrowUp  move        Enter / o  open on the right
 *   a  focus Approve (Enter confirms)       c  comment box of Approve
 *   r  reason box of Reject                 ?  help       Esc  leave a box / close help
 */
(function () {
  "use strict";

  var selectedId = null;
  var loadTimer = null;

  function queueList() { return document.getElementById("queue-list"); }
  function pane() { return document.getElementById("queue-detail"); }
  function rows() {
    var list = queueList();
    return list ? Array.prototype.slice.call(list.querySelectorAll(".queue-row")) : [];
  }
  function rowFor(id) {
    return rows().filter(function (r) { return r.dataset.actionId === id; })[0] || null;
  }

  // The provenance the keys act on: the pane's in the queue, the page's on an action page.
  function currentProvenance() {
    var p = pane();
    return (p || document).querySelector(".provenance");
  }

  function mark(row) {
    rows().forEach(function (r) {
      var on = r === row;
      r.classList.toggle("selected", on);
      r.setAttribute("aria-selected", on ? "true" : "false");
    });
    var box = queueList() && queueList().querySelector("[role=listbox]");
    if (box) {
      if (row) box.setAttribute("aria-activedescendant", row.id);
      else box.removeAttribute("aria-activedescendant");
    }
    if (row) row.scrollIntoView({ block: "nearest" });
  }

  function load(row) {
    if (!row || !pane() || !window.htmx) return;
    window.clearTimeout(loadTimer);
    pane().dataset.loading = row.dataset.actionId;
    window.htmx.ajax("GET", row.dataset.href, { target: "#queue-detail", swap: "innerHTML" });
  }

  function select(row, how) {
    if (!row) return;
    selectedId = row.dataset.actionId;
    mark(row);
    window.clearTimeout(loadTimer);
    if (how === "now") load(row);
    else if (how === "soon") loadTimer = window.setTimeout(function () { load(row); }, 180);
  }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var index = all.indexOf(rowFor(selectedId));
    var next = index < 0 ? 0 : Math.min(Math.max(index + step, 0), all.length - 1);
    if (next !== index) select(all[next], "soon");
  }

  function focusIn(selector) {
    var root = currentProvenance();
    var el = root && root.querySelector(selector);
    if (!el) {
      flash(root ? "This action is not waiting for your decision." : "Select an action first (j / k).");
      return;
    }
    el.focus();
  }

  function flash(text) {
    var box = document.getElementById("queue-flash");
    if (!box) {
      box = document.createElement("div");
      box.id = "queue-flash";
      box.className = "queue-flash";
      box.setAttribute("role", "status");
      document.body.appendChild(box);
    }
    box.textContent = text;
    box.hidden = false;
    window.clearTimeout(box._timer);
    box._timer = window.setTimeout(function () { box.hidden = true; }, 2500);
  }

  function help(show) {
    var box = document.getElementById("keys-help");
    if (!box) return;
    box.hidden = show === undefined ? !box.hidden : !show;
    if (!box.hidden) box.querySelector("[data-close-help]").focus();
  }

  function typing(target) {
    if (!target || !target.closest) return false;
    return !!target.closest("input, textarea, select, [contenteditable=''], [contenteditable=true]");
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var key = event.key;
    var helpBox = document.getElementById("keys-help");
    if (helpBox && !helpBox.hidden) {
      if (key === "Escape" || key === "?") { event.preventDefault(); help(false); }
      return;
    }
    if (typing(event.target)) {
      if (key === "Escape") {
        event.target.blur();
        var box = queueList() && queueList().querySelector("[role=listbox]");
        if (box) box.focus();
      }
      return;
    }
    // Enter on a focused button or link keeps its usual meaning (confirms Approve).
    if (key === "Enter" && event.target.closest && event.target.closest("button, a, summary")) return;
    if (!document.querySelector("[data-queue], .provenance")) return;
    switch (key) {
      case "j": case "ArrowDown": move(1); break;
      case "k": case "ArrowUp": move(-1); break;
      case "Enter": case "o":
        if (!rowFor(selectedId)) return;
        select(rowFor(selectedId), "now");
        break;
      case "a": focusIn(".decide-approve"); break;
      case "c": focusIn(".decide-comment"); break;
      case "r": focusIn(".decide-reason"); break;
      case "?": help(); break;
      case "Escape":
        if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
        break;
      default: return;
    }
    event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-close-help]")) { help(false); return; }
    var row = event.target.closest && event.target.closest(".queue-row");
    if (!row || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault(); // the title link is for a new tab; a plain click opens on the right
    select(row, "now");
  });

  // Keep the selection (and the list's focus) across the polling swaps.
  var hadFocus = false;
  var lastIndex = 0;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "queue-list") {
      hadFocus = target.contains(document.activeElement);
      lastIndex = Math.max(rows().indexOf(rowFor(selectedId)), 0);
    }
    // A refused decision (409) or a bad form (400) comes back as the pane with the message.
    var status = event.detail.xhr.status;
    if ((status === 400 || status === 409) && target && target.closest && target.closest(".provenance, #queue-detail")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // htmx:load fires on the new list itself: an outerHTML swap detaches the old one, whose
  // afterSwap event no longer bubbles up to the document.
  document.addEventListener("htmx:load", function (event) {
    var list = queueList();
    if (!list || event.detail.elt !== list) return;
    var row = rowFor(selectedId);
    if (!row) {
      // The selected action left the queue (decided): select the one now in its place,
      // but leave the pane alone so its outcome stays readable.
      var all = rows();
      row = all[Math.min(lastIndex, all.length - 1)] || null;
      if (row) selectedId = row.dataset.actionId;
    }
    mark(row);
    if (hadFocus) {
      var box = list.querySelector("[role=listbox]");
      if (box) box.focus({ preventScroll: true });
    }
  });

  // Filter selects: leave empty values out of the request and the pushed URL.
  document.addEventListener("htmx:configRequest", function (event) {
    if (!event.detail.elt.closest || !event.detail.elt.closest("[data-drop-empty]")) return;
    var params = event.detail.parameters;
    var names = [];
    if (params.forEach) params.forEach(function (_v, name) { names.push(name); });
    else names = Object.keys(params);
    names.forEach(function (name) {
      var value = params.get ? params.get(name) : params[name];
      if (value === "" || value === null) {
        if (params.delete) params.delete(name); else delete params[name];
      }
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    var first = rows()[0];
    if (first) select(first, "now");
  });
})();
