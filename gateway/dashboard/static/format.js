// Number formatting for the dashboard: counts, money, tokens, durations and times, with units.
"use strict";

(function () {
  const int = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

  function count(n) {
    if (n === null || n === undefined) return "–";
    return Math.abs(n) < 10000 ? int.format(n) : compact.format(n);
  }

  // Gateway calls cost fractions of a cent: keep three significant digits below a dollar.
  function usd(value) {
    if (value === null || value === undefined) return "–";
    const n = Number(value);
    if (n === 0) return "$0";
    const abs = Math.abs(n);
    if (abs >= 1000) return "$" + compact.format(n);
    if (abs >= 1) return "$" + n.toFixed(2);
    if (abs >= 0.01) return "$" + n.toFixed(3);
    return "$" + n.toPrecision(3).replace(/0+$/, "").replace(/\.$/, "");
  }

  function ms(value) {
    if (value === null || value === undefined) return "–";
    if (value >= 10000) return (value / 1000).toFixed(1) + " s";
    if (value >= 1000) return (value / 1000).toFixed(2) + " s";
    if (value >= 100) return Math.round(value) + " ms";
    if (value >= 10) return value.toFixed(1) + " ms";
    return value.toFixed(2) + " ms";
  }

  function percent(ratio, digits) {
    if (ratio === null || ratio === undefined) return "–";
    const p = ratio * 100;
    const d = digits === undefined ? (p > 0 && p < 10 ? 1 : 0) : digits;
    return p.toFixed(d) + " %";
  }

  function clock(ts, spanS) {
    const d = new Date(ts * 1000);
    const hm = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", hour12: false });
    if (spanS <= 86400) return hm;
    return d.toLocaleDateString(undefined, { weekday: "short" }) + " " + hm;
  }

  function timestamp(ts) {
    return new Date(ts * 1000).toLocaleString(undefined, { hour12: false });
  }

  window.fmt = { count, usd, ms, percent, clock, timestamp };
})();
