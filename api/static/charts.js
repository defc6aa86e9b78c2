/* Small SVG charts drawn by our own code: horizontal bars, lines with intervals, and a bar for a
   table cell. No library, nothing downloaded. Every drawn number is an element with class "mark"
   and its value in data-value (the browser test counts them); colours come from CSS classes, never
   from style attributes (the page's CSP allows no inline style). */
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(key, String(value));
    }
    if (parent) parent.appendChild(node);
    return node;
  }

  function label(parent, x, y, content, attrs) {
    const node = el("text", {x, y, ...attrs}, parent);
    node.textContent = content;
    return node;
  }

  function tip(node, content) {
    if (content) el("title", {}, node).textContent = content;
    return node;
  }

  function round(v) {
    return Math.round(v * 10) / 10;
  }

  /** The smallest "nice" axis maximum (1, 2, 2.5, 5 x 10^k) at or above v. */
  function niceMax(v) {
    if (!(v > 0)) return 10;
    const power = Math.pow(10, Math.floor(Math.log10(v)));
    for (const step of [1, 2, 2.5, 5, 10]) {
      if (step * power >= v) return step * power;
    }
    return 10 * power;
  }

  /** Approximate width in px of text at the charts' 11-12px size (Hangul and CJK are wider). */
  function textWidth(text) {
    let w = 0;
    for (const ch of text) w += ch.codePointAt(0) >= 0x1100 ? 11.5 : 6.6;
    return w;
  }

  function isNice(step) {
    const mantissa = step / Math.pow(10, Math.floor(Math.log10(step)));
    return [1, 2, 2.5, 5].some((n) => Math.abs(mantissa - n) < 1e-9);
  }

  function shorten(text, px) {
    if (textWidth(text) <= px) return text;
    let out = "";
    for (const ch of text) {
      if (textWidth(out + ch + "…") > px) break;
      out += ch;
    }
    return out + "…";
  }

  function frame(name, width, height, description) {
    return el("svg", {
      class: "chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
      "aria-label": description, "data-chart": name, focusable: "false",
    });
  }

  /**
   * Horizontal bars. items: [{label, value (number|null), text, tip, cls}]; a null value is
   * written as `withheld` text, with no bar.
   */
  function hbar(opts) {
    const width = Math.max(280, Math.round(opts.width || 600));
    const rowH = 26;
    const height = opts.items.length * rowH + 6;
    const svg = frame(opts.name, width, height, opts.description);
    const longest = Math.max(30, ...opts.items.map((i) => textWidth(i.label)));
    const labelW = Math.min(Math.round(width * 0.42), 230, Math.round(longest + 14));
    const valueW = opts.valueWidth || 92;
    const area = Math.max(40, width - labelW - valueW - 10);
    const values = opts.items.map((i) => i.value).filter((v) => v !== null && v !== undefined);
    const max = opts.max || niceMax(Math.max(0, ...values));
    opts.items.forEach((item, row) => {
      const y = 3 + row * rowH;
      const g = el("g", {class: "row"}, svg);
      tip(g, item.tip);
      label(g, labelW - 8, y + rowH / 2, shorten(item.label, labelW - 8),
        {class: "axis-label", "text-anchor": "end", "dominant-baseline": "central"});
      el("rect", {x: labelW, y: y + 4, width: area, height: rowH - 8, class: "track"}, g);
      if (item.value === null || item.value === undefined) {
        label(g, labelW + 6, y + rowH / 2, opts.withheld, {class: "withheld", "dominant-baseline": "central"});
        return;
      }
      const w = Math.max(1, area * Math.min(item.value, max) / max);
      el("rect", {
        x: labelW, y: y + 4, width: round(w), height: rowH - 8, rx: 2,
        class: `mark ${item.cls || ""}`.trim(), "data-value": item.value,
      }, g);
      label(g, labelW + w + 6, y + rowH / 2, item.text, {class: "value-label", "dominant-baseline": "central"});
    });
    return svg;
  }

  function segments(points, has) {
    const out = [];
    let current = [];
    for (const p of points) {
      if (has(p)) current.push(p);
      else if (current.length) { out.push(current); current = []; }
    }
    if (current.length) out.push(current);
    return out;
  }

  /**
   * Lines over categories. opts: {name, description, x: [labels], showTick(i), series:
   * [{cls, dashed, label, points: [{i, y, lo, hi, tip}]}], yTitle, xTitle, width, height}.
   */
  function lines(opts) {
    const width = Math.max(240, Math.round(opts.width || 320));
    const height = opts.height || 200;
    const m = {l: 42, r: 10, t: 10, b: opts.xTitle ? 42 : 26};
    const plotW = width - m.l - m.r;
    const plotH = height - m.t - m.b;
    const svg = frame(opts.name, width, height, opts.description);
    const all = [];
    for (const s of opts.series) {
      for (const p of s.points) {
        for (const v of [p.y, p.hi]) if (v !== null && v !== undefined) all.push(v);
      }
    }
    const max = niceMax(Math.max(0, ...all));
    const ticks = isNice(max / 4) ? 4 : 5;  // 50 / 4 = 12.5 is not a round step: five ticks of 10
    const n = Math.max(1, opts.x.length);
    const xs = (i) => m.l + (i + 0.5) * (plotW / n);
    const ys = (v) => m.t + plotH - (plotH * Math.min(v, max)) / max;
    const axes = el("g", {class: "axes"}, svg);
    for (let k = 0; k <= ticks; k += 1) {
      const v = (max * k) / ticks;
      el("line", {x1: m.l, x2: width - m.r, y1: round(ys(v)), y2: round(ys(v)), class: k ? "grid" : "baseline"}, axes);
      label(axes, m.l - 5, ys(v), `${round(v)}%`, {class: "axis-label", "text-anchor": "end", "dominant-baseline": "central"});
    }
    opts.x.forEach((text, i) => {
      if (opts.showTick && !opts.showTick(i)) return;
      label(axes, xs(i), m.t + plotH + 15, text, {class: "axis-label", "text-anchor": "middle"});
    });
    if (opts.xTitle) {
      label(axes, m.l + plotW / 2, height - 6, opts.xTitle, {class: "axis-title", "text-anchor": "middle"});
    }
    for (const s of opts.series) {
      const g = el("g", {class: `series ${s.cls}`}, svg);
      for (const seg of segments(s.points, (p) => p.lo !== null && p.lo !== undefined && p.hi !== null && p.hi !== undefined)) {
        const upper = seg.map((p) => `${round(xs(p.i))},${round(ys(p.hi))}`);
        const lower = seg.slice().reverse().map((p) => `${round(xs(p.i))},${round(ys(p.lo))}`);
        if (seg.length > 1) el("polygon", {points: upper.concat(lower).join(" "), class: `band ${s.cls}`}, g);
        else for (const p of seg) el("line", {x1: xs(p.i), x2: xs(p.i), y1: ys(p.lo), y2: ys(p.hi), class: `whisker ${s.cls}`}, g);
      }
      for (const seg of segments(s.points, (p) => p.y !== null && p.y !== undefined)) {
        if (seg.length > 1) {
          el("polyline", {
            points: seg.map((p) => `${round(xs(p.i))},${round(ys(p.y))}`).join(" "),
            class: `line ${s.cls}${s.dashed ? " dashed" : ""}`,
          }, g);
        }
      }
      for (const p of s.points) {
        if (p.y === null || p.y === undefined) continue;
        const shape = s.dashed
          ? el("rect", {x: round(xs(p.i) - 3.5), y: round(ys(p.y) - 3.5), width: 7, height: 7}, g)
          : el("circle", {cx: round(xs(p.i)), cy: round(ys(p.y)), r: 3.5}, g);
        shape.setAttribute("class", `mark ${s.cls}`);
        shape.setAttribute("data-value", String(p.y));
        tip(shape, p.tip);
      }
    }
    return svg;
  }

  /** A bar inside a table cell: value of max, with its own title. */
  function cellBar(value, max, cls, title) {
    const width = 140;
    const svg = el("svg", {class: "cellbar", viewBox: `0 0 ${width} 14`, width, height: 14, "aria-hidden": "true", focusable: "false"});
    el("rect", {x: 0, y: 2, width, height: 10, class: "track"}, svg);
    if (value !== null && value !== undefined && max > 0) {
      const bar = el("rect", {
        x: 0, y: 2, width: round(Math.max(1, (width * Math.min(value, max)) / max)), height: 10, rx: 2,
        class: `mark ${cls || ""}`.trim(), "data-value": value,
      }, svg);
      tip(bar, title);
    }
    return svg;
  }

  /** A legend swatch (HTML lists carry the text; the swatch only shows the colour and dash). */
  function swatch(cls, dashed) {
    const svg = el("svg", {class: "swatch", viewBox: "0 0 24 10", width: 24, height: 10, "aria-hidden": "true", focusable: "false"});
    el("line", {x1: 1, x2: 23, y1: 5, y2: 5, class: `line ${cls}${dashed ? " dashed" : ""}`}, svg);
    return svg;
  }

  window.NHIS_CHARTS = {hbar, lines, cellBar, swatch, niceMax};
})();
