/* charts.js — one shared Plotly look for opsdash, light and dark.
 *
 * Needs static/vendor/plotly.min.js loaded first (only on pages with charts):
 *   <script src="{% static 'vendor/plotly.min.js' %}" defer></script>
 *   <script src="{% static 'js/charts.js' %}" defer></script>
 *
 * Declarative use (what templates should do):
 *   <div class="chart" id="cost-chart" data-plotly="cost-data"></div>
 *   {{ figure|json_script:"cost-data" }}     -> <script type="application/json" id="cost-data">
 * Every [data-plotly] element is rendered on DOMContentLoaded and after each
 * htmx:afterSwap. The JSON is a figure: {"data": [...], "layout": {...}, "config": {...}}.
 *
 * Imperative use: opsdashPlot("element-id", figure).
 *
 * The theme goes into layout.template, so anything the figure sets explicitly
 * wins; a template the figure brings (plotly.py embeds one) is replaced, or dark
 * mode would break. Charts re-theme on `opsdash:themechange` (from opsdash.js).
 */
(function () {
  "use strict";

  var BASE_CONFIG = { displaylogo: false, responsive: true };

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function themeTemplate() {
    var text = cssVar("--text", "#1b1f24");
    var muted = cssVar("--text-muted", "#59626e");
    var grid = cssVar("--border", "#d6dae0");
    var line = cssVar("--border-strong", "#868e99");
    var font = cssVar("--font-sans", "system-ui, sans-serif");
    var axis = {
      gridcolor: grid,
      linecolor: line,
      zerolinecolor: grid,
      tickcolor: line,
      tickfont: { color: muted },
      title: { font: { color: muted, size: 12 } },
      automargin: true
    };
    var colorway = [];
    for (var i = 1; i <= 6; i++) colorway.push(cssVar("--chart-" + i, "#1d5fb4"));
    return {
      layout: {
        paper_bgcolor: "rgba(0,0,0,0)",
        plot_bgcolor: "rgba(0,0,0,0)",
        font: { family: font, size: 12, color: text },
        title: { font: { size: 14, color: text }, x: 0, xanchor: "left", pad: { l: 4 } },
        colorway: colorway,
        margin: { l: 48, r: 16, t: 32, b: 36, pad: 2 },
        xaxis: axis,
        yaxis: axis,
        legend: { bgcolor: "rgba(0,0,0,0)", font: { color: text } },
        hoverlabel: {
          bgcolor: cssVar("--surface", "#ffffff"),
          bordercolor: line,
          font: { family: font, color: text }
        },
        modebar: {
          bgcolor: "rgba(0,0,0,0)",
          color: muted,
          activecolor: cssVar("--accent", "#1d5fb4")
        }
      }
    };
  }

  function clone(value) {
    return value == null ? value : JSON.parse(JSON.stringify(value));
  }

  // plotly.js 3 dropped plain-string titles; accept them anyway.
  function normaliseTitles(layout) {
    if (typeof layout.title === "string") layout.title = { text: layout.title };
    Object.keys(layout).forEach(function (key) {
      var axis = layout[key];
      if (/^[xy]axis\d*$/.test(key) && axis && typeof axis.title === "string") {
        axis.title = { text: axis.title };
      }
    });
    return layout;
  }

  function plotlyReady() {
    if (window.Plotly) return true;
    console.warn("opsdash charts: Plotly is not loaded; include static/vendor/plotly.min.js before charts.js");
    return false;
  }

  function showError(el, message) {
    el.textContent = message;
    el.classList.add("empty");
  }

  /**
   * Render `figure` ({data, layout, config}) into the element with id `elementId`
   * (an Element is accepted too). Returns Plotly's promise, or undefined.
   */
  function opsdashPlot(elementId, figure) {
    var el = typeof elementId === "string" ? document.getElementById(elementId) : elementId;
    if (!el) {
      console.warn("opsdash charts: no element", elementId);
      return undefined;
    }
    if (!plotlyReady()) return undefined;
    figure = figure || {};
    var layout = normaliseTitles(clone(figure.layout) || {});
    layout.template = themeTemplate();
    var config = Object.assign({}, figure.config || {}, BASE_CONFIG);
    el._opsdashFigure = figure;
    return window.Plotly.newPlot(el, clone(figure.data) || [], layout, config);
  }

  function readFigure(el) {
    var sourceId = el.getAttribute("data-plotly");
    var source = sourceId ? document.getElementById(sourceId) : el;
    if (!source) throw new Error("no element #" + sourceId + " with the chart data");
    return { source: source, figure: JSON.parse(source.textContent) };
  }

  // Render every [data-plotly] chart under `scope` that is new, or whose data
  // <script> was replaced (htmx may swap only the data).
  function renderAll(scope) {
    var charts = (scope || document).querySelectorAll("[data-plotly]");
    if (!charts.length || !plotlyReady()) return;
    Array.prototype.forEach.call(charts, function (el) {
      var read;
      try {
        read = readFigure(el);
      } catch (err) {
        console.error("opsdash charts:", err);
        showError(el, "Chart data could not be read.");
        return;
      }
      if (el._opsdashSource === read.source) return;
      el._opsdashSource = read.source;
      opsdashPlot(el, read.figure);
    });
  }

  function rethemeAll() {
    if (!window.Plotly) return;
    var template = themeTemplate();
    Array.prototype.forEach.call(document.querySelectorAll(".js-plotly-plot"), function (el) {
      // relayout keeps the user's current zoom/pan and hidden traces.
      if (el._opsdashFigure) window.Plotly.relayout(el, { template: template });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { renderAll(document); });
  } else {
    renderAll(document);
  }
  document.addEventListener("htmx:afterSwap", function () { renderAll(document); });
  // Free Plotly's resize listeners for charts htmx is about to remove.
  document.addEventListener("htmx:beforeCleanupElement", function (event) {
    var el = event.target;
    if (el && el._opsdashFigure && window.Plotly) window.Plotly.purge(el);
  });
  document.addEventListener("opsdash:themechange", rethemeAll);

  window.opsdashPlot = opsdashPlot;
  window.opsdashRenderCharts = renderAll;
})();
