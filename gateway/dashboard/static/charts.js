// Small SVG charts written for this page (no library): stacked bars or an area over time,
// horizontal grouped bars, a ring. Colours come from CSS variables, so both themes apply.
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, parent) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function el(tag, cls, text, parent) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  // 0, 1, 2, 2.5, 5 × 10^k steps: axis labels people read at a glance.
  function niceMax(max, ticks) {
    if (!(max > 0)) return { top: 1, step: 0.25 };
    const raw = max / ticks;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    return { top: step * Math.ceil(max / step), step };
  }

  function empty(host, text) {
    host.replaceChildren();
    el("div", "empty", text, host);
  }

  const tooltip = {
    show(evt, lines) {
      const tip = document.getElementById("tooltip");
      tip.replaceChildren();
      lines.forEach((line, i) => {
        const row = el("div", i === 0 ? "tip-title" : "tip-row", null, tip);
        if (line.color) el("span", "swatch " + line.color, null, row);
        el("span", null, line.text, row);
      });
      tip.hidden = false;
      const pad = 14;
      const x = Math.min(evt.clientX + pad, window.innerWidth - tip.offsetWidth - pad);
      tip.style.left = x + "px";
      tip.style.top = evt.clientY + pad + "px";
    },
    hide() {
      document.getElementById("tooltip").hidden = true;
    },
  };

  // points: [{ts, ...}]; series: [{key, label, color, value(p)}]; opts: {kind, format, spanS}
  function timeChart(host, points, series, opts) {
    const totals = {};
    series.forEach((s) => {
      totals[s.key] = points.reduce((acc, p) => acc + s.value(p), 0);
      host.dataset["total" + s.key[0].toUpperCase() + s.key.slice(1)] = String(totals[s.key]);
    });
    if (!points.length || series.every((s) => totals[s.key] === 0)) {
      empty(host, opts.emptyText || "No requests in this range");
      return;
    }
    host.replaceChildren();
    const width = Math.max(320, host.clientWidth || 600);
    const height = opts.height || 200;
    const m = { top: 10, right: 12, bottom: 24, left: 52 };
    const w = width - m.left - m.right;
    const h = height - m.top - m.bottom;
    const stacked = points.map((p) => series.reduce((acc, s) => acc + s.value(p), 0));
    const { top, step } = niceMax(Math.max(...stacked), 4);
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img" }, host);
    const g = svg("g", { transform: `translate(${m.left},${m.top})` }, root);
    for (let v = 0; v <= top + step / 2; v += step) {
      const y = h - (v / top) * h;
      svg("line", { x1: 0, x2: w, y1: y, y2: y, class: v === 0 ? "axis" : "gridline" }, g);
      const label = svg("text", { x: -8, y: y + 4, "text-anchor": "end", class: "tick" }, g);
      label.textContent = opts.format(v);
    }
    const slot = w / points.length;
    const labelEvery = Math.max(1, Math.ceil(points.length / Math.max(2, Math.floor(w / 70))));
    points.forEach((p, i) => {
      if (i % labelEvery === 0) {
        const t = svg("text", { x: i * slot + slot / 2, y: h + 16, "text-anchor": "middle", class: "tick" }, g);
        t.textContent = fmt.clock(p.ts, opts.spanS);
      }
    });
    if (opts.kind === "area") {
      const s = series[0];
      const xy = points.map((p, i) => [i * slot + slot / 2, h - (s.value(p) / top) * h]);
      const line = xy.map(([x, y], i) => (i ? "L" : "M") + x.toFixed(1) + "," + y.toFixed(1)).join("");
      svg("path", { d: `${line}L${xy[xy.length - 1][0]},${h}L${xy[0][0]},${h}Z`, class: "area " + s.color }, g);
      svg("path", { d: line, class: "line " + s.color }, g);
    } else {
      const barW = Math.max(1, Math.min(28, slot * 0.72));
      points.forEach((p, i) => {
        let base = h;
        series.forEach((s) => {
          const v = s.value(p);
          if (v <= 0) return;
          const bh = Math.max(1, (v / top) * h);
          base -= bh;
          svg("rect", { x: i * slot + (slot - barW) / 2, y: base, width: barW, height: bh, rx: Math.min(3, barW / 3), class: "bar " + s.color }, g);
        });
      });
    }
    // One transparent hover target per bucket, with the bucket's values in a tooltip.
    points.forEach((p, i) => {
      const hit = svg("rect", { x: i * slot, y: 0, width: slot, height: h, class: "hit" }, g);
      hit.addEventListener("mousemove", (evt) =>
        tooltip.show(evt, [
          { text: fmt.timestamp(p.ts) },
          ...series.map((s) => ({ color: s.color, text: `${s.label}: ${opts.format(s.value(p))}` })),
        ])
      );
      hit.addEventListener("mouseleave", tooltip.hide);
    });
  }

  // rows: [{label, values: {key: number|null}}]; series: [{key, label, color}]
  function hbars(host, rows, series, format, emptyText) {
    if (!rows.length) {
      empty(host, emptyText);
      return;
    }
    host.replaceChildren();
    const max = Math.max(...rows.flatMap((r) => series.map((s) => r.values[s.key] || 0)), 1);
    rows.forEach((r) => {
      const block = el("div", "hbar", null, host);
      block.dataset.label = r.label;
      el("div", "hbar-label", r.label, block).title = r.label;
      series.forEach((s) => {
        const v = r.values[s.key];
        const line = el("div", "hbar-line", null, block);
        el("span", "hbar-key", s.label, line);
        const track = el("span", "hbar-track", null, line);
        const fill = el("span", "hbar-fill " + s.color, null, track);
        fill.style.width = ((100 * (v || 0)) / max).toFixed(2) + "%";
        const value = el("span", "hbar-value num", format(v), line);
        value.dataset.key = s.key;
        value.dataset.value = v === null || v === undefined ? "" : String(v);
      });
    });
  }

  function ring(host, ratio, color) {
    const size = 112, r = 46, c = 2 * Math.PI * r;
    const root = svg("svg", { viewBox: `0 0 ${size} ${size}`, width: size, height: size, class: "ring" }, host);
    svg("circle", { cx: size / 2, cy: size / 2, r, class: "ring-track" }, root);
    svg("circle", {
      cx: size / 2, cy: size / 2, r, class: "ring-fill " + color,
      "stroke-dasharray": `${(c * Math.min(1, ratio)).toFixed(2)} ${c.toFixed(2)}`,
      transform: `rotate(-90 ${size / 2} ${size / 2})`,
    }, root);
    const t = svg("text", { x: size / 2, y: size / 2 + 6, "text-anchor": "middle", class: "ring-text" }, root);
    t.textContent = fmt.percent(ratio);
    return root;
  }

  window.charts = { timeChart, hbars, ring, el, empty, tooltip };
})();
