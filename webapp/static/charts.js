// The pages' charts (issue 13), drawn with the vendored Chart.js (static/vendor): every
// <canvas data-chart="{...}"> is built from the figures webapp/charts.py put in its attribute
// (the Content-Security-Policy allows no inline script), on page load and after htmx swaps one
// in. The same figures are in the table after each chart; shapes, patterns and words, not colour
// alone, tell a failed run, a step or a series apart.
(function () {
  "use strict";

  // Okabe–Ito colours (told apart with colour blindness too), each with a pattern of its own
  const COLOURS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00"];
  const PATTERNS = ["solid", "diagonal", "dots", "cross", "horizontal", "vertical"];
  const INK = "#111827";
  const FAILED = "#b91c1c";
  const STATES = { failed: "✕ Failed", cancelled: "▲ Cancelled (stopped before the end)" };

  // A fill for bars: the colour itself ("solid") or a pale tint of it with lines or dots.
  function fill(kind, colour) {
    if (kind === "solid") return colour;
    const size = 8;
    const tile = document.createElement("canvas");
    tile.width = tile.height = size;
    const pen = tile.getContext("2d");
    pen.fillStyle = colour + "40";
    pen.fillRect(0, 0, size, size);
    pen.strokeStyle = pen.fillStyle = colour;
    pen.lineWidth = 2;
    pen.beginPath();
    if (kind === "diagonal" || kind === "cross") {
      pen.moveTo(0, size); pen.lineTo(size, 0);
      pen.moveTo(-2, 2); pen.lineTo(2, -2);
      pen.moveTo(size - 2, size + 2); pen.lineTo(size + 2, size - 2);
    }
    if (kind === "cross") {
      pen.moveTo(0, 0); pen.lineTo(size, size);
      pen.moveTo(size - 2, -2); pen.lineTo(size + 2, 2);
      pen.moveTo(-2, size - 2); pen.lineTo(2, size + 2);
    }
    if (kind === "horizontal") { pen.moveTo(0, size / 2); pen.lineTo(size, size / 2); }
    if (kind === "vertical") { pen.moveTo(size / 2, 0); pen.lineTo(size / 2, size); }
    pen.stroke();
    if (kind === "dots") { pen.arc(size / 2, size / 2, 1.8, 0, 2 * Math.PI); pen.fill(); }
    return pen.createPattern(tile, "repeat");
  }

  // "✕" above every failed run, in a row along the top of the plot (never over a bar or a
  // point), whatever its colour: options.plugins.failedMarks.failed
  const MARK_ROW = 18;
  const failedMarks = {
    id: "failedMarks",
    afterDatasetsDraw(chart, _args, options) {
      const failed = options.failed || [];
      const pen = chart.ctx;
      pen.save();
      pen.fillStyle = FAILED;
      pen.font = "bold 14px sans-serif";
      pen.textAlign = "center";
      pen.textBaseline = "bottom";
      failed.forEach(function (isFailed, index) {
        if (isFailed) pen.fillText("✕", chart.scales.x.getPixelForValue(index), chart.chartArea.top - 2);
      });
      pen.restore();
    },
  };

  function axis(text, extra) {
    return Object.assign({ beginAtZero: true, title: { display: true, text: text } }, extra || {});
  }

  function base(scales, plugins) {
    const marks = (plugins.failedMarks || {}).failed || [];
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false, // no movement, and no flicker when a refreshed chart is swapped in
      interaction: { mode: "index", intersect: false },
      layout: { padding: { top: marks.indexOf(true) >= 0 ? MARK_ROW : 0 } },
      scales: scales,
      plugins: Object.assign({ legend: { position: "bottom" } }, plugins),
    };
  }

  function stateNote(state) {
    return STATES[state] || "";
  }

  // A job: run time (a line, a big ✕ for a failed run, a triangle for a cancelled one) and its
  // first counter (bars, hatched for a failed run), by run number.
  function runs(figures) {
    const unit = figures.duration_unit;
    const failedAt = function (context) { return figures.failed[context.dataIndex]; };
    const cancelledAt = function (context) { return figures.states[context.dataIndex] === "cancelled"; };
    const datasets = [{
      type: "line",
      label: "Run time (" + unit + ")",
      data: figures.durations,
      yAxisID: "y",
      order: 0,
      borderColor: COLOURS[0],
      backgroundColor: COLOURS[0],
      borderWidth: 2,
      pointStyle: function (c) { return failedAt(c) ? "crossRot" : cancelledAt(c) ? "triangle" : "circle"; },
      pointRadius: function (c) { return failedAt(c) ? 9 : cancelledAt(c) ? 6 : 3; },
      pointBorderWidth: function (c) { return failedAt(c) ? 3 : 1; },
      pointBorderColor: function (c) { return failedAt(c) ? FAILED : COLOURS[0]; },
    }];
    const scales = { x: axis("Run", { beginAtZero: false }), y: axis("Run time (" + unit + ")", { position: "left" }) };
    if (figures.count_label) {
      const title = figures.count_label + " (" + figures.count_noun + ")";
      const hatched = fill("diagonal", COLOURS[1]);
      datasets.push({
        type: "bar",
        label: title,
        data: figures.counts,
        yAxisID: "y1",
        order: 1,
        backgroundColor: function (c) { return c.dataIndex !== undefined && failedAt(c) ? hatched : COLOURS[1] + "99"; },
        borderColor: COLOURS[1],
        borderWidth: 1,
      });
      scales.y1 = axis(title, { position: "right", grid: { drawOnChartArea: false } });
    }
    return {
      type: "bar",
      data: { labels: figures.labels, datasets: datasets },
      options: base(scales, {
        failedMarks: { failed: figures.failed },
        tooltip: {
          callbacks: {
            title: function (items) { return "Run " + figures.labels[items[0].dataIndex] + " · " + figures.started[items[0].dataIndex]; },
            label: function (item) {
              if (item.dataset.yAxisID === "y") return "Run time: " + figures.duration_texts[item.dataIndex];
              return figures.count_label + ": " + figures.counts[item.dataIndex].toLocaleString("en-US");
            },
            footer: function (items) { return stateNote(figures.states[items[0].dataIndex]); },
          },
        },
      }),
    };
  }

  // A group: a stacked bar per group run, a colour and a pattern per step; the failed step has a
  // thick dark border, its run a ✕.
  function group(figures) {
    const datasets = figures.steps.map(function (step, k) {
      const colour = COLOURS[k % COLOURS.length];
      const failedHere = function (c) { return c.dataIndex !== undefined && figures.failed_step[c.dataIndex] === step.number; };
      return {
        label: step.label,
        data: step.values,
        stack: "run",
        backgroundColor: fill(PATTERNS[k % PATTERNS.length], colour),
        borderColor: function (c) { return failedHere(c) ? INK : colour; },
        borderWidth: function (c) { return failedHere(c) ? 3 : 1; },
      };
    });
    const unit = figures.duration_unit;
    return {
      type: "bar",
      data: { labels: figures.labels, datasets: datasets },
      options: base({
        x: axis("Group run", { stacked: true, beginAtZero: false }),
        y: axis("Run time (" + unit + ")", { stacked: true }),
      }, {
        failedMarks: { failed: figures.failed },
        tooltip: {
          callbacks: {
            title: function (items) { return "Group run " + figures.labels[items[0].dataIndex] + " · " + figures.started[items[0].dataIndex]; },
            label: function (item) {
              const step = figures.steps[item.datasetIndex];
              const text = step.texts[item.dataIndex];
              if (!text) return null;
              const failed = figures.failed_step[item.dataIndex] === step.number ? " (failed)" : "";
              return step.label + ": " + text + failed;
            },
            footer: function (items) {
              const i = items[0].dataIndex;
              const failedStep = figures.failed_step[i];
              const note = failedStep ? "Failed at step " + failedStep : stateNote(figures.states[i]);
              return ["Whole run: " + figures.totals[i], note].filter(Boolean);
            },
          },
        },
      }),
    };
  }

  // A campaign run while it sends: messages sent a minute.
  function sends(figures) {
    return {
      type: "bar",
      data: { labels: figures.labels, datasets: [{ label: "Messages sent", data: figures.sent, backgroundColor: COLOURS[0] }] },
      options: base({
        x: axis("Minute (" + figures.zone + ")", { beginAtZero: false }),
        y: axis("Messages sent", { ticks: { precision: 0 } }),
      }, { legend: { display: false } }),
    };
  }

  // A campaign run after it sent: people who opened (solid) and who clicked (hatched) a day.
  function engagement(figures) {
    return {
      type: "bar",
      data: {
        labels: figures.labels,
        datasets: [
          { label: "Opened", data: figures.opens, backgroundColor: COLOURS[0], borderColor: COLOURS[0], borderWidth: 1 },
          { label: "Clicked", data: figures.clicks, backgroundColor: fill("diagonal", COLOURS[5]), borderColor: COLOURS[5], borderWidth: 1 },
        ],
      },
      options: base({
        x: axis("Day (" + figures.zone + ")", { beginAtZero: false }),
        y: axis("People", { ticks: { precision: 0 } }),
      }, {}),
    };
  }

  const KINDS = { runs: runs, group: group, sends: sends, engagement: engagement };

  function draw(canvas) {
    if (window.Chart.getChart(canvas)) return;
    const figures = JSON.parse(canvas.dataset.chart);
    const build = KINDS[figures.kind];
    if (build) new window.Chart(canvas, build(figures));
  }

  // Draw the charts not drawn yet; forget those an htmx swap took off the page.
  function drawAll() {
    if (!window.Chart) return;
    Object.values(window.Chart.instances).forEach(function (chart) {
      if (!chart.canvas.isConnected) chart.destroy();
    });
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  // A refreshed chart keeps its table open if the person had opened it.
  const opened = new Set();
  document.addEventListener("toggle", function (event) {
    const details = event.target;
    if (!(details instanceof HTMLDetailsElement) || !details.id) return;
    if (details.open) opened.add(details.id); else opened.delete(details.id);
  }, true);

  if (window.Chart) {
    window.Chart.register(failedMarks);
    window.Chart.defaults.color = "#374151";
    window.Chart.defaults.font.family = window.getComputedStyle(document.body || document.documentElement).fontFamily;
  }
  document.addEventListener("DOMContentLoaded", drawAll);
  // afterSwap comes in the same task as the swap itself: the new canvas is drawn before the
  // browser paints, so a refreshed chart does not blink
  document.addEventListener("htmx:afterSwap", function () {
    opened.forEach(function (id) {
      const details = document.getElementById(id);
      if (details && !details.open) details.open = true;
    });
    drawAll();
  });
})();
