/* Weltklassebot run report and run comparison: renders the embedded JSON with plotly.js.
   Everything is in this one file: no request leaves the page. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var app = document.getElementById("app");
  var charts = [];
  var pending = [];
  var linked = [];
  var syncing = false;

  var BLUE = "#1f5fa8", GREY = "#8d96a3", GREEN = "#1e8449", RED = "#c0392b", AMBER = "#b7791f";
  var PALETTE = ["#1f5fa8", "#d35400", "#1e8449", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d",
                 "#b7950b", "#2c3e50", "#e84393"];
  var CONFIG = { displaylogo: false, responsive: true,
                 modeBarButtonsToRemove: ["lasso2d", "select2d", "autoScale2d"] };
  var FONT = { family: "system-ui, -apple-system, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif",
               size: 12, color: "#1d2330" };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") { node.textContent = attrs[k]; }
        else if (k === "cls") { node.className = attrs[k]; }
        else { node.setAttribute(k, attrs[k]); }
      });
    }
    (children || []).forEach(function (c) {
      if (c !== null && c !== undefined) {
        node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
      }
    });
    return node;
  }

  var fmt = {
    pct: function (v, d) {
      if (v === null || v === undefined) { return "–"; }
      if (v !== 0 && Math.abs(v) < 0.001) { return (v * 100).toPrecision(2) + " %"; }
      return (v * 100).toFixed(d === undefined ? 2 : d) + " %";
    },
    ratio: function (v) { return v === null || v === undefined ? "–" : v.toFixed(3); },
    times: function (v) { return v === null || v === undefined ? "–" : v.toFixed(2) + "×"; },
    int: function (v) { return v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US"); },
    num0: function (v) {
      return v === null || v === undefined ? "–" :
        Number(v).toLocaleString("en-US", { maximumFractionDigits: 1 });
    },
    money: function (v) {
      if (v === null || v === undefined) { return "–"; }
      var n = Number(v);
      var digits = Math.abs(n) >= 100 ? 2 : 6;
      return n.toLocaleString("en-US", { maximumFractionDigits: digits }) +
        (data.currency ? " " + data.currency : "");
    },
    duration: function (s) {
      if (s === null || s === undefined) { return "–"; }
      if (s === 0) { return "0"; }
      var d = s / 86400;
      if (d >= 2) { return d.toLocaleString("en-US", { maximumFractionDigits: 1 }) + " days"; }
      var h = s / 3600;
      if (h >= 1) { return h.toFixed(1) + " h"; }
      return (s / 60).toFixed(1) + " min";
    },
    date: function (ms) {
      if (ms === null || ms === undefined) { return "–"; }
      var iso = new Date(ms).toISOString();
      return iso.slice(0, 10) + " " + iso.slice(11, 16);
    }
  };

  var STAT_ROWS = [
    ["Total return", "total_return", "pct"], ["CAGR", "cagr", "pct"],
    ["Volatility (annualised)", "volatility_ann", "pct"], ["Sharpe", "sharpe", "ratio"],
    ["Sortino", "sortino", "ratio"], ["Max drawdown", "max_drawdown", "pct"],
    ["Longest drawdown", "max_drawdown_duration_s", "duration"], ["Calmar", "calmar", "ratio"],
    ["Closed trades", "trades", "int"], ["Win rate", "win_rate", "pct"],
    ["Profit factor", "profit_factor", "ratio"], ["Expectancy per trade", "expectancy", "money"],
    ["Average win", "avg_win", "money"], ["Average loss", "avg_loss", "money"],
    ["Exposure (mean gross / equity)", "exposure", "pct"], ["Turnover", "turnover", "times"],
    ["Fees", "fees", "money"], ["Periods per year", "periods_per_year", "num0"],
    ["Risk denials", "denials", "int"], ["Risk state changes", "risk_state_changes", "int"]
  ];

  function baseLayout(extra) {
    var layout = {
      font: FONT, paper_bgcolor: "#ffffff", plot_bgcolor: "#ffffff",
      margin: { l: 64, r: 18, t: 10, b: 36 },
      hovermode: "x unified",
      hoverlabel: { font: { size: 12 } },
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", bgcolor: "rgba(0,0,0,0)" },
      xaxis: { type: "date", gridcolor: "#eef1f5", linecolor: "#cfd6df", zeroline: false },
      yaxis: { gridcolor: "#eef1f5", linecolor: "#cfd6df", zeroline: false, automargin: true }
    };
    Object.keys(extra || {}).forEach(function (k) {
      if (typeof extra[k] === "object" && extra[k] !== null && !Array.isArray(extra[k]) &&
          typeof layout[k] === "object") {
        layout[k] = Object.assign({}, layout[k], extra[k]);
      } else {
        layout[k] = extra[k];
      }
    });
    return layout;
  }

  function plot(node, traces, layout, link, config) {
    var promise = Plotly.newPlot(node, traces, layout, Object.assign({}, CONFIG, config || {}));
    charts.push(node.id);
    pending.push(promise);
    if (link) {
      linked.push(node);
      promise.then(function () {
        node.on("plotly_relayout", function (ev) { syncRange(node, ev); });
      });
    }
    return promise;
  }

  function syncRange(source, ev) {
    if (syncing) { return; }
    var update = null;
    if (ev["xaxis.autorange"]) { update = { "xaxis.autorange": true }; }
    else if (ev["xaxis.range[0]"] !== undefined) {
      update = { "xaxis.range": [ev["xaxis.range[0]"], ev["xaxis.range[1]"]] };
    } else if (ev["xaxis.range"]) { update = { "xaxis.range": ev["xaxis.range"] }; }
    if (!update) { return; }
    syncing = true;
    Promise.all(linked.filter(function (n) { return n !== source; }).map(function (n) {
      return Plotly.relayout(n, update);
    })).then(function () { syncing = false; }, function () { syncing = false; });
  }

  function card(title, hint, body) {
    return el("section", { cls: "card" }, [el("h2", { text: title }),
      hint ? el("p", { cls: "hint", text: hint }) : null].concat(body));
  }

  function chartDiv(id, height) {
    return el("div", { id: id, cls: "chart", style: "height:" + height + "px" });
  }

  function line(s, name, color, extra) {
    return Object.assign({ x: s.x, y: s.y, type: "scatter", mode: "lines", name: name,
                           line: { color: color, width: 1.6 } }, extra || {});
  }

  function signClass(v) { return v === null || v === undefined ? "" : (v < 0 ? "neg" : "pos"); }

  function kpi(label, value, cls, bench) {
    return el("div", { cls: "kpi" }, [el("div", { cls: "label", text: label }),
      el("div", { cls: "value " + (cls || ""), text: value }),
      bench ? el("div", { cls: "bench", text: bench }) : null]);
  }

  function pagedTable(columns, rows, pageSize, renderRow, note) {
    var wrap = el("div");
    var table = el("table");
    var head = el("tr", null, columns.map(function (c) {
      return el("th", { cls: c[1] || "", text: c[0] });
    }));
    table.appendChild(el("thead", null, [head]));
    var body = el("tbody");
    table.appendChild(body);
    var page = 0;
    var pages = Math.max(1, Math.ceil(rows.length / pageSize));
    var info = el("span");
    function button(label, target) {
      var b = el("button", { type: "button", text: label });
      b.addEventListener("click", function () { page = target(); draw(); });
      return b;
    }
    var first = button("« First", function () { return 0; });
    var prev = button("‹ Prev", function () { return Math.max(0, page - 1); });
    var next = button("Next ›", function () { return Math.min(pages - 1, page + 1); });
    var last = button("Last »", function () { return pages - 1; });
    function draw() {
      body.textContent = "";
      rows.slice(page * pageSize, (page + 1) * pageSize).forEach(function (r) {
        body.appendChild(renderRow(r));
      });
      var from = rows.length ? page * pageSize + 1 : 0;
      var to = Math.min(rows.length, (page + 1) * pageSize);
      info.textContent = "Rows " + from.toLocaleString("en-US") + "–" + to.toLocaleString("en-US") +
        " of " + rows.length.toLocaleString("en-US") + " · page " + (page + 1) + " of " + pages +
        (note ? " · " + note : "");
      first.disabled = prev.disabled = page === 0;
      next.disabled = last.disabled = page >= pages - 1;
    }
    draw();
    wrap.appendChild(el("div", { cls: "wide" }, [table]));
    wrap.appendChild(el("div", { cls: "pager" }, [first, prev, next, last, info]));
    return wrap;
  }

  function cells(values) {
    return el("tr", null, values.map(function (v) {
      if (Array.isArray(v)) { return el("td", { cls: v[1], text: v[0] }); }
      return el("td", { text: v });
    }));
  }

  function statsTable(columns) {
    var head = el("tr", null, [el("th", { cls: "l", text: "Statistic" })].concat(
      columns.map(function (c) { return el("th", { text: c.label }); })));
    var rows = STAT_ROWS.map(function (r) {
      return el("tr", null, [el("td", { cls: "l", text: r[0] })].concat(columns.map(function (c) {
        var v = c.stats ? c.stats[r[1]] : null;
        return el("td", { text: fmt[r[2]](v) });
      })));
    });
    return el("table", null, [el("thead", null, [head]), el("tbody", null, rows)]);
  }

  // ---------------------------------------------------------------- the run report
  function renderReport() {
    var s = data.summary, st = data.stats || {}, bm = data.benchmark || {};
    app.textContent = "";
    var params = Object.keys(s.params || {}).map(function (k) { return k + "=" + s.params[k]; });
    var d = s.data || {};
    app.appendChild(el("header", { cls: "top" }, [
      el("div", null, [
        el("h1", { text: data.title }),
        el("div", { cls: "sub", text: s.strategy + " " + (s.strategy_version || "") +
          (params.length ? " · " + params.join(", ") : "") + " · " + (d.file || "") +
          " · " + fmt.int(s.bars) + " bars, " + (s.first_ts || "").slice(0, 10) + " to " +
          (s.last_ts || "").slice(0, 10) + " · seed " + s.seed })
      ]),
      el("div", { cls: "hash" }, ["equity hash", el("br"), s.equity_hash])
    ]));
    if (s.notice) { app.appendChild(el("div", { cls: "notice", text: s.notice })); }
    var vs = function (key, f) { return "buy & hold " + fmt[f](bm[key]); };
    app.appendChild(el("div", { cls: "kpis" }, [
      kpi("Total return", fmt.pct(st.total_return), signClass(st.total_return), vs("total_return", "pct")),
      kpi("CAGR", fmt.pct(st.cagr), signClass(st.cagr), vs("cagr", "pct")),
      kpi("Sharpe", fmt.ratio(st.sharpe), "", vs("sharpe", "ratio")),
      kpi("Max drawdown", fmt.pct(st.max_drawdown), "neg", vs("max_drawdown", "pct")),
      kpi("Closed trades", fmt.int(st.trades), "", "win rate " + fmt.pct(st.win_rate, 1)),
      kpi("Exposure", fmt.pct(st.exposure, 1), "", "fees " + fmt.money(st.fees))
    ]));

    var equity = chartDiv("chart-equity", 380);
    app.appendChild(card("Equity", data.points.toLocaleString("en-US") + " equity points" +
      (data.points > 2 * data.buckets ? ", drawn as the lowest and highest of each of " +
        data.buckets.toLocaleString("en-US") + " spans (statistics use every point)" : "") +
      ". Shaded: risk state not ACTIVE. Drag to zoom; double-click to reset.", [equity]));
    var traces = [line(data.equity, "Strategy", BLUE, {
      hovertemplate: "%{y:,.2f}<extra>Strategy</extra>" })];
    if (data.benchmark_equity) {
      traces.push(line(data.benchmark_equity, "Buy & hold", GREY, {
        line: { color: GREY, width: 1.3 }, hovertemplate: "%{y:,.2f}<extra>Buy & hold</extra>" }));
    }
    var shapes = (data.risk.periods || []).map(function (p) {
      return { type: "rect", xref: "x", yref: "paper", x0: p.from, x1: p.to, y0: 0, y1: 1,
               fillcolor: p.state === "HALTED" ? "rgba(192,57,43,0.10)" : "rgba(183,121,31,0.10)",
               line: { width: 0 }, layer: "below" };
    });
    plot(equity, traces, baseLayout({ shapes: shapes, yaxis: { title: { text: data.currency } },
      margin: { t: 34 }, legend: { y: 1.0 },
      updatemenus: [{ type: "buttons", direction: "left", showactive: true, active: 0,
        x: 0.62, xanchor: "right", y: 1.0, yanchor: "bottom", pad: { r: 6, b: 2 },
        bgcolor: "#ffffff", bordercolor: "#cfd6df", font: { size: 11 },
        buttons: [{ label: "linear", method: "relayout", args: [{ "yaxis.type": "linear" }] },
                  { label: "log", method: "relayout", args: [{ "yaxis.type": "log" }] }] }],
      xaxis: { rangeselector: { buttons: [
        { count: 1, label: "1m", step: "month", stepmode: "backward" },
        { count: 6, label: "6m", step: "month", stepmode: "backward" },
        { count: 1, label: "1y", step: "year", stepmode: "backward" },
        { step: "all", label: "all" }], x: 0.64, xanchor: "left", y: 1.0, yanchor: "bottom" } }
    }), true);

    var dd = chartDiv("chart-drawdown", 220);
    app.appendChild(card("Drawdown (underwater)", "Fall from the running peak of equity.", [dd]));
    var ddTraces = [line(data.drawdown, "Strategy", RED, {
      y: data.drawdown.y.map(function (v) { return v === null ? null : -v; }),
      fill: "tozeroy", fillcolor: "rgba(192,57,43,0.18)", line: { color: RED, width: 1.2 },
      hovertemplate: "%{y:.2%}<extra>Strategy</extra>" })];
    if (data.benchmark_drawdown) {
      ddTraces.push(line(data.benchmark_drawdown, "Buy & hold", GREY, {
        y: data.benchmark_drawdown.y.map(function (v) { return v === null ? null : -v; }),
        line: { color: GREY, width: 1 }, hovertemplate: "%{y:.2%}<extra>Buy & hold</extra>" }));
    }
    plot(dd, ddTraces, baseLayout({ yaxis: { tickformat: ".2~%" } }), true);

    if (data.prices.length) {
      data.prices.forEach(function (p, i) {
        var div = chartDiv("chart-price-" + i, 340);
        var m = p.markers;
        var hint = "Close price with each trade's entry (▲ long, ▼ short) and exit (×).";
        if (m && (m.entries.x.length < m.entries_total || m.exits.x.length < m.exits_total)) {
          hint += " Markers: the first trade of each time span (" + m.entries.x.length +
            " of " + m.entries_total + " entries shown).";
        }
        app.appendChild(card("Price and trades: " + p.symbol, hint, [div]));
        var pt = [line(p, p.symbol, "#34495e", { line: { color: "#34495e", width: 1.1 },
          hovertemplate: "%{y:,.6~g}<extra>close</extra>" })];
        if (m) {
          pt.push({ x: m.entries.x, y: m.entries.y, type: "scatter", mode: "markers", name: "Entry",
            text: m.entries.text, hovertemplate: "%{text} @ %{y:,.6~g}<extra></extra>",
            marker: { size: 9, symbol: m.entries.side.map(function (sd) {
              return sd === "long" ? "triangle-up" : "triangle-down"; }),
              color: m.entries.side.map(function (sd) { return sd === "long" ? GREEN : RED; }),
              line: { width: 0.5, color: "#ffffff" } } });
          pt.push({ x: m.exits.x, y: m.exits.y, type: "scatter", mode: "markers", name: "Exit",
            text: m.exits.text, hovertemplate: "%{text} @ %{y:,.6~g}<extra></extra>",
            marker: { size: 8, symbol: "x-thin", color: "#111111", line: { width: 1.6, color: "#111111" } } });
        }
        plot(div, pt, baseLayout({ hovermode: "closest" }), true);
      });
    } else {
      app.appendChild(card("Price and trades", null, [el("p", { cls: "empty",
        text: "The snapshot's bars were not available when this report was written, so the price chart and the benchmark curve are missing." })]));
    }

    var row = el("div", { cls: "grid2" });
    app.appendChild(row);
    var heat = chartDiv("chart-monthly", Math.max(220, 60 + 34 * data.monthly.years.length));
    row.appendChild(card("Monthly returns", "Each month's return; the last column is the year's.", [heat]));
    var heatRange = 0.01;  // colours saturate at the largest month or year, at least 1 %
    data.monthly.z.forEach(function (r) { r.forEach(function (v) {
      if (v !== null) { heatRange = Math.max(heatRange, Math.abs(v)); } }); });
    plot(heat, [{ type: "heatmap", z: data.monthly.z, x: ["Jan", "Feb", "Mar", "Apr", "May", "Jun",
      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Year"], y: data.monthly.years.map(String),
      text: data.monthly.text, texttemplate: "%{text}", textfont: { size: 11 },
      colorscale: [[0, "#b2182b"], [0.5, "#f7f7f7"], [1, "#1a9850"]], zmin: -heatRange,
      zmax: heatRange, xgap: 2, ygap: 2,
      showscale: false, hovertemplate: "%{y} %{x}: %{text}<extra></extra>" }],
      baseLayout({ hovermode: "closest", margin: { l: 48, r: 10, t: 6, b: 28 },
        xaxis: { type: "category", showgrid: false, linecolor: "#ffffff" },
        yaxis: { type: "category", autorange: "reversed", showgrid: false } }), false,
      { displayModeBar: false });

    var rs = chartDiv("chart-rolling-sharpe", Math.max(220, 60 + 34 * data.monthly.years.length));
    var rsHint = data.rolling_sharpe ? "Annualised Sharpe over a moving window of " +
      data.rolling_sharpe.window_text + "." : "The run is too short for a rolling window.";
    row.appendChild(card("Rolling Sharpe", rsHint, [rs]));
    var rsTraces = [];
    if (data.rolling_sharpe) {
      rsTraces.push(line(data.rolling_sharpe, "Strategy", BLUE, { hovertemplate: "%{y:.2f}<extra>Strategy</extra>" }));
    }
    if (data.benchmark_rolling_sharpe) {
      rsTraces.push(line(data.benchmark_rolling_sharpe, "Buy & hold", GREY, {
        line: { color: GREY, width: 1.1 }, hovertemplate: "%{y:.2f}<extra>Buy & hold</extra>" }));
    }
    plot(rs, rsTraces, baseLayout({ shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 0, y1: 0,
      line: { color: "#9aa4b1", width: 1, dash: "dot" } }] }), true);

    var ann = s.annualisation || {};
    app.appendChild(card("Statistics", "Annualised with " + fmt.num0(st.periods_per_year) +
      " periods a year (" + (ann.source || "") + (ann.rule ? ": " + ann.rule : "") +
      "). Buy & hold: equal weights at each symbol's first close, no costs.",
      [statsTable([{ label: "Strategy", stats: st }, { label: "Buy & hold", stats: bm }])]));

    var t = data.trades;
    var shown = t.rows.length < t.total ? "the first " + t.rows.length.toLocaleString("en-US") +
      " of " + t.total.toLocaleString("en-US") + " (all are in trades.parquet)" : null;
    var tcols = [["#"], ["Symbol", "l"], ["Side", "l"], ["Entry", "l"], ["Entry price"],
      ["Exit", "l"], ["Exit price"], ["Quantity"], ["PnL"], ["Return"], ["Fees"], ["Bars"]];
    app.appendChild(card("Trades", "Round trips, flat to flat per symbol; a trade still open at the end is marked at the last close.",
      [t.rows.length ? pagedTable(tcols, t.rows, 25, function (r) {
        return cells([String(r[0]), [r[1], "l"], [r[2], "l"], [fmt.date(r[3]), "l"], r[4],
          [r[12] ? "open" : fmt.date(r[5]), "l"], r[6] === null ? "–" : r[6], r[7],
          [r[8], Number(r[8]) < 0 ? "neg" : "pos"], fmt.pct(r[9]), r[10], String(r[11])]);
      }, shown) : el("p", { cls: "empty", text: "No trades." })]));

    var risk = data.risk;
    var riskBody = [el("p", null, ["Final state ", el("span", { cls: "badge" +
      (risk.state === "HALTED" ? " bad" : (risk.state === "COOL" ? " warn" : "")),
      text: risk.state || "ACTIVE" }), " · " + fmt.int(risk.denial_total) + " orders denied" +
      (Object.keys(risk.denials).length ? " (" + Object.keys(risk.denials).map(function (k) {
        return k + " " + risk.denials[k]; }).join(", ") + ")" : "")])];
    if (risk.transitions.length) {
      riskBody.push(pagedTable([["Time", "l"], ["From", "l"], ["To", "l"], ["Reason", "l"], ["Detail", "l"]],
        risk.transitions, 10, function (r) {
          return cells([[r.ts, "l"], [r.from, "l"], [r.to, "l"], [r.reason, "l"], [r.detail || "", "l"]]);
        }));
    }
    if (risk.denied.length) {
      riskBody.push(el("p", { cls: "hint", text: "Denied orders" + (risk.denied.length < risk.denial_total ?
        " (the first " + risk.denied.length + "; events.jsonl has them all)" : "") }));
      riskBody.push(pagedTable([["Time", "l"], ["Order"], ["Symbol", "l"], ["Side", "l"], ["Quantity"],
        ["Reason", "l"], ["Detail", "l"]], risk.denied, 10, function (r) {
          return cells([[r.ts, "l"], String(r.order_id), [r.symbol, "l"], [r.side, "l"], r.qty,
            [r.reason, "l"], [r.detail || "", "l"]]);
        }));
    }
    app.appendChild(card("Risk events", "Transitions of the risk engine and orders it denied.", riskBody));

    app.appendChild(card("Run identity", "What reproduces this run: `python -m cli replay` on its directory re-runs it from the manifest.",
      [el("dl", { cls: "identity" }, [].concat.apply([], data.identity.map(function (r) {
        return [el("dt", { text: r[0] }), el("dd", { text: r[1] })];
      })))]));
    app.appendChild(el("footer", { text: "Written by weltklassebot. Self-contained: charts by plotly.js, inlined; works offline." }));
  }

  // ---------------------------------------------------------------- the comparison
  function renderCompare() {
    app.textContent = "";
    app.appendChild(el("header", { cls: "top" }, [el("div", null, [
      el("h1", { text: data.title }),
      el("div", { cls: "sub", text: data.runs.length + " runs · equity curves as cumulative return, each from its own initial equity" })])]));
    var groups = data.hash_groups;
    if (data.hashes_match) {
      app.appendChild(el("div", { cls: "banner ok", text: "Equity hashes match: all " + data.runs.length +
        " runs have the same fills and equity curve (" + data.runs[0].equity_hash.slice(0, 16) + "…)." }));
    } else {
      app.appendChild(el("div", { cls: "banner diff", text: "Equity hashes differ: " + groups.length +
        " distinct results among " + data.runs.length + " runs." }));
    }
    var eq = chartDiv("chart-compare-equity", 420);
    app.appendChild(card("Cumulative return", "Equity over initial equity, minus one.", [eq]));
    plot(eq, data.runs.map(function (r, i) {
      return line(r.returns, r.label, PALETTE[i % PALETTE.length], {
        hovertemplate: "%{y:.2%}<extra>" + r.label + "</extra>" });
    }), baseLayout({ yaxis: { tickformat: ".2~%" } }), true);
    var dd = chartDiv("chart-compare-drawdown", 240);
    app.appendChild(card("Drawdown", "Fall from each run's running peak.", [dd]));
    plot(dd, data.runs.map(function (r, i) {
      return line(r.drawdown, r.label, PALETTE[i % PALETTE.length], {
        y: r.drawdown.y.map(function (v) { return v === null ? null : -v; }),
        hovertemplate: "%{y:.2%}<extra>" + r.label + "</extra>" });
    }), baseLayout({ yaxis: { tickformat: ".2~%" } }), true);
    var columns = data.runs.map(function (r) { return { label: r.label, stats: r.stats }; });
    data.benchmarks.forEach(function (b) { columns.push({ label: b.label, stats: b.stats }); });
    app.appendChild(card("Statistics side by side", null, [el("div", { cls: "wide compare" }, [statsTable(columns)])]));
    var rows = data.runs.map(function (r, i) {
      var group = groups.findIndex(function (g) { return g.indexOf(i) >= 0; });
      return el("tr", null, [
        el("td", { cls: "l", text: r.label }),
        el("td", { cls: "l", text: r.strategy }),
        el("td", { cls: "l", text: r.params }),
        el("td", { cls: "l", text: r.data }),
        el("td", { text: String(r.seed) }),
        el("td", { cls: "l mono hash", text: r.equity_hash }),
        el("td", { cls: "l" }, [el("span", { cls: "badge" + (groups.length > 1 ? " warn" : ""),
          text: String.fromCharCode(65 + group) })])
      ]);
    });
    app.appendChild(card("Runs", "Runs with the same letter have the same equity hash.", [el("div", { cls: "wide compare" }, [
      el("table", null, [el("thead", null, [el("tr", null, [["Run", "l"], ["Strategy", "l"], ["Parameters", "l"],
        ["Data", "l"], ["Seed"], ["Equity hash", "l"], ["Result", "l"]].map(function (c) {
          return el("th", { cls: c[1] || "", text: c[0] }); }))]), el("tbody", null, rows)])])]));
    app.appendChild(el("footer", { text: "Written by weltklassebot. Self-contained: charts by plotly.js, inlined; works offline." }));
  }

  try {
    if (data.mode === "compare") { renderCompare(); } else { renderReport(); }
  } catch (err) {
    app.appendChild(el("p", { cls: "notice", text: "The report could not be drawn: " + err }));
    throw err;
  }
  Promise.all(pending).then(function () {
    window.__reportCharts = charts;
    window.__reportReady = true;
  });
})();
