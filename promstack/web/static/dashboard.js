/* PromStack dashboard: sortable and filterable tables, expandable cases, uPlot charts, and the
   live run view. Plain browser JavaScript, no build step; data comes from the page itself. */
(function () {
  "use strict";

  // ---- tables: click a header to sort, type to filter, click a case to open it ---------------

  function cellValue(row, index) {
    const cell = row.children[index];
    if (!cell) return "";
    const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
    const num = Number(raw.replace(/[$,%]/g, ""));
    return raw !== "" && !Number.isNaN(num) ? num : raw.toLowerCase();
  }

  function pairs(tbody) {
    // A case row and the detail row right after it move together.
    const out = [];
    for (const row of Array.from(tbody.rows)) {
      if (row.classList.contains("detail") && out.length) out[out.length - 1].push(row);
      else out.push([row]);
    }
    return out;
  }

  function makeSortable(table) {
    const headers = Array.from(table.tHead.rows[0].cells);
    headers.forEach(function (th, index) {
      if (th.dataset.sort === "none") return;
      th.addEventListener("click", function () {
        const ascending = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const tbody = table.tBodies[0];
        const groups = pairs(tbody);
        groups.sort(function (a, b) {
          const x = cellValue(a[0], index), y = cellValue(b[0], index);
          const order = x < y ? -1 : x > y ? 1 : 0;
          return ascending ? order : -order;
        });
        groups.forEach(function (g) { g.forEach(function (row) { tbody.appendChild(row); }); });
      });
    });
  }

  function makeFilterable(input) {
    const table = document.querySelector("table.cases");
    const count = document.getElementById("case-count");
    if (!table) return;
    input.addEventListener("input", function () {
      const needle = input.value.trim().toLowerCase();
      let shown = 0;
      pairs(table.tBodies[0]).forEach(function (g) {
        const text = g.map(function (r) { return r.textContent; }).join(" ").toLowerCase();
        const match = !needle || text.indexOf(needle) !== -1;
        g[0].hidden = !match;
        if (g[1] && !match) g[1].hidden = true;
        if (match) shown += 1;
      });
      if (count) count.textContent = shown + " shown";
    });
  }

  function makeExpandable(table) {
    table.addEventListener("click", function (event) {
      if (event.target.closest("a, button, input, form")) return;
      const row = event.target.closest("tr.case");
      if (!row) return;
      const detail = table.querySelector('tr.detail[data-detail="' + row.dataset.case + '"]');
      if (!detail) return;
      detail.hidden = !detail.hidden;
      row.classList.toggle("open", !detail.hidden);
    });
    table.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && event.target.matches("tr.case")) event.target.click();
    });
  }

  // ---- charts (uPlot) ---------------------------------------------------------------------------

  const charts = {};
  window.promstackCharts = charts;

  function constant(xs, value) { return xs.map(function () { return value; }); }

  function chart(id, xs, series, ys, opts) {
    const el = document.getElementById(id);
    if (!el || typeof uPlot === "undefined") return;
    const width = Math.max(320, el.clientWidth - 16);
    const options = Object.assign({
      width: width, height: 220,
      scales: { x: { time: true } },
      series: [{}].concat(series),
      axes: [{}, { size: 60 }],
      legend: { live: true },
    }, opts || {});
    charts[id.replace("chart-", "")] = new uPlot(options, [xs].concat(ys), el);
  }

  function drawCharts() {
    const node = document.getElementById("series-data");
    if (!node) return;
    const data = JSON.parse(node.textContent);
    const s = data.series, t = data.thresholds, xs = s.t;
    const bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined;
    chart("chart-requests", xs, [{ label: "requests", stroke: "#3b5bdb", fill: "rgba(59,91,219,.35)", paths: bars }], [s.requests]);
    // Hours without calls have no latency or error rate: the lines bridge them (spanGaps).
    const latency = [{ label: "p50 ms", stroke: "#3b5bdb", width: 2, spanGaps: true },
      { label: "p95 ms", stroke: "#e67700", width: 2, spanGaps: true }];
    const latencyData = [s.p50, s.p95];
    if (t.latency !== null && t.latency !== undefined) {
      latency.push({ label: "p95 alert", stroke: "#c92a2a", dash: [6, 4], width: 1.5, points: { show: false } });
      latencyData.push(constant(xs, t.latency));
    }
    chart("chart-latency", xs, latency, latencyData);
    const errors = [{ label: "error rate %", stroke: "#c92a2a", width: 2, spanGaps: true }];
    const errorData = [s.error_rate.map(function (v) { return v === null ? null : 100 * v; })];
    if (t.error_rate !== null && t.error_rate !== undefined) {
      errors.push({ label: "alert %", stroke: "#862e9c", dash: [6, 4], width: 1.5, points: { show: false } });
      errorData.push(constant(xs, 100 * t.error_rate));
    }
    chart("chart-errors", xs, errors, errorData);
    chart("chart-tokens", xs, [
      { label: "input", stroke: "#2b8a3e", fill: "rgba(43,138,62,.15)" },
      { label: "output", stroke: "#ae3ec9", fill: "rgba(174,62,201,.12)" },
    ], [s.input_tokens, s.output_tokens]);
    const usd = function (u, v) { return v === null ? "–" : "$" + v.toFixed(4); };
    chart("chart-cost", xs, [
      { label: "own", stroke: "#d9480f", fill: "rgba(217,72,15,.15)", value: usd },
      { label: "evaluation", stroke: "#1971c2", fill: "rgba(25,113,194,.12)", value: usd },
    ], [s.cost, s.evaluation_cost || s.cost.map(function () { return 0; })], {
      axes: [{}, { size: 70, values: function (u, vals) {
        return vals.map(function (v) { return "$" + (v < 0.01 ? v.toFixed(4) : v.toFixed(2)); }); } }],
    });
    document.body.dataset.charts = "ready";
  }

  // ---- live run -----------------------------------------------------------------------------------

  function money(v) { return v === null || v === undefined ? "–" : "$" + Number(v).toFixed(4); }

  function followRun(box) {
    const url = "/runs/" + encodeURIComponent(box.dataset.run) + "/live.json";
    const set = function (id, text) { const el = document.getElementById(id); if (el) el.textContent = text; };
    function tick() {
      fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (r) { return r.json(); })
        .then(function (d) {
          if (d.error) { set("live-status", d.error); return; }
          set("live-status", d.status);
          document.getElementById("live-status").className = "status status-" + d.status;
          set("live-done", d.done); set("live-total", d.total); set("live-passed", d.passed);
          set("live-failed", d.failed); set("live-errors", d.errors); set("live-cost", money(d.cost_usd));
          document.getElementById("live-bar").style.width = (d.total ? 100 * d.done / d.total : 0) + "%";
          const list = document.getElementById("live-failing");
          const items = d.failing.map(function (f) {
            const li = document.createElement("li");
            li.textContent = "#" + f.case + " " + f.model + ": " + (f.why || f.status);
            return li;
          });
          if (!items.length) {
            const none = document.createElement("li");
            none.className = "muted";
            none.textContent = "none yet";
            items.push(none);
          }
          list.replaceChildren.apply(list, items);
          box.dataset.status = d.status;
          box.dataset.updates = String(Number(box.dataset.updates || 0) + 1);
          if (d.status === "running") setTimeout(tick, 700);
          else document.getElementById("live-finished").hidden = false;
        })
        .catch(function () { setTimeout(tick, 2000); });
    }
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.sortable").forEach(makeSortable);
    document.querySelectorAll("table.cases").forEach(makeExpandable);
    const filter = document.getElementById("case-filter");
    if (filter) makeFilterable(filter);
    const pick = document.getElementById("arena-run");
    if (pick) pick.addEventListener("change", function () { window.location = "/arena/" + encodeURIComponent(pick.value); });
    const reveal = document.getElementById("reveal-models");
    if (reveal) reveal.addEventListener("change", function () {
      document.getElementById("matches-table").classList.toggle("blind", !reveal.checked);
    });
    drawCharts();
    const live = document.getElementById("live");
    if (live) followRun(live);
  });
})();
