/* slo.js — the SLO list's filters (templates/slo/slo_list.html).
 *
 * The filter form is [data-drop-empty]: empty selects are left out of the htmx request and
 * so of the pushed URL (?team=payments, not ?team=payments&agent=&sli=). The same rule as
 * queue.js, which the SLO pages do not load. After a swap the "Clear filters" link follows
 * whether any filter is set.
 */
(function () {
  "use strict";

  document.addEventListener("htmx:configRequest", function (event) {
    var form = event.detail.elt.closest && event.detail.elt.closest("form.slo-filters[data-drop-empty]");
    if (!form) return;
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

  document.addEventListener("htmx:afterSwap", function (event) {
    if (!event.detail.target || event.detail.target.id !== "slo-tiles") return;
    var form = document.querySelector("form.slo-filters");
    var clear = document.getElementById("slo-clear-filters");
    if (!form || !clear) return;
    var active = Array.prototype.some.call(form.querySelectorAll("select"), function (s) { return s.value; });
    clear.hidden = !active;
  });
})();
