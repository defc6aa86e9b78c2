/* The dashboard: reads the API with the visitor's key (kept in this tab's sessionStorage, sent as
   X-API-Key) and draws every section from the published payloads. The DOM is built with
   createElement/textContent only (the page's CSP enforces Trusted Types: no HTML strings). */
(function () {
  "use strict";
  const I = window.NHIS_I18N;
  const C = window.NHIS_CHARTS;
  const $ = (id) => document.getElementById(id);
  const root = document.documentElement;
  const KEY_STORE = "nhis-key";
  const LANG_STORE = "nhis-lang";
  const POP_STORE = "nhis-population";
  const TERMINAL = ["succeeded", "failed", "cancelled"];

  function stored(name) {
    try { return window.sessionStorage.getItem(name); } catch (e) { return null; }
  }
  function store(name, value) {
    try {
      if (value === null) window.sessionStorage.removeItem(name);
      else window.sessionStorage.setItem(name, value);
    } catch (e) { /* storage refused (private mode): the key stays in memory only */ }
  }

  const navLang = (navigator.language || "en").toLowerCase().startsWith("ko") ? "ko" : "en";
  const state = {
    key: stored(KEY_STORE) || "",
    keyName: null,
    scopes: [],
    publicStats: root.dataset.publicStats === "true",
    lang: stored(LANG_STORE) || navLang,
    population: stored(POP_STORE) === "complete_panel" ? "complete_panel" : "all",
    year: null,
    cache: new Map(),
    overview: null,
    byPopulation: {},
    trendsIndex: null,
    trends: new Map(),
    trendFactor: "flag_hypertension",
    trendSex: "all",
    provinceFactor: "flag_hypertension",
    person: null,
    jobs: null,
    rejects: null,
    loads: 0,
  };

  // --- text ------------------------------------------------------------------------------------

  function t(key, params) {
    let text = (I[state.lang] && I[state.lang][key]) || I.en[key] || key;
    if (params) text = text.replace(/\{(\w+)\}/g, (m, name) => (params[name] === undefined || params[name] === null ? m : String(params[name])));
    return text;
  }
  function named(table, key, fallback) {
    const entry = I[table][key];
    return entry ? entry[state.lang === "ko" ? 1 : 0] : (fallback || String(key).replace(/_/g, " "));
  }
  const locale = () => (state.lang === "ko" ? "ko-KR" : "en-GB");
  function int(n) {
    return n === null || n === undefined ? t("withheld") : new Intl.NumberFormat(locale()).format(n);
  }
  function pct(p, digits) {
    if (p === null || p === undefined) return t("withheld");
    const d = digits === undefined ? 1 : digits;
    return new Intl.NumberFormat(locale(), {minimumFractionDigits: d, maximumFractionDigits: d}).format(p) + "%";
  }
  function num(v) {
    return v === null || v === undefined ? "—" : new Intl.NumberFormat(locale(), {maximumFractionDigits: 2}).format(v);
  }
  /** Band k covers ages 5k-5 to 5k-1; band 18 is 85 and over. */
  function band(code) {
    if (code >= 18) return state.lang === "ko" ? "85세 이상" : "85+";
    const lo = 5 * code - 5;
    return state.lang === "ko" ? `${lo}–${lo + 4}세` : `${lo}–${lo + 4}`;
  }
  function bandTick(code) {
    if (code >= 18) return "85+";
    return String(5 * code - 5);
  }
  function sexName(sex) {
    return sex === "M" ? t("men") : sex === "F" ? t("women") : t("all_sexes");
  }
  function when(iso) {
    if (!iso) return "—";
    const d = new Date(/Z|[+-]\d\d:\d\d$/.test(iso) ? iso : iso + "Z");
    return isNaN(d) ? iso : d.toLocaleString(locale(), {dateStyle: "medium", timeStyle: "short"});
  }

  // --- DOM -------------------------------------------------------------------------------------

  function h(tag, attrs) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (let i = 2; i < arguments.length; i += 1) append(node, arguments[i]);
    return node;
  }
  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) child.forEach((c) => append(node, c));
    else node.append(child instanceof Node ? child : String(child));
  }
  function table(target, head, rows, caption) {
    const cap = caption ? h("caption", {text: caption}) : null;
    target.replaceChildren(
      ...(cap ? [cap] : []),
      h("thead", {}, h("tr", {}, head.map((c) => h("th", {scope: "col", text: c})))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => (i === 0 ? h("th", {scope: "row"}, c) : h("td", {}, c)))))),
    );
  }
  function withheldSpan() {
    return h("span", {class: "withheld", text: t("withheld")});
  }
  function chartWidth(node, fallback) {
    const w = node.clientWidth;
    return w > 0 ? w : fallback;
  }
  function setStatus(node, message, isError) {
    node.textContent = message || "";
    node.classList.toggle("error", Boolean(isError));
  }

  // --- API -------------------------------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(status, body) {
      const err = body && body.error;
      super(err ? t("error_generic", {status, code: err.code, message: err.message}) : `HTTP ${status}`);
      this.status = status;
      this.body = err || null;
    }
  }

  async function api(path, options) {
    const opts = options || {};
    const headers = {Accept: "application/json"};
    if (state.key) headers["X-API-Key"] = state.key;
    let body;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    }
    let response;
    try {
      response = await fetch(path, {method: opts.method || "GET", headers, body, cache: "no-store", credentials: "omit"});
    } catch (e) {
      throw new Error(t("network_error"));
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiFailure(response.status, data);
    return data;
  }

  function statsUrl(endpoint, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined) q.set(k, v);
    const qs = q.toString();
    return `/api/v1/stats/${endpoint}${qs ? "?" + qs : ""}`;
  }

  /** One request per URL until the cache is dropped (a new key, a finished load). */
  function stats(endpoint, params) {
    const url = statsUrl(endpoint, params);
    if (!state.cache.has(url)) {
      const pending = api(url);
      state.cache.set(url, pending);
      pending.catch(() => state.cache.delete(url));
    }
    return state.cache.get(url);
  }

  const has = (scope) => state.scopes.includes(scope) || (scope !== "records:read" && state.scopes.includes("admin"));
  const canStats = () => has("stats:read") || (state.publicStats && !state.key);

  // --- access ----------------------------------------------------------------------------------

  async function useKey(key) {
    state.key = key;
    state.cache.clear();
    state.scopes = [];
    setStatus($("status"), t("key_checking"));
    try {
      const who = await api("/api/v1/auth/whoami");
      state.keyName = who.name;
      state.scopes = who.scopes || [];
      store(KEY_STORE, key);
      setStatus($("status"), t("key_ok", {name: who.name, scopes: state.scopes.join(", ")}));
      if (document.activeElement === $("key")) window.setTimeout(() => $("key-change").focus(), 0);
    } catch (e) {
      state.key = "";
      state.keyName = null;
      store(KEY_STORE, null);
      setStatus($("status"), t("key_bad", {message: e.message}), true);
    }
    applyAccess();
    await loadEverything();
  }

  function forgetKey() {
    state.key = "";
    state.keyName = null;
    state.scopes = [];
    state.cache.clear();
    state.person = null;
    $("key").value = "";
    store(KEY_STORE, null);
    setStatus($("status"), t("key_forgotten"));
    renderPerson();
    applyAccess();
    loadEverything();
  }

  function applyAccess() {
    const allowed = {stats: canStats(), simulate: has("simulate")};
    const scopeOf = {stats: "stats:read", simulate: "simulate"};
    document.querySelectorAll("[data-needs]").forEach((node) => { node.hidden = !allowed[node.dataset.needs]; });
    document.querySelectorAll("[data-lock]").forEach((node) => {
      const what = node.dataset.lock;
      node.hidden = allowed[what];
      node.textContent = what === "stats" && !state.key ? t("key_needed") : t("needs_scope", {scope: scopeOf[what]});
    });
    const active = Boolean(state.keyName);  // a key was accepted: show it as one line, not the form
    $("key-form").hidden = active;
    $("key-actions").hidden = !active;
    const etl = has("etl:write");
    $("etl").hidden = !etl;
    $("etl-link").hidden = !etl;
    $("year").disabled = !allowed.stats;
    if (!state.key && state.publicStats) setStatus($("status"), t("key_public"));
  }

  // --- loading ---------------------------------------------------------------------------------

  function busy(on) {
    $("main").setAttribute("aria-busy", on ? "true" : "false");
    document.body.dataset.state = on ? "loading" : "ready";
  }

  /** Load what the access allows; body[data-loaded] counts finished loads (tests wait on it). */
  async function loadEverything() {
    busy(true);
    try {
      const work = [];
      if (canStats()) work.push(loadStats());
      if (has("etl:write")) work.push(loadJobs());
      await Promise.all(work);
    } finally {
      state.loads += 1;
      document.body.dataset.loaded = String(state.loads);
      busy(false);
    }
  }

  async function loadStats() {
    try {
      const overview = await stats("overview", state.year ? {year: state.year} : {});
      state.overview = overview;
      state.year = overview.data.year;
      fillYears(overview.data.years_loaded || [overview.data.year]);
      renderOverview();
      renderFooter();
      const [, index] = await Promise.all([loadPopulation(), stats("trends")]);
      state.trendsIndex = index;
      fillFactorSelect($("trend-factor"), index.data.factors.map((f) => f.factor), state.trendFactor);
      await loadTrends();
      if (state.key || state.publicStats) setStatus($("status"), statusLine());
    } catch (e) {
      setStatus($("status"), e.message, true);
    }
  }

  function statusLine() {
    const version = state.overview ? state.overview.meta.dataset_version : "";
    const who = state.keyName ? t("key_ok", {name: state.keyName, scopes: state.scopes.join(", ")}) + " " : "";
    return who + t("loaded", {version});
  }

  async function loadPopulation() {
    const params = {year: state.year, population: state.population};
    const [factors, risk, region] = await Promise.all([
      stats("factors", params), stats("risk", params), stats("region", params),
    ]);
    state.byPopulation[state.population] = {factors, risk, region};
    renderPopulationExplain();
    renderPrevalence();
    renderRisk();
    renderProvinces();
    document.body.dataset.population = state.population;
  }

  /** Every factor's trend (the prevalence table needs each one's standardised rate), three at a time. */
  async function loadTrends() {
    const names = state.trendsIndex.data.factors.map((f) => f.factor);
    const order = [state.trendFactor, ...names.filter((n) => n !== state.trendFactor)];
    let next = 0;
    let pendingRender = false;
    const redraw = () => {
      if (pendingRender) return;
      pendingRender = true;
      window.requestAnimationFrame(() => { pendingRender = false; renderPrevalenceTable(); });
    };
    const worker = async () => {
      while (next < order.length) {
        const name = order[next];
        next += 1;
        const payload = await stats("trends", {factor: name});
        state.trends.set(name, payload);
        if (name === state.trendFactor) renderTrends();
        redraw();
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    renderPrevalenceTable();
    renderTrends();
  }

  function fillYears(years) {
    const select = $("year");
    select.replaceChildren(...years.slice().reverse().map((y) => h("option", {value: y, text: String(y)})));
    select.value = String(state.year);
  }

  function fillFactorSelect(select, names, selected) {
    select.replaceChildren(...names.map((n) => h("option", {value: n, text: named("factors", n)})));
    select.value = names.includes(selected) ? selected : names[0];
  }

  // --- overview --------------------------------------------------------------------------------

  function card(title, value, note) {
    return h("div", {class: "card"}, h("span", {class: "card-title", text: title}), h("b", {text: value}),
      note ? h("span", {class: "card-note", text: note}) : null);
  }

  function renderOverview() {
    const ov = state.overview;
    if (!ov) return;
    const d = ov.data;
    const m = ov.meta;
    const etl = d.last_etl || m.last_etl;
    $("overview-cards").replaceChildren(
      card(t("ov_people", {year: d.year}), int(d.people.n)),
      card(t("ov_years"), (d.years_loaded || []).join(", ")),
      card(t("ov_refresh"), when(m.computed_at), m.stale ? t("ov_stale") : t("ov_fresh")),
      etl ? card(t("ov_etl"), when(etl.finished_at), t("ov_etl_text", {job: etl.job_id, rows: int(etl.rows_loaded), rejected: int(etl.rows_rejected)})) : null,
      card(t("ov_rule"), m.rule_version || "—"),
    );
    const measured = Object.entries(d.measurements).map(([name, cell]) => ({
      label: named("measures", name), value: cell.percent, text: pct(cell.percent),
      tip: `${named("measures", name)}: ${pct(cell.percent)} (${int(cell.n)})`, cls: "neutral",
    }));
    const box = $("chart-measured");
    box.replaceChildren(C.hbar({
      name: "measured", items: measured, max: 100, width: chartWidth(box, 520), withheld: t("withheld"),
      description: t("ov_measured"),
    }));
    const ages = d.age.map((a) => ({
      label: band(a.age_group), value: a.percent, text: `${int(a.n)} (${pct(a.percent)})`,
      tip: `${band(a.age_group)}: ${int(a.n)}`, cls: "neutral",
    }));
    const ageBox = $("chart-age");
    ageBox.replaceChildren(C.hbar({
      name: "age-distribution", items: ages, width: chartWidth(ageBox, 520), withheld: t("withheld"),
      description: t("ov_age"), valueWidth: 120,
    }));
  }

  function renderFooter() {
    const meta = state.overview ? state.overview.meta : null;
    $("footer-text").textContent = t("footer", {low: meta ? meta.small_cell_min - 1 : 10});
    $("footer-rule").textContent = meta ? t("r_rule_version", {version: meta.rule_version}) : "";
  }

  // --- prevalence ------------------------------------------------------------------------------

  function renderPopulationExplain() {
    const text = t(state.population === "all" ? "pop_all_explain" : "pop_complete_panel_explain");
    $("population-explain").textContent = text;
    const name = `${t("denominator")}: ${t(state.population === "all" ? "pop_all" : "pop_complete_panel")}`;
    $("prevalence-denominator").textContent = text;  // the explanation names the denominator first
    $("risk-denominator").textContent = name;
    $("province-denominator").textContent = name;
  }

  /** The share a flag block shows under the chosen denominator (MetS is complete-panel only). */
  function share(block) {
    if (!block || block.available === false) return null;
    if (block.complete_panel_only || state.population === "complete_panel") return block.percent;
    return block.percent_positive;
  }

  function current() {
    return state.byPopulation[state.population];
  }

  function legend(target, entries) {
    target.replaceChildren(...entries.map(([cls, text, dashed]) => h("li", {}, C.swatch(cls, dashed), " ", text)));
  }

  function renderPrevalence() {
    const data = current();
    if (!data) return;
    const f = data.factors.data;
    legend($("prevalence-legend"), [["men", t("men")], ["women", t("women")]]);
    const bands = [...new Set(f.breakdown.map((b) => b.age_group))].sort((a, b) => a - b);
    const grid = $("prevalence-grid");
    const width = Math.max(240, Math.min(420, grid.clientWidth > 0 ? Math.floor(grid.clientWidth / Math.max(1, Math.floor(grid.clientWidth / 300))) - 16 : 300));
    const figures = Object.keys(f.flags).map((flag) => {
      const series = ["M", "F"].map((sex) => ({
        cls: sex === "M" ? "men" : "women",
        points: bands.map((code, i) => {
          const row = f.breakdown.find((b) => b.sex === sex && b.age_group === code);
          const value = row ? share(row.flags[flag]) : null;
          return {i, y: value, tip: `${sexName(sex)} ${band(code)}: ${pct(value)}`};
        }),
      }));
      const shown = series.some((s) => s.points.some((p) => p.y !== null && p.y !== undefined));
      const title = named("factors", flag);
      const badge = f.flags[flag] && f.flags[flag].complete_panel_only ? h("span", {class: "badge", text: t("panel_only")}) : null;
      const body = shown
        ? C.lines({
          name: `prevalence-${flag}`, x: bands.map(bandTick), showTick: (i) => bands[i] % 2 === 1 || bands[i] === 18,
          series, width, height: 190, xTitle: t("age_axis"),
          description: `${title}: ${t("men")} ${summary(series[0])}; ${t("women")} ${summary(series[1])}`,
        })
        : h("p", {class: "withheld", text: t("none_published")});
      return h("figure", {class: "small"}, h("figcaption", {}, h("span", {text: title}), badge), body);
    });
    grid.replaceChildren(...figures);
    renderPrevalenceTable();
  }

  function summary(series) {
    const shown = series.points.filter((p) => p.y !== null && p.y !== undefined);
    if (!shown.length) return t("withheld");
    const lo = shown.reduce((a, b) => (b.y < a.y ? b : a));
    const hi = shown.reduce((a, b) => (b.y > a.y ? b : a));
    return `${pct(lo.y)} – ${pct(hi.y)}`;
  }

  function standardised(flag, sex) {
    const trend = state.trends.get(flag);
    if (!trend) return null;
    return trend.data.series.find((s) => s.year === state.year && s.sex === sex && s.code === "all") || null;
  }

  function stdCell(flag, sex) {
    const entry = standardised(flag, sex);
    if (!entry) return state.trends.has(flag) ? "—" : "…";
    const std = entry.age_standardised;
    if (std.percent === null || std.percent === undefined) {
      return h("span", {class: "withheld", title: std.reason || "", text: std.suppressed ? t("withheld") : "—"});
    }
    return h("span", {title: `95%: ${pct(std.ci_low)} – ${pct(std.ci_high)}`, text: pct(std.percent)});
  }

  function renderPrevalenceTable() {
    const data = current();
    if (!data) return;
    const f = data.factors.data;
    $("prevalence-table-h").textContent = t("prev_table", {year: state.year});
    const all = state.population === "all";
    const head = [t("col_factor"), t("col_crude"), t("col_n"), all ? t("col_unknown") : t("col_not_in_panel"),
      `${t("col_std")}: ${t("all_sexes")}`, t("men"), t("women")];
    const rows = Object.entries(f.flags).map(([flag, block]) => {
      const panelOnly = block.complete_panel_only || !all;
      const value = share(block);
      const crude = value === null || value === undefined ? withheldSpan() : pct(value);
      const n = panelOnly ? int(block.n) : int(f.people.n);
      const extra = panelOnly ? int(block.not_in_panel) : pct(block.percent_unknown);
      const name = block.complete_panel_only && all ? [named("factors", flag), " ", h("span", {class: "badge", text: t("panel_only")})] : named("factors", flag);
      return [name, crude, n, extra, stdCell(flag, "all"), stdCell(flag, "M"), stdCell(flag, "F")];
    });
    table($("prevalence-table"), head, rows);
  }

  // --- risk categories -------------------------------------------------------------------------

  function renderRisk() {
    const data = current();
    if (!data) return;
    const r = data.risk.data;
    const box = $("risk-charts");
    const width = box.clientWidth > 700 ? Math.floor(box.clientWidth / 2) - 24 : chartWidth(box, 520);
    const figures = ["screening_risk_group", "atp3_risk_category"].map((column) => {
      const grouping = r.groupings[column];
      const items = Object.entries(grouping.groups || {}).map(([group, cell]) => ({
        label: named("groups", group), value: cell.percent,
        text: cell.percent === null || cell.percent === undefined ? t("withheld") : `${pct(cell.percent)} (${int(cell.n)})`,
        tip: `${named("groups", group)}: ${pct(cell.percent)}, ${int(cell.n)}`,
        cls: group === "INDETERMINATE" || group === "UNKNOWN" ? "muted-bar" : column === "atp3_risk_category" ? "atp3" : "screening",
      }));
      const panel = state.population === "complete_panel" && grouping.available !== false
        ? h("p", {class: "hint", text: t("panel_n", {n: int(grouping.n), rest: int(grouping.not_in_panel)})}) : null;
      const chart = grouping.available === false
        ? h("p", {class: "withheld", text: grouping.reason})
        : C.hbar({
          name: column === "atp3_risk_category" ? "risk-atp3" : "risk-screening", items, max: 100, width,
          withheld: t("withheld"), description: t(column), valueWidth: 120,
        });
      const mean = column === "screening_risk_group" && r.mean_risk_factor_count && r.mean_risk_factor_count.value !== null
        ? h("p", {class: "hint", text: t(r.mean_risk_factor_count.lower_bound ? "mean_rf_lower" : "mean_rf", {value: num(r.mean_risk_factor_count.value)})})
        : null;
      return h("figure", {class: "risk"}, h("figcaption", {}, h("h3", {text: t(column)}),
        h("span", {class: "hint", text: t(`${column}_desc`)})), chart, panel, mean);
    });
    box.replaceChildren(...figures);
  }

  // --- provinces -------------------------------------------------------------------------------

  function renderProvinces() {
    const data = current();
    if (!data) return;
    const provinces = data.region.data.provinces;
    const flags = provinces.length ? Object.keys(provinces[0].flags) : [];
    fillFactorSelect($("province-factor"), flags, state.provinceFactor);
    state.provinceFactor = $("province-factor").value;
    const values = provinces.map((p) => share(p.flags[state.provinceFactor]));
    const max = C.niceMax(Math.max(0, ...values.filter((v) => v !== null && v !== undefined)));
    const rows = provinces.map((p, i) => {
      const name = p.code === null ? t("prov_unknown") : (state.lang === "ko" ? p.name_ko : p.name_en) || p.name_en;
      const value = values[i];
      return [name, int(p.people.n), value === null || value === undefined ? withheldSpan() : pct(value),
        C.cellBar(value, max, "neutral", `${name}: ${pct(value)}`)];
    });
    table($("province-table"), [t("prov_col_name"), t("prov_col_people"), `${t("prov_col_share")}: ${named("factors", state.provinceFactor)}`, t("prov_col_bar")], rows);
  }

  // --- trends ----------------------------------------------------------------------------------

  function renderTrends() {
    const payload = state.trends.get(state.trendFactor);
    if (!payload) return;
    const d = payload.data;
    const years = d.years;
    const pick = (s) => years.map((year, i) => {
      const entry = d.series.find((e) => e.year === year && e.sex === state.trendSex && e.code === "all");
      const rate = entry ? entry[s] : null;
      const y = rate ? rate.percent : null;
      return {i, y, lo: rate ? rate.ci_low : null, hi: rate ? rate.ci_high : null,
        tip: `${year} ${t(s === "crude" ? "trend_crude" : "trend_std")}: ${pct(y)}${rate && rate.ci_low !== null && rate.ci_low !== undefined ? ` (95% ${pct(rate.ci_low)} – ${pct(rate.ci_high)})` : ""}`};
    });
    const cls = state.trendSex === "M" ? "men" : state.trendSex === "F" ? "women" : "both";
    const series = [
      {cls, points: pick("crude")},
      {cls: `${cls} std`, dashed: true, points: pick("age_standardised")},
    ];
    legend($("trend-legend"), [[cls, t("trend_crude")], [`${cls} std`, t("trend_std"), true]]);
    const box = $("chart-trend");
    const title = named("factors", d.factor, d.label);
    box.replaceChildren(C.lines({
      name: "trend", x: years.map(String), series, width: chartWidth(box, 640), height: 260, xTitle: t("year_axis"),
      description: `${title}, ${sexName(state.trendSex)}: ${t("trend_crude")} ${summary(series[0])}; ${t("trend_std")} ${summary(series[1])}`,
    }));
    $("trend-one-year").hidden = years.length > 1;
    table($("coverage-table"), [t("coverage_col_year"), t("coverage_col_people"), t("coverage_col_n"), t("coverage_col_share")],
      d.coverage.map((c) => [String(c.year), int(c.people.n), int(c.n), pct(c.percent)]));
    const notes = d.notes.map((n) => h("li", {}, h("b", {text: `${n.year}: `}), n.note,
      n.source ? [" (", sourceLink(n.source), ")"] : null));
    $("trend-notes").replaceChildren(...(notes.length ? notes : [h("li", {class: "hint", text: t("no_notes")})]));
  }

  function sourceLink(source) {
    const match = /(https?:\/\/\S+)$/.exec(source);
    if (!match) return h("span", {text: source});
    return h("a", {href: match[1], rel: "noreferrer noopener", text: `${t("source")}: ${source.slice(0, match.index).trim() || match[1]}`});
  }

  // --- check a person --------------------------------------------------------------------------

  const NUMBER_FIELDS = ["age", "height_cm", "weight_kg", "waist_cm", "sbp", "dbp", "fasting_glucose",
    "total_cholesterol", "hdl", "ldl", "triglycerides", "hemoglobin", "creatinine"];

  async function checkPerson(event) {
    event.preventDefault();
    const form = $("person-form");
    if (!form.reportValidity()) return;
    const person = {sex: form.elements.sex.value, smoking: form.elements.smoking.value};
    for (const name of NUMBER_FIELDS) {
      const raw = form.elements[name].value.trim();
      if (raw !== "") person[name] = Number(raw);
    }
    if (form.elements.drinking.value !== "") person.drinking = form.elements.drinking.value === "true";
    setStatus($("person-status"), t("checking"));
    try {
      state.person = await api("/api/v1/simulate?include=what_if,explanations", {method: "POST", json: person});
      renderPerson();
      const r = state.person;
      setStatus($("person-status"), `${t("result")}: ${t("r_screening")} ${named("groups", r.screening_risk_group)}; ${t("r_atp3")} ${named("groups", r.atp3_risk_category)}; ${t("r_cvd")} ${r.cvd_10y.percent === null ? "—" : pct(r.cvd_10y.percent)}`);
      $("result-h").focus();
    } catch (e) {
      state.person = null;
      $("person-result").hidden = true;
      const fields = e.body && e.body.details && e.body.details.fields;
      const detail = fields ? " — " + Object.entries(fields).map(([k, v]) => `${k}: ${[].concat(v).join(" ")}`).join("; ") : "";
      setStatus($("person-status"), t("r_error", {message: e.message + detail}), true);
    }
  }

  function yesNo(value) {
    if (value === true) return ["yes", t("yes")];
    if (value === false) return ["no", t("no")];
    return ["unknown", t("unknown")];
  }

  function categoryValue(value) {
    if (value === null || value === undefined) return t("unknown");
    if (typeof value === "boolean") return value ? t("yes") : t("no");
    if (typeof value === "number") return num(value);
    return named("values", value, value);
  }

  /** What-if values are numbers, except smoking, which moves between answer codes (1 never,
      2 former, 3 current). */
  function inputValue(input, value) {
    if (input === "smoking") {
      const word = {1: "never", 2: "former", 3: "current"}[value];
      return word ? t(`f_smoking_${word}`) : num(value);
    }
    return num(value);
  }

  function renderPerson() {
    const r = state.person;
    const box = $("person-result");
    if (!r) { box.hidden = true; return; }
    const cvd = r.cvd_10y;
    const cvdText = cvd.percent === null || cvd.percent === undefined ? t("r_cvd_none", {reason: cvd.reason || "—"}) : pct(cvd.percent, 1);
    const head = h("div", {class: "result-head"},
      h("div", {class: "big"}, h("span", {class: "card-title", text: t("r_screening")}), h("b", {"data-field": "screening_risk_group", text: named("groups", r.screening_risk_group)}),
        h("span", {class: "card-note", text: t("r_count", {n: r.risk_factor_count})})),
      h("div", {class: "big"}, h("span", {class: "card-title", text: t("r_atp3")}), h("b", {"data-field": "atp3_risk_category", text: named("groups", r.atp3_risk_category)})),
      h("div", {class: "big"}, h("span", {class: "card-title", text: t("r_cvd")}), h("b", {"data-field": "cvd_10y", text: cvdText}),
        h("span", {class: "card-note", text: t("r_cvd_caveat")})),
      h("div", {class: "big"}, h("span", {class: "card-title", text: t("r_bmi")}), h("b", {text: num(r.bmi)})),
    );
    const flags = h("ul", {class: "chips", "data-field": "flags"}, Object.entries(r.flags).map(([flag, value]) => {
      const [cls, word] = yesNo(value);
      return h("li", {class: `chip ${cls}`}, h("span", {class: "chip-mark", "aria-hidden": "true", text: cls === "yes" ? "●" : cls === "no" ? "○" : "?"}), ` ${named("factors", flag)}: ${word}`);
    }));
    const mets = r.metabolic_syndrome || {};
    const metsText = `${categoryValue(mets.verdict)} (${["waist", "triglycerides", "hdl", "blood_pressure", "glucose"]
      .filter((k) => k in mets).map((k) => `${named("categories", k === "glucose" ? "glucose_mets" : k, k)} ${categoryValue(mets[k])}`).join(", ")})`;
    const cats = h("dl", {class: "pairs", "data-field": "categories"},
      Object.entries(r.categories).filter(([k]) => k !== "egfr_reason").map(([k, v]) => [h("dt", {text: named("categories", k)}), h("dd", {text: categoryValue(v)})]),
      h("dt", {text: t("r_mets")}), h("dd", {text: metsText}));
    const peer = r.peer || {};
    const peerRows = Object.entries(peer.measurements || {}).map(([name, p]) => [
      named("measures", name), num(p.value),
      p.percentile === null || p.percentile === undefined ? h("span", {class: "withheld", text: p.reason || t("r_peer_none")}) : String(p.percentile),
      p.n === undefined ? "—" : int(p.n),
    ]);
    const peerTable = h("table", {"data-field": "peers"});
    if (peer.available === false || !peerRows.length) {
      peerTable.replaceChildren(h("caption", {text: t("r_peer_none")}));
    } else {
      table(peerTable, [t("r_peer_col_measure"), t("r_peer_col_value"), t("r_peer_col_pct"), t("r_peer_col_n")], peerRows);
    }
    const whatIf = (r.what_if || []).map((w) => {
      const parts = [t("r_whatif_item", {input: named("measures", w.input), current: inputValue(w.input, w.current), target: inputValue(w.input, w.target)})];
      for (const also of w.also || []) parts.push(t("r_whatif_item", {input: named("measures", also.input), current: inputValue(also.input, also.current), target: inputValue(also.input, also.target)}));
      const effects = [];
      if (w.factor_after === false) effects.push(t("r_whatif_turns_off", {factor: named("factors", w.factor)}));
      if (w.changes_group) effects.push(t("r_whatif_group", {group: named("groups", w.screening_risk_group_after)}));
      if (w.cvd_10y_after !== null && w.cvd_10y_after !== undefined && cvd.percent !== null && cvd.percent !== undefined) {
        let line = t("r_whatif_cvd", {before: pct(cvd.percent), after: pct(w.cvd_10y_after)});
        if (w.cvd_10y_after_if_treated !== null && w.cvd_10y_after_if_treated !== undefined) line += " " + t("r_whatif_treated", {value: pct(w.cvd_10y_after_if_treated)});
        effects.push(line);
      }
      return h("li", {}, h("b", {text: parts.join(", ")}), effects.length ? `: ${effects.join("; ")}` : "");
    });
    const explanations = (r.explanations || []).map((x) => h("li", {text: x.text}));
    const peerTitle = t("r_peers", {sex: sexName(peer.sex || r.input.sex), band: peer.age_group ? band(peer.age_group) : (r.age && r.age.age_group ? band(r.age.age_group) : "—")});
    box.replaceChildren(
      h("h3", {id: "result-h", tabindex: "-1", text: t("result")}),
      head,
      h("p", {class: "hint"}, h("span", {text: cvd.caveat || ""})),
      h("h4", {text: t("r_flags")}), flags,
      h("h4", {text: t("r_categories")}), cats,
      h("h4", {text: peerTitle}), h("div", {class: "table-wrap"}, peerTable),
      h("h4", {text: t("r_whatif")}), whatIf.length ? h("ul", {class: "whatif", "data-field": "what_if"}, whatIf) : h("p", {class: "hint", text: t("r_whatif_none")}),
      h("details", {}, h("summary", {text: t("r_explanations")}), h("ul", {class: "explanations", "data-field": "explanations"}, explanations)),
      h("p", {class: "disclaimer", text: r.disclaimer}),
      h("p", {class: "hint", text: t("r_rule_version", {version: r.rule_version})}),
    );
    box.hidden = false;
  }

  // --- ETL -------------------------------------------------------------------------------------

  async function loadJobs() {
    try {
      const body = await api("/api/v1/etl/jobs?limit=20");
      state.jobs = body.data;
      renderJobs();
    } catch (e) {
      setStatus($("etl-status"), e.message, true);
    }
  }

  function renderJobs() {
    if (!state.jobs) return;
    const target = $("jobs-table");
    if (!state.jobs.length) {
      target.replaceChildren(h("caption", {text: t("jobs_none")}));
      return;
    }
    table(target, [t("job_col_id"), t("job_col_file"), t("job_col_year"), t("job_col_status"), t("job_col_loaded"),
      t("job_col_rejected"), t("job_col_finished"), t("job_col_rejects")], state.jobs.map((job) => [
      String(job.job_id), job.file || "—", String(job.year || "—"),
      h("span", {class: `state ${job.status}`, text: named("phases", job.status, job.status)}),
      int(job.progress.rows_loaded), `${int(job.progress.rows_rejected)} / ${int(job.progress.cells_rejected)}`,
      when(job.timings.finished_at),
      h("button", {type: "button", class: "secondary small", "aria-label": t("job_show_rejects", {job: job.job_id}),
        text: t("job_col_rejects"), onclick: () => showRejects(job.job_id)}),
    ]));
  }

  async function showRejects(jobId) {
    try {
      const body = await api(`/api/v1/etl/jobs/${jobId}/rejects?limit=100`);
      state.rejects = {jobId, rows: body.data};
      renderRejects();
      $("rejects-h").focus();
    } catch (e) {
      setStatus($("etl-status"), e.message, true);
    }
  }

  function renderRejects() {
    const heading = $("rejects-h");
    if (!state.rejects) { heading.hidden = true; return; }
    heading.hidden = false;
    heading.setAttribute("tabindex", "-1");
    heading.textContent = t("rejects", {job: state.rejects.jobId});
    const target = $("rejects-table");
    if (!state.rejects.rows.length) {
      target.replaceChildren(h("caption", {text: t("rejects_none")}));
      return;
    }
    table(target, [t("rej_col_line"), t("rej_col_column"), t("rej_col_reason"), t("rej_col_value")], state.rejects.rows.map((r) => [
      String(r.line_no), r.whole_row ? t("rej_whole_row") : (r.column || "—"), r.reason,
      r.raw_value === null || r.raw_value === undefined ? h("span", {class: "withheld", text: t("rej_hidden")}) : r.raw_value,
    ]));
  }

  function randomHex(bytes) {
    const data = new Uint8Array(bytes);
    window.crypto.getRandomValues(data);
    return Array.from(data, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function upload(event) {
    event.preventDefault();
    const file = $("etl-file").files[0];
    const status = $("etl-status");
    if (!file) { setStatus(status, t("etl_choose"), true); return; }
    const form = new FormData();
    form.append("file", file);
    const year = $("etl-year").value.trim();
    if (year) form.append("year", year);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/etl/jobs");
    xhr.setRequestHeader("X-API-Key", state.key);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("Idempotency-Key", `dashboard-${randomHex(16)}`);
    xhr.responseType = "json";
    const bar = $("upload-progress");
    bar.value = 0;
    setStatus($("etl-stats"), "");
    $("job-progress").value = 0;
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const percent = Math.round((100 * e.loaded) / e.total);
      bar.value = percent;
      setStatus(status, t("etl_uploading", {percent}));
    });
    xhr.addEventListener("load", () => {
      if (xhr.status === 202 && xhr.response) {
        bar.value = 100;
        followJob(xhr.response.job_id);
      } else {
        const failure = new ApiFailure(xhr.status, xhr.response);
        setStatus(status, t("etl_failed", {message: failure.message}), true);
      }
    });
    xhr.addEventListener("error", () => setStatus(status, t("etl_failed", {message: t("network_error")}), true));
    xhr.send(form);
  }

  async function followJob(jobId) {
    const status = $("etl-status");
    const bar = $("job-progress");
    for (;;) {
      let job;
      try {
        job = await api(`/api/v1/etl/jobs/${jobId}`);
      } catch (e) {
        setStatus(status, e.message, true);
        return;
      }
      const p = job.progress;
      const phase = named("phases", job.phase, job.phase);
      if (p.chunks_total) {
        bar.value = Math.round((100 * p.chunks_done) / p.chunks_total);
        setStatus(status, t("etl_progress", {job: jobId, phase, done: p.chunks_done, total: p.chunks_total, rows: int(p.rows_read)}));
      } else {
        bar.removeAttribute("value");  // indeterminate while the file is planned
        setStatus(status, t("etl_queued", {job: jobId, phase}));
      }
      if (TERMINAL.includes(job.status)) {
        bar.value = job.status === "succeeded" ? 100 : bar.value || 0;
        setStatus(status, t("etl_done", {job: jobId, status: named("phases", job.status, job.status), loaded: int(p.rows_loaded), rejected: int(p.rows_rejected)}), job.status !== "succeeded");
        await loadJobs();
        if (job.status === "succeeded") watchStats(jobId);
        return;
      }
      await new Promise((resolve) => window.setTimeout(resolve, 1000));
    }
  }

  /** After a load succeeds, the workers refresh the statistics: reload them once they include it. */
  async function watchStats(jobId) {
    const status = $("etl-stats");
    setStatus(status, t("etl_stats_wait", {job: jobId}));
    const tag = `job${jobId}`;
    for (let attempt = 0; attempt < 60; attempt += 1) {
      try {
        const overview = await api(statsUrl("overview", {}));
        if (overview.meta.dataset_version.split(/[;:]/).includes(tag)) {
          state.cache.clear();
          state.trends.clear();
          state.byPopulation = {};
          state.year = null;
          await loadEverything();
          setStatus(status, t("etl_stats_done", {job: jobId}));
          return;
        }
      } catch (e) { /* not published yet */ }
      await new Promise((resolve) => window.setTimeout(resolve, 2000));
    }
  }

  // --- language and wiring ---------------------------------------------------------------------

  function applyLanguage() {
    root.lang = state.lang;
    document.title = t("title");
    document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
    document.querySelectorAll("[data-i18n-aria-label]").forEach((node) => node.setAttribute("aria-label", t(node.dataset.i18nAriaLabel)));
    $("lang").setAttribute("lang", state.lang === "ko" ? "en" : "ko");
  }

  function renderAll() {
    applyLanguage();
    applyAccess();
    renderPopulationExplain();
    renderFooter();
    renderOverview();
    if (state.trendsIndex) fillFactorSelect($("trend-factor"), state.trendsIndex.data.factors.map((f) => f.factor), state.trendFactor);
    renderPrevalence();
    renderRisk();
    renderProvinces();
    renderTrends();
    renderPerson();
    renderJobs();
    renderRejects();
    if (state.overview && (state.key || state.publicStats) && !$("status").classList.contains("error")) setStatus($("status"), statusLine());
  }

  function init() {
    $("key").value = state.key;
    $("key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const key = $("key").value.trim();
      if (key) useKey(key);
    });
    $("key-forget").addEventListener("click", () => { forgetKey(); $("key").focus(); });
    $("key-change").addEventListener("click", () => {
      $("key-form").hidden = false;
      $("key").select();
      $("key").focus();
    });
    $("lang").addEventListener("click", () => {
      state.lang = state.lang === "ko" ? "en" : "ko";
      store(LANG_STORE, state.lang);
      renderAll();
    });
    document.querySelectorAll("input[name=population]").forEach((input) => {
      input.checked = input.value === state.population;
      input.addEventListener("change", async () => {
        if (!input.checked) return;
        state.population = input.value;
        store(POP_STORE, state.population);
        renderPopulationExplain();
        busy(true);
        try { await loadPopulation(); } catch (e) { setStatus($("status"), e.message, true); } finally { busy(false); }
      });
    });
    $("year").addEventListener("change", async () => {
      state.year = Number($("year").value);
      state.byPopulation = {};
      busy(true);
      try { await loadStats(); } finally { busy(false); }
    });
    $("trend-factor").addEventListener("change", async () => {
      state.trendFactor = $("trend-factor").value;
      try {
        if (!state.trends.has(state.trendFactor)) state.trends.set(state.trendFactor, await stats("trends", {factor: state.trendFactor}));
        renderTrends();
      } catch (e) {
        setStatus($("status"), e.message, true);
      }
    });
    document.querySelectorAll("input[name=trend-sex]").forEach((input) => input.addEventListener("change", () => {
      if (input.checked) { state.trendSex = input.value; renderTrends(); }
    }));
    $("province-factor").addEventListener("change", () => { state.provinceFactor = $("province-factor").value; renderProvinces(); });
    $("person-form").addEventListener("submit", checkPerson);
    $("etl-form").addEventListener("submit", upload);
    $("jobs-refresh").addEventListener("click", loadJobs);
    let lastWidth = $("main").clientWidth;
    if (window.ResizeObserver) {
      let timer = 0;
      new window.ResizeObserver(() => {
        window.clearTimeout(timer);
        timer = window.setTimeout(() => {
          const width = $("main").clientWidth;
          if (Math.abs(width - lastWidth) < 24) return;
          lastWidth = width;
          renderOverview(); renderPrevalence(); renderRisk(); renderTrends();
        }, 150);
      }).observe($("main"));
    }
    applyLanguage();
    renderPopulationExplain();
    renderFooter();
    applyAccess();
    if (state.key) useKey(state.key);
    else if (state.publicStats) loadEverything();
    else {
      setStatus($("status"), t("key_needed"));
      document.body.dataset.state = "ready";
    }
  }

  init();
})();
