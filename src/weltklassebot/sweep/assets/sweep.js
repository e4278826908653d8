/* Weltklassebot sweep report: renders the embedded JSON with plotly.js.
   Everything is in this one file: no request leaves the page. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var app = document.getElementById("app");
  var rows = data.rows;
  var n = rows.status.length;
  var pending = [];
  var BLUE = "#1f5fa8", GREY = "#8d96a3", RED = "#c0392b", PALETTE = ["#1f5fa8", "#d35400",
    "#1e8449", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#b7950b", "#2c3e50", "#e84393"];
  var CONFIG = { displaylogo: false, responsive: true,
                 modeBarButtonsToRemove: ["lasso2d", "select2d", "autoScale2d"] };
  var FONT = { family: "system-ui, -apple-system, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif",
               size: 12, color: "#1d2330" };
  var LOWER = {};
  data.lower_is_better.forEach(function (k) { LOWER[k] = true; });
  var state = { stat: data.stat, x: data.params[0], y: data.params[1] };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; }
      else if (k === "cls") { node.className = attrs[k]; }
      else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) {
      if (c !== null && c !== undefined) {
        node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
      }
    });
    return node;
  }

  function num(v) {
    if (v === null || v === undefined) { return "–"; }
    var a = Math.abs(v);
    if (a !== 0 && (a < 0.001 || a >= 1e7)) { return Number(v).toExponential(3); }
    return Number(v).toLocaleString("en-US", { maximumFractionDigits: a >= 100 ? 2 : 6 });
  }

  function short(text) { return text ? String(text).slice(0, 12) : "–"; }

  function card(title, hint, body) {
    return el("section", { cls: "card" }, [el("h2", { text: title }),
      hint ? el("p", { cls: "hint", text: hint }) : null].concat(body));
  }

  function layout(extra) {
    var base = { font: FONT, margin: { l: 64, r: 18, t: 10, b: 48 }, height: 380,
                 paper_bgcolor: "#fff", plot_bgcolor: "#fff", hovermode: "closest" };
    Object.keys(extra || {}).forEach(function (k) { base[k] = extra[k]; });
    return base;
  }

  function plot(div, traces, lay) {
    pending.push(Plotly.react(div, traces, layout(lay), CONFIG));
  }

  function ok(i) { return rows.status[i] === "ok"; }
  function inSample(i) { return !rows.phase || rows.phase[i] !== "test"; }
  function value(key, i) {
    var col = rows[key];
    return col ? col[i] : null;
  }
  function better(a, b, key) { return LOWER[key] ? a < b : a > b; }

  function select(label, options, current, onChange) {
    var s = el("select", { "aria-label": label });
    options.forEach(function (o) {
      var opt = el("option", { value: o, text: o });
      if (o === current) { opt.selected = true; }
      s.appendChild(opt);
    });
    s.addEventListener("change", function () { onChange(s.value); });
    return el("label", {}, [label + " ", s]);
  }

  function paramKey(i) {
    return data.params.map(function (p) { return p + "=" + rows[p][i]; }).join(", ");
  }

  function groups(filter) {
    // Mean of the chosen statistic per parameter set, over seeds and snapshots.
    var by = {};
    var order = [];
    for (var i = 0; i < n; i++) {
      if (!ok(i) || !filter(i)) { continue; }
      var key = paramKey(i);
      if (!(key in by)) { by[key] = { key: key, first: i, values: [] }; order.push(key); }
      var v = value(state.stat, i);
      if (v !== null && v !== undefined && isFinite(v)) { by[key].values.push(v); }
    }
    return order.map(function (k) {
      var g = by[k];
      g.mean = g.values.length ? g.values.reduce(function (a, b) { return a + b; }, 0) /
        g.values.length : null;
      return g;
    });
  }

  function header() {
    var s = data.strategy;
    var top = el("header", { cls: "top" }, [
      el("div", {}, [el("h1", { text: data.title }),
        el("div", { cls: "sub", text: s.name + " " + s.version + " · " +
          data.grid.map(function (g) { return g.name + " ∈ {" + g.values.join(", ") + "}"; })
            .join(" × ") + (data.grid.length ? " × " : "") + "seeds " + data.seeds + " × " +
          data.snapshots.length + " snapshot" + (data.snapshots.length > 1 ? "s" : "") })]),
      el("div", { cls: "hash" }, ["sweep hash", el("br"), data.sweep_hash])]);
    app.appendChild(top);
    var c = data.counts;
    var kpis = el("div", { cls: "kpis" });
    [["cells", c.cells], ["ok", c.ok], ["failed", c.failed], ["resumed", c.resumed],
     ["fast path", c.fast_path], ["engine path", c.engine_path]].forEach(function (k) {
      kpis.appendChild(el("div", { cls: "kpi" }, [el("div", { cls: "label", text: k[0] }),
        el("div", { cls: "value" + (k[0] === "failed" && k[1] ? " neg" : ""),
                    text: Number(k[1]).toLocaleString("en-US") })]));
    });
    app.appendChild(kpis);
    if (data.montecarlo && data.montecarlo.notice) {
      app.appendChild(el("p", { cls: "notice", text: "Note: " + data.montecarlo.notice + "." }));
    }
  }

  var controls = el("div", { cls: "controls" });
  var heatDiv = el("div", { cls: "chart", id: "chart-heatmap" });
  var seedsDiv = el("div", { cls: "chart", id: "chart-seeds" });
  var seedsHint = el("p", { cls: "hint" });
  var topBody = el("div", { cls: "scroll" });

  function drawHeatmap() {
    if (!data.params.length) { return; }
    var xs = [], ys = [], xi = {}, yi = {};
    var single = data.params.length < 2 || state.x === state.y;
    function axisValues(p, list, index) {
      for (var i = 0; i < n; i++) {
        var v = rows[p][i];
        if (!(String(v) in index)) { index[String(v)] = true; list.push(v); }
      }
      list.sort(function (a, b) { return a < b ? -1 : a > b ? 1 : 0; });
      list.forEach(function (v, k) { index[String(v)] = k; });
    }
    axisValues(state.x, xs, xi);
    var sums, counts;
    if (single) {
      sums = xs.map(function () { return 0; });
      counts = xs.map(function () { return 0; });
      for (var i = 0; i < n; i++) {
        var v = value(state.stat, i);
        if (!ok(i) || !inSample(i) || v === null || !isFinite(v)) { continue; }
        sums[xi[String(rows[state.x][i])]] += v;
        counts[xi[String(rows[state.x][i])]] += 1;
      }
      plot(heatDiv, [{ type: "scatter", mode: "lines+markers", x: xs.map(String),
        y: sums.map(function (s, k) { return counts[k] ? s / counts[k] : null; }),
        line: { color: BLUE }, name: state.stat }],
        { xaxis: { title: { text: state.x }, type: "category" },
          yaxis: { title: { text: state.stat } } });
      return;
    }
    axisValues(state.y, ys, yi);
    sums = ys.map(function () { return xs.map(function () { return 0; }); });
    counts = ys.map(function () { return xs.map(function () { return 0; }); });
    for (var j = 0; j < n; j++) {
      var w = value(state.stat, j);
      if (!ok(j) || !inSample(j) || w === null || !isFinite(w)) { continue; }
      var r = yi[String(rows[state.y][j])], c = xi[String(rows[state.x][j])];
      sums[r][c] += w;
      counts[r][c] += 1;
    }
    var z = sums.map(function (row, r) {
      return row.map(function (s, c) { return counts[r][c] ? s / counts[r][c] : null; });
    });
    plot(heatDiv, [{ type: "heatmap", x: xs.map(String), y: ys.map(String), z: z,
      colorscale: "RdBu", reversescale: !LOWER[state.stat],
      hoverongaps: false, colorbar: { title: { text: state.stat } },
      hovertemplate: state.x + "=%{x}<br>" + state.y + "=%{y}<br>" + state.stat +
        "=%{z}<extra></extra>" }],
      { xaxis: { title: { text: state.x }, type: "category" },
        yaxis: { title: { text: state.y }, type: "category" }, height: 440 });
  }

  function drawSeeds() {
    var gs = groups(inSample);
    var best = null;
    gs.forEach(function (g) {
      if (g.mean !== null && (best === null || better(g.mean, best.mean, state.stat))) { best = g; }
    });
    var values = best && best.values.length > 1 ? best.values : [];
    var label;
    if (values.length > 1) {
      label = "Over the seeds of the best parameter set (" + (best.key || "no parameters") +
        "; " + values.length + " values).";
    } else {
      values = [];
      for (var i = 0; i < n; i++) {
        var v = value(state.stat, i);
        if (ok(i) && inSample(i) && v !== null && isFinite(v)) { values.push(v); }
      }
      label = "One seed per parameter set: over every cell (" + values.length + " values).";
    }
    seedsHint.textContent = label;
    plot(seedsDiv, [{ type: "histogram", x: values, marker: { color: BLUE },
      nbinsx: Math.min(60, Math.max(5, Math.round(Math.sqrt(values.length) * 2))),
      name: state.stat }],
      { xaxis: { title: { text: state.stat } }, yaxis: { title: { text: "cells" } },
        bargap: 0.04, height: 320 });
  }

  function drawTop() {
    var idx = [];
    for (var i = 0; i < n; i++) {
      var v = value(state.stat, i);
      if (ok(i) && v !== null && isFinite(v)) { idx.push(i); }
    }
    idx.sort(function (a, b) {
      var va = value(state.stat, a), vb = value(state.stat, b);
      if (va === vb) { return a - b; }
      return better(va, vb, state.stat) ? -1 : 1;
    });
    idx = idx.slice(0, 25);
    var cols = data.params.concat(["seed"]);
    if (rows.phase) { cols = cols.concat(["window", "phase"]); }
    var statCols = [state.stat].concat(["total_return", "sharpe", "max_drawdown", "trades"]
      .filter(function (k) { return k !== state.stat && rows[k]; }));
    var head = el("tr", {}, cols.map(function (c) { return el("th", { cls: "l", text: c }); })
      .concat(statCols.map(function (c) { return el("th", { text: c }); }))
      .concat([el("th", { cls: "l", text: "snapshot" }), el("th", { cls: "l", text: "equity hash" })]));
    var body = idx.map(function (i) {
      return el("tr", {}, cols.map(function (c) { return el("td", { cls: "l", text: String(rows[c][i]) }); })
        .concat(statCols.map(function (c) { return el("td", { text: num(value(c, i)) }); }))
        .concat([el("td", { cls: "l mono", text: short(rows.snapshot_sha256[i]) }),
                 el("td", { cls: "l mono", text: short(rows.equity_hash[i]) })]));
    });
    topBody.textContent = "";
    topBody.appendChild(el("table", { id: "top-cells" }, [el("thead", {}, [head]),
      el("tbody", {}, body)]));
  }

  function redraw() { drawHeatmap(); drawSeeds(); drawTop(); }

  function buildControls() {
    controls.appendChild(select("statistic", data.stat_keys, state.stat,
      function (v) { state.stat = v; redraw(); }));
    if (data.params.length >= 2) {
      controls.appendChild(select("x", data.params, state.x, function (v) { state.x = v; drawHeatmap(); }));
      controls.appendChild(select("y", data.params, state.y, function (v) { state.y = v; drawHeatmap(); }));
    }
  }

  function failedCard() {
    if (!data.failed.length) { return null; }
    var head = el("tr", {}, data.params.concat(["seed", "snapshot", "error"]).map(function (c) {
      return el("th", { cls: "l", text: c });
    }));
    var body = data.failed.map(function (f) {
      return el("tr", {}, data.params.map(function (p) { return el("td", { cls: "l", text: String(f[p]) }); })
        .concat([el("td", { cls: "l", text: String(f.seed) }),
                 el("td", { cls: "l mono", text: short(f.snapshot_sha256) }),
                 el("td", { cls: "err", text: f.error })]));
    });
    return card("Failed cells", data.counts.failed + " cell(s) failed; each is recorded with its " +
      "error and counted. The first 100 are listed.",
      [el("div", { cls: "scroll" }, [el("table", { id: "failed-cells" }, [el("thead", {}, [head]),
        el("tbody", {}, body)])])]);
  }

  function walkForward() {
    var wf = data.walkforward;
    if (!wf) { return; }
    var head = el("tr", {}, ["window", "train", "test", "winner", "in-sample " + wf.statistic,
      "out-of-sample " + wf.statistic, "gap"].map(function (c, k) {
        return el("th", { cls: k < 4 ? "l" : "", text: c });
      }));
    var body = wf.windows.map(function (w) {
      return el("tr", {}, [el("td", { cls: "l", text: String(w.window) }),
        el("td", { cls: "l", text: w.train_start.slice(0, 10) + " → " + w.train_end.slice(0, 10) }),
        el("td", { cls: "l", text: w.test_start.slice(0, 10) + " → " + w.test_end.slice(0, 10) }),
        el("td", { cls: "l", text: Object.keys(w.params).map(function (k) {
          return k + "=" + w.params[k]; }).join(", ") }),
        el("td", { text: num(w.in_sample) }), el("td", { text: num(w.out_of_sample) }),
        el("td", { cls: w.gap > 0 ? "neg" : "", text: num(w.gap) })]);
    });
    var summary = "Mean in-sample " + wf.statistic + " " + num(wf.in_sample_mean) +
      ", out-of-sample " + num(wf.out_of_sample_mean) + ", gap " + num(wf.gap_mean) + ".";
    var chart = el("div", { cls: "chart", id: "chart-stitched" });
    app.appendChild(card("Walk-forward: stitched out-of-sample equity",
      "Each test segment starts flat with the initial cash; segments are chained by their " +
      "returns, one curve per seed. " + summary, [chart]));
    app.appendChild(card("Walk-forward windows", "The winner of each window is the parameter " +
      "set with the best mean in-sample " + wf.statistic + " over the seeds.",
      [el("div", { cls: "scroll" }, [el("table", { id: "wf-windows" }, [el("thead", {}, [head]),
        el("tbody", {}, body)])])]));
    var traces = wf.curves.map(function (c, k) {
      return { type: "scatter", mode: "lines",
        x: c.x.map(function (ms) { return new Date(ms).toISOString(); }), y: c.y,
        name: "seed " + c.seed + (data.snapshots.length > 1 ? " · " + short(c.snapshot_sha256) : ""),
        line: { color: PALETTE[k % PALETTE.length], width: 1.4 } };
    });
    plot(chart, traces, { xaxis: { type: "date" }, yaxis: { title: { text: "equity" } } });
  }

  function monteCarlo() {
    var mc = data.montecarlo;
    if (!mc) { return; }
    mc.groups.forEach(function (g, k) {
      var qs = ["q05", "q25", "q50", "q75", "q95"];
      var head = el("tr", {}, [el("th", { cls: "l", text: "statistic" })].concat(
        ["n", "mean", "std", "min"].concat(qs).concat(["max"]).map(function (c) {
          return el("th", { text: c });
        })));
      var body = Object.keys(g.statistics).map(function (key) {
        var s = g.statistics[key];
        return el("tr", {}, [el("td", { cls: "l", text: key })].concat(
          [s.n, s.mean, s.std, s.min].concat(qs.map(function (q) { return s[q]; }))
            .concat([s.max]).map(function (v) { return el("td", { text: num(v) }); })));
      });
      var params = Object.keys(g.params).map(function (p) { return p + "=" + g.params[p]; })
        .join(", ") || "default parameters";
      app.appendChild(card("Monte Carlo: spread over " + g.seeds + " seeds (" + params + ", " +
        short(g.snapshot_sha256) + ")", g.distinct_equity_hashes + " distinct equity hash(es); " +
        "stochastic sources: " + (mc.stochastic.join(", ") || "none") + ".",
        [el("div", { cls: "wide" }, [el("table", { id: "mc-quantiles-" + k }, [
          el("thead", {}, [head]), el("tbody", {}, body)])])]));
    });
  }

  function identity() {
    var dl = el("dl", { cls: "facts" });
    function fact(k, v) { dl.appendChild(el("dt", { text: k })); dl.appendChild(el("dd", { text: v })); }
    fact("strategy", data.strategy.ref + " (" + data.strategy.name + " " + data.strategy.version +
      ", code " + short(data.strategy.code_hash) + ")");
    data.snapshots.forEach(function (s) {
      fact("snapshot", s.name + " · " + s.rows.toLocaleString("en-US") + " rows · " + s.sha256);
    });
    fact("seeds", data.seeds);
    fact("sweep hash", data.sweep_hash);
    fact("version", "weltklassebot " + data.package_version);
    app.appendChild(card("Identity", null, [dl]));
  }

  function main() {
    app.textContent = "";
    header();
    buildControls();
    if (data.params.length) {
      app.appendChild(card(data.params.length >= 2 ? "Heatmap" : "By parameter",
        "Mean of the statistic over seeds and snapshots" + (data.params.length > 2 ?
          " and the other parameters" : "") + (rows.phase ? " (in-sample cells)" : "") + ".",
        [controls, heatDiv]));
    } else {
      app.appendChild(card("Statistic", null, [controls]));
    }
    app.appendChild(card("Distribution over seeds", null, [seedsHint, seedsDiv]));
    app.appendChild(card("Top cells", "The 25 best cells by the chosen statistic.", [topBody]));
    walkForward();
    monteCarlo();
    var failed = failedCard();
    if (failed) { app.appendChild(failed); }
    identity();
    redraw();
    Promise.all(pending).then(function () { window.__reportReady = true; });
  }

  main();
}());
