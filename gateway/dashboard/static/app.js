// The dashboard page: sign-in, the two JSON reads, rendering, auto-refresh.
// It reads only this gateway's /admin/dashboard/* routes, which scope the data to the key.
"use strict";

(function () {
  const KEY = "strata.dashboard.key";
  const REFRESH_MS = 10000;
  const { el, empty } = window.charts;
  const $ = (id) => document.getElementById(id);
  const state = { range: Number(sessionStorage.getItem("strata.dashboard.range")) || 3600, tenant: "", timer: null, last: null };

  // -- theme ----------------------------------------------------------------------------------
  const savedTheme = localStorage.getItem("strata.dashboard.theme");
  if (savedTheme) document.documentElement.dataset.theme = savedTheme;
  function toggleTheme() {
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === "dark"
      : window.matchMedia("(prefers-color-scheme: dark)").matches;
    const next = dark ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("strata.dashboard.theme", next);
    if (state.last) render(state.last.summary, state.last.series);
  }

  // -- data -----------------------------------------------------------------------------------
  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function getJson(path, params) {
    const url = new URL(path, window.location.origin);
    for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null) url.searchParams.set(k, v);
    const response = await fetch(url, { headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY) }, cache: "no-store" });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new HttpError(response.status, (body.error && body.error.message) || response.statusText);
    return body;
  }

  async function load() {
    const until = Date.now() / 1000;
    const params = { since: (until - state.range).toFixed(3), until: until.toFixed(3), tenant: state.tenant };
    const bucket = state.range > 21600 ? "hour" : "minute";
    const [summary, series] = await Promise.all([
      getJson("/admin/dashboard/summary", params),
      getJson("/admin/dashboard/series", { ...params, bucket }),
    ]);
    return { summary, series };
  }

  async function refresh() {
    // A slow answer (a long range on a big ledger) must not pile timer refreshes up behind it.
    if (state.busy) {
      state.again = true; // a range or tenant change while loading: load once more after
      return;
    }
    state.busy = true;
    state.again = false;
    $("updated").textContent = "updating…";
    try {
      const data = await load();
      state.last = data;
      $("load-error").hidden = true;
      render(data.summary, data.series);
      $("updated").textContent = "updated " + new Date().toLocaleTimeString(undefined, { hour12: false });
      document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
    } catch (err) {
      if (err.status === 401) return signOut("That key was not accepted.");
      $("load-error").textContent = err.status === 503 ? "Usage needs accounting, which is off on this gateway: " + err.message : "Could not load: " + err.message;
      $("load-error").hidden = false;
      $("updated").textContent = "update failed";
    } finally {
      state.busy = false;
      if (state.again) refresh();
    }
  }

  function schedule() {
    clearInterval(state.timer);
    state.timer = $("auto").checked ? setInterval(refresh, REFRESH_MS) : null;
  }

  // -- rendering ------------------------------------------------------------------------------
  function render(summary, series) {
    const admin = summary.scope.admin;
    document.body.classList.toggle("is-admin", admin);
    $("scope").textContent = admin ? (summary.scope.tenant ? "admin · tenant " + summary.scope.tenant : "admin · all tenants") : "tenant " + summary.scope.tenant;
    renderTenantFilter(summary);
    renderKpis(summary.totals);
    renderSeries(series);
    renderLatency(summary.by.model);
    renderCache(summary.totals);
    for (const group of ["tenant", "model", "alias", "variant"]) renderTable($("by-" + group), summary.by[group], group);
    renderBudgets(summary.budgets);
    if (admin) {
      renderExperiments(summary.experiments || []);
      renderBreakers(summary.breakers || []);
    }
  }

  function renderTenantFilter(summary) {
    const wrap = $("tenant-filter-wrap");
    wrap.hidden = !summary.scope.admin;
    if (!summary.scope.admin) return;
    const select = $("tenant-filter");
    const names = summary.by.tenant.map((r) => r.group);
    if (state.tenant && !names.includes(state.tenant)) names.push(state.tenant);
    const want = ["", ...names.sort()];
    const have = [...select.options].map((o) => o.value);
    if (want.join("\n") !== have.join("\n")) {
      select.replaceChildren(...want.map((n) => Object.assign(document.createElement("option"), { value: n, textContent: n || "all tenants" })));
    }
    select.value = state.tenant;
  }

  function kpi(host, id, label, value, raw, sub, tone) {
    const card = el("div", "kpi" + (tone ? " " + tone : ""), null, host);
    card.dataset.testid = "kpi-" + id;
    el("div", "kpi-label", label, card);
    const v = el("div", "kpi-value num", value, card);
    v.dataset.value = String(raw);
    el("div", "kpi-sub muted", sub, card);
  }

  function renderKpis(t) {
    const host = $("kpis");
    host.replaceChildren();
    kpi(host, "requests", "Requests", fmt.count(t.requests), t.requests, `${fmt.count(t.unpriced_requests)} unpriced`);
    kpi(host, "errors", "Errors", fmt.count(t.errors), t.errors, fmt.percent(t.error_rate) + " of requests", t.errors ? "bad" : "");
    kpi(host, "cost", "Spend", fmt.usd(t.cost_usd), t.cost_usd, t.requests ? fmt.usd(Number(t.cost_usd) / t.requests) + " a request" : "no requests");
    kpi(host, "input-tokens", "Input tokens", fmt.count(t.input_tokens), t.input_tokens, `${fmt.count(t.cache_read_tokens)} prompt-cache reads`);
    kpi(host, "output-tokens", "Output tokens", fmt.count(t.output_tokens), t.output_tokens, t.requests ? fmt.count(Math.round(t.output_tokens / t.requests)) + " a request" : "–");
    kpi(host, "latency", "Latency p95", fmt.ms(t.p95_latency_ms), t.p95_latency_ms, t.p95_latency_ms === null ? "no calls" : `p50 ${fmt.ms(t.p50_latency_ms)}, p99 ${fmt.ms(t.p99_latency_ms)}`);
    kpi(host, "cache-hit-rate", "Cache hit rate", fmt.percent(t.cache_hit_rate), t.cache_hit_rate, `${fmt.count(t.cache_hits)} hits`);
    kpi(host, "saved", "Saved by cache", fmt.usd(t.cache_savings_usd), t.cache_savings_usd, "not billed upstream", Number(t.cache_savings_usd) > 0 ? "good" : "");
  }

  function renderSeries(series) {
    const points = series.data;
    const spanS = state.range;
    const unit = series.bucket === "hour" ? "per hour" : "per minute";
    const requests = [
      { key: "ok", label: "succeeded", color: "c-ok", value: (p) => p.requests - p.errors },
      { key: "errors", label: "errors", color: "c-err", value: (p) => p.errors },
    ];
    legend($("legend-requests"), requests, unit);
    charts.timeChart($("chart-requests"), points, requests, { kind: "bars", format: fmt.count, spanS, height: 220 });
    const cost = [{ key: "cost", label: "spend", color: "c-cost", value: (p) => Number(p.cost_usd) }];
    $("spend-sub").textContent = "USD " + unit;
    charts.timeChart($("chart-cost"), points, cost, { kind: "area", format: fmt.usd, spanS, emptyText: "No spend in this range" });
    const tokens = [
      { key: "input", label: "input", color: "c-in", value: (p) => p.input_tokens },
      { key: "output", label: "output", color: "c-out", value: (p) => p.output_tokens },
    ];
    legend($("legend-tokens"), tokens, unit);
    charts.timeChart($("chart-tokens"), points, tokens, { kind: "bars", format: fmt.count, spanS, emptyText: "No tokens in this range" });
  }

  function legend(host, series, suffix) {
    host.replaceChildren();
    series.forEach((s) => {
      const item = el("span", "legend-item", null, host);
      el("span", "swatch " + s.color, null, item);
      el("span", null, s.label, item);
    });
    if (suffix) el("span", "muted", suffix, host);
  }

  function renderLatency(rows) {
    const series = [
      { key: "p50", label: "p50", color: "c-p50" },
      { key: "p95", label: "p95", color: "c-p95" },
      { key: "p99", label: "p99", color: "c-p99" },
    ];
    legend($("legend-latency"), series);
    const data = rows
      .filter((r) => r.p50_latency_ms !== null)
      .map((r) => ({ label: r.group || "(no target)", values: { p50: r.p50_latency_ms, p95: r.p95_latency_ms, p99: r.p99_latency_ms } }));
    charts.hbars($("latency"), data, series, fmt.ms, "No calls reached a target in this range");
  }

  function renderCache(t) {
    const host = $("cache");
    host.replaceChildren();
    if (!t.requests) return empty(host, "No requests in this range");
    const box = el("div", "cache-box", null, host);
    charts.ring(box, t.cache_hit_rate, "c-ok");
    const facts = el("dl", "facts", null, box);
    const fact = (label, value, id) => {
      el("dt", null, label, facts);
      const dd = el("dd", "num", value, facts);
      if (id) dd.dataset.testid = id;
    };
    fact("Hits", `${fmt.count(t.cache_hits)} of ${fmt.count(t.requests)} requests`, "cache-hits");
    fact("Money saved", fmt.usd(t.cache_savings_usd), "cache-saved");
    fact("Prompt-cache reads", fmt.count(t.cache_read_tokens) + " tokens");
    fact("Prompt-cache writes", fmt.count(t.cache_write_tokens) + " tokens");
  }

  const NONE = { variant: "(no experiment)", model: "(no target)", alias: "(no alias)" };

  function renderTable(host, rows, group) {
    host.replaceChildren();
    if (!rows.length) return empty(host, "No requests in this range");
    const maxCost = Math.max(...rows.map((r) => Number(r.cost_usd)), 0);
    const table = el("table", null, null, host);
    const head = el("tr", null, null, el("thead", null, null, table));
    ["", "Requests", "Errors", "Input tok", "Output tok", "Spend"].forEach((h) => el("th", null, h, head));
    const body = el("tbody", null, null, table);
    rows
      .slice()
      .sort((a, b) => Number(b.cost_usd) - Number(a.cost_usd) || b.requests - a.requests)
      .forEach((r) => {
        const tr = el("tr", null, null, body);
        tr.dataset.group = r.group === null ? "" : r.group;
        const name = el("td", "name", r.group === null ? NONE[group] || "(none)" : r.group, tr);
        name.title = name.textContent;
        const cell = (field, text, cls) => {
          const td = el("td", "num" + (cls ? " " + cls : ""), text, tr);
          td.dataset.field = field;
          td.dataset.value = String(r[field]);
          return td;
        };
        cell("requests", fmt.count(r.requests));
        cell("errors", fmt.count(r.errors), r.errors ? "bad" : "muted");
        cell("input_tokens", fmt.count(r.input_tokens));
        cell("output_tokens", fmt.count(r.output_tokens));
        const spend = cell("cost_usd", fmt.usd(r.cost_usd), "spend");
        const bar = el("span", "share", null, spend);
        bar.style.width = (maxCost ? (100 * Number(r.cost_usd)) / maxCost : 0).toFixed(1) + "%";
      });
    host.dataset.group = group;
  }

  function renderBudgets(rows) {
    const host = $("budgets");
    host.replaceChildren();
    if (!rows.length) return empty(host, "No keys yet: create one with strata keys create");
    rows
      .slice()
      .sort((a, b) => (b.used ?? -1) - (a.used ?? -1))
      .forEach((b) => {
        const row = el("div", "budget", null, host);
        row.dataset.kind = b.kind;
        row.dataset.id = b.id;
        const title = el("div", "budget-title", null, row);
        el("span", "name", b.kind === "tenant" ? "tenant " + b.id : b.name || b.id, title);
        el("span", "muted small", b.kind === "key" ? `${b.tenant} · ${b.id}` : b.period, title);
        const track = el("div", "track", null, row);
        const fill = el("div", "fill", null, track);
        const used = b.used === null ? 0 : Math.min(1, b.used);
        fill.style.width = (100 * used).toFixed(1) + "%";
        fill.classList.add(b.used === null ? "none" : b.used >= 0.9 ? "c-err" : b.used >= 0.7 ? "c-warn" : "c-ok");
        const text = b.budget_usd === null ? `${fmt.usd(b.spent_usd)} spent · no budget` : `${fmt.usd(b.spent_usd)} of ${fmt.usd(b.budget_usd)} (${fmt.percent(b.used)}) · ${b.period}`;
        const value = el("div", "budget-value num small", text, row);
        value.dataset.spent = b.spent_usd;
      });
  }

  function renderExperiments(rows) {
    const host = $("experiments");
    host.replaceChildren();
    legend($("legend-experiments"), [
      { label: "weight share", color: "c-p50" },
      { label: "served in range", color: "c-p95" },
    ]);
    if (!rows.length) return empty(host, "No alias runs an experiment");
    rows.forEach((x) => {
      const block = el("div", "experiment", null, host);
      block.dataset.alias = x.alias;
      const title = el("div", "budget-title", null, block);
      el("span", "name", x.alias, title);
      el("span", "muted small", "sticky by " + x.sticky_by, title);
      const served = x.variants.reduce((a, v) => a + v.served, 0);
      x.variants.forEach((v) => {
        const line = el("div", "arm", null, block);
        line.dataset.variant = v.name;
        line.dataset.share = String(v.share);
        line.dataset.served = String(v.served);
        el("span", "arm-name", v.name, line);
        const bars = el("span", "arm-bars", null, line);
        const a = el("span", "arm-fill c-p50", null, el("span", "hbar-track", null, bars));
        a.style.width = (100 * v.share).toFixed(1) + "%";
        const b = el("span", "arm-fill c-p95", null, el("span", "hbar-track", null, bars));
        b.style.width = (served ? (100 * v.served) / served : 0).toFixed(1) + "%";
        el("span", "num small", `${fmt.percent(v.share)} · ${fmt.count(v.served)} served`, line);
      });
      const verdict = el("div", "verdict muted small", null, block);
      verdict.dataset.testid = "verdict";
      // The statistics route (issue 12) gives the verdict; the panel stands without it.
      getJson("/admin/experiments/" + encodeURIComponent(x.alias) + "/stats", {})
        .then((stats) => {
          verdict.textContent = "Verdict: " + stats.verdict.text;
          verdict.dataset.kind = stats.verdict.kind;
        })
        .catch(() => verdict.remove());
    });
  }

  function renderBreakers(rows) {
    const host = $("breakers");
    host.replaceChildren();
    if (!rows.length) return empty(host, "No target has been called since this process started");
    const list = el("div", "pills", null, host);
    rows.forEach((b) => {
      const pill = el("span", "pill " + b.state, null, list);
      pill.dataset.state = b.state;
      el("span", "dot", null, pill);
      el("span", "target", b.target, pill).title = b.target;
      el("span", "state", b.state.replace("_", "-"), pill);
    });
  }

  // -- sign-in and controls -------------------------------------------------------------------
  function showApp(show) {
    $("signin").hidden = show;
    $("app").hidden = !show;
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    clearInterval(state.timer);
    state.last = null;
    showApp(false);
    $("signin-error").textContent = message || "";
    $("signin-error").hidden = !message;
    $("key").value = "";
    $("key").focus();
  }

  async function signIn(evt) {
    evt.preventDefault();
    const key = $("key").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY, key);
    $("signin-button").disabled = true;
    try {
      await getJson("/admin/dashboard/summary", { since: (Date.now() / 1000 - 60).toFixed(3) });
    } catch (err) {
      $("signin-button").disabled = false;
      sessionStorage.removeItem(KEY);
      $("signin-error").textContent = err.status === 401 ? "That key was not accepted." : "Sign-in failed: " + err.message;
      $("signin-error").hidden = false;
      return;
    }
    $("signin-button").disabled = false;
    start();
  }

  function markRange() {
    document.querySelectorAll("#ranges button").forEach((b) => b.classList.toggle("active", Number(b.dataset.range) === state.range));
  }

  function start() {
    showApp(true);
    markRange();
    refresh();
    schedule();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", () => signOut());
    $("theme").addEventListener("click", toggleTheme);
    $("auto").addEventListener("change", schedule);
    $("tenant-filter").addEventListener("change", (evt) => {
      state.tenant = evt.target.value;
      refresh();
    });
    document.querySelectorAll("#ranges button").forEach((b) =>
      b.addEventListener("click", () => {
        state.range = Number(b.dataset.range);
        sessionStorage.setItem("strata.dashboard.range", String(state.range));
        markRange();
        refresh();
      })
    );
    let resize = null;
    window.addEventListener("resize", () => {
      clearTimeout(resize);
      resize = setTimeout(() => state.last && render(state.last.summary, state.last.series), 150);
    });
    if (sessionStorage.getItem(KEY)) start();
    else signOut();
  });
})();
