// The built-in SIDRCE dashboard: polls /report and draws it with plain DOM and inline SVG.
// Telemetry strings (domain, hypothesis, reasons) are only ever set as textContent, never parsed as HTML.
"use strict";
(function () {
  const SVGNS = "http://www.w3.org/2000/svg";
  const TOKEN_KEY = "sidrce_token";
  const PALETTE = ["#3b6fd4", "#8e44ad", "#16a085", "#d35400", "#2c3e50", "#c0392b", "#7f8c8d", "#27ae60",
    "#b7950b", "#1abc9c", "#e84393", "#6c5ce7"];
  const HISTORY = 240; // samples of λ and FTI kept since the page opened

  const params = new URLSearchParams(location.search);
  // 1 s to a day: a browser's timer overflows past ~24.8 days and would fire at once, non-stop
  const asked = Number(params.get("refresh"));
  const refreshSeconds = Number.isFinite(asked) && asked > 0 ? Math.min(86400, Math.max(1, asked)) : 5;
  const samples = [];
  let timer = null;
  let renders = 0;

  // A token may arrive in the fragment (#token=...): fragments never reach a server or its logs.
  // Keep it for this tab only and take it out of the address bar.
  (function tokenFromFragment() {
    const frag = new URLSearchParams(location.hash.replace(/^#/, ""));
    const t = frag.get("token");
    if (t) {
      sessionStorage.setItem(TOKEN_KEY, t);
      window.history.replaceState(null, "", location.pathname + location.search);
    }
  })();

  const $ = (id) => document.getElementById(id);

  function fmt(x, digits) {
    if (x === null || x === undefined) return "–";
    const a = Math.abs(x);
    if (a !== 0 && (a < 1e-3 || a >= 1e7)) return x.toExponential(digits - 1);
    return Number(x.toPrecision(digits)).toString();
  }

  // a number on the page: rounded text for people, the exact value in data-value for machines
  function setNum(el, x, digits) {
    el.textContent = fmt(x, digits || 4);
    el.dataset.value = x === null || x === undefined ? "" : String(x);
  }

  function setGrade(el, grade) {
    el.className = "badge" + (grade ? " grade-" + grade : "");
    el.textContent = grade || "–";
    el.dataset.grade = grade || "";
  }

  function svg(tag, attrs, parent) {
    const el = document.createElementNS(SVGNS, tag);
    for (const k in attrs) el.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(el);
    return el;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  function size(el) {
    const r = el.getBoundingClientRect();
    return { w: Math.max(200, Math.round(r.width)), h: Math.max(100, Math.round(r.height)) };
  }

  // --- panels --------------------------------------------------------------------------------------
  function renderCards(rep) {
    setNum($("count"), rep.count, 12);
    $("groups-count").textContent = String(rep.groups.length);
    const rejected = Object.values(rep.rejected).reduce((a, b) => a + b, 0);
    setNum($("rejected-total"), rejected, 12);
    setNum($("fti-avg"), rep.fti_avg);
    setGrade($("grade-worst"), rep.fti_grade_worst);
    setNum($("lambda-effective"), rep.lambda_effective);
    setNum($("lambda-sibg"), rep.lambda.sibg);
    setNum($("lambda-days"), rep.lambda.days_since_change, 3);
    setNum($("median-cost"), rep.medians.infra_cost_usd);
    setNum($("median-qps"), rep.medians.qps);
    setNum($("median-latency"), rep.medians.latency_p95_ms);
    $("baseline-source").textContent = "(" + rep.baseline.source + ")";
    setNum($("baseline-cost"), rep.baseline.infra_cost_usd);
    setNum($("baseline-qps"), rep.baseline.qps);
    setNum($("baseline-latency"), rep.baseline.latency_p95_ms);
  }

  function cell(tr, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function renderGroups(rep) {
    const body = $("groups").tBodies[0];
    clear(body);
    for (const g of rep.groups) {
      const tr = document.createElement("tr");
      tr.dataset.domain = g.domain;
      tr.dataset.hypothesis = g.hypothesis;
      cell(tr, "domain").textContent = g.domain;
      cell(tr, "hypothesis").textContent = g.hypothesis;
      setNum(cell(tr, "num count"), g.count, 12);
      setNum(cell(tr, "num fti"), g.fti);
      const badge = document.createElement("span");
      setGrade(badge, g.grade);
      cell(tr, "grade").appendChild(badge);
      setNum(cell(tr, "num cost"), g.medians.infra_cost_usd);
      setNum(cell(tr, "num qps"), g.medians.qps);
      setNum(cell(tr, "num latency"), g.medians.latency_p95_ms);
      body.appendChild(tr);
    }
  }

  // the studies' North Star figures: the latest effect with its interval, medians of the rest;
  // a group whose records carry none shows dashes; a group whose effects come from several
  // studies (other interventions or outcomes) shows why it has no effect instead of one
  function renderStudies(rep) {
    const body = $("studies").tBodies[0];
    clear(body);
    for (const g of rep.groups) {
      const ns = g.north_star;
      const last = ns.latest;
      const tr = document.createElement("tr");
      tr.dataset.domain = g.domain;
      tr.dataset.hypothesis = g.hypothesis;
      cell(tr, "domain").textContent = g.domain;
      cell(tr, "hypothesis").textContent = g.hypothesis;
      setNum(cell(tr, "num records"), ns.records, 12);
      const effect = cell(tr, "num effect");
      setNum(effect, last.causal_effect);
      if (ns.effects_withheld) {
        effect.textContent = "mixed: " + ns.effect_studies;
        effect.title = ns.effects_withheld + "; no single effect to show";
        effect.dataset.withheld = ns.effects_withheld;
      } else if (ns.effect_of && ns.effect_of.intervention) {
        // what the number is the effect of: the study, its intervention, the outcome
        const of = ns.effect_of;
        effect.title = (of.study ? of.study + ": " : "") + of.intervention +
          (of.outcome ? " on " + of.outcome : "");
      }
      const ci = cell(tr, "num ci");
      const lo = document.createElement("span");
      const hi = document.createElement("span");
      lo.className = "ci-low";
      hi.className = "ci-high";
      setNum(lo, last.ci_low);
      setNum(hi, last.ci_high);
      ci.append("[", lo, ", ", hi, "]");
      cell(tr, "ts").textContent = last.ts === null ? "–" : last.ts.slice(0, 19).replace("T", " ");
      setNum(cell(tr, "num reliability"), ns.median_reliability_score);
      setNum(cell(tr, "num sr9"), ns.median_SR9);
      setNum(cell(tr, "num di2"), ns.median_DI2);
      body.appendChild(tr);
    }
  }

  function renderRejected(rep) {
    const body = $("rejected").tBodies[0];
    clear(body);
    const reasons = Object.keys(rep.rejected);
    if (!reasons.length) {
      const tr = document.createElement("tr");
      const td = cell(tr, "none");
      td.colSpan = 2;
      td.textContent = "none";
      body.appendChild(tr);
    }
    for (const reason of reasons) {
      const tr = document.createElement("tr");
      tr.dataset.reason = reason;
      cell(tr, "reason").textContent = reason;
      setNum(cell(tr, "num n"), rep.rejected[reason], 12);
      body.appendChild(tr);
    }
  }

  function renderFtiChart(rep) {
    const el = $("fti-chart");
    clear(el);
    const n = rep.groups.length;
    const rowH = 26;
    const { w } = size(el);
    const h = Math.max(60, 30 + n * rowH);
    el.style.height = h + "px"; // one row per group: the chart grows with the groups
    el.setAttribute("viewBox", "0 0 " + w + " " + h);
    const left = 220, right = 70, top = 8;
    const max = Math.max(1.1, ...rep.groups.map((g) => (g.fti === null ? 0 : g.fti))) * 1.05;
    const x = (v) => left + (v / max) * (w - left - right);
    rep.groups.forEach((g, i) => {
      const y = top + i * rowH;
      const name = svg("text", { x: left - 8, y: y + 16, "text-anchor": "end", class: "label" }, el);
      name.textContent = g.domain + " / " + g.hypothesis;
      const bar = svg("rect", { x: left, y: y + 3, height: rowH - 8, width: Math.max(1, x(g.fti || 0) - left),
        class: "grade-" + g.grade, "data-domain": g.domain, "data-hypothesis": g.hypothesis }, el);
      bar.dataset.grade = g.grade;
      const val = svg("text", { x: x(g.fti || 0) + 6, y: y + 16, class: "label" }, el);
      val.textContent = g.fti === null ? "undefined (" + g.grade + ")" : fmt(g.fti, 4) + " " + g.grade;
    });
    const bottom = top + n * rowH;
    for (const [v, cls] of [[1.0, "ok"], [1.05, "warn"]]) {
      svg("line", { x1: x(v), x2: x(v), y1: top, y2: bottom, class: "ref " + cls }, el);
      const t = svg("text", { x: x(v), y: bottom + 14, "text-anchor": "middle" }, el);
      t.textContent = v.toFixed(2);
    }
    svg("line", { x1: left, x2: left, y1: top, y2: bottom, class: "axis" }, el);
  }

  // one line chart: series = [{name, colour, points: [[x, y], ...]}]; xTime: x values are epoch ms
  function lineChart(el, series, xTime) {
    clear(el);
    const { w, h } = size(el);
    el.setAttribute("viewBox", "0 0 " + w + " " + h);
    const pad = { l: 58, r: 10, t: 8, b: 22 };
    const pts = series.flatMap((s) => s.points);
    if (!pts.length) {
      const t = svg("text", { x: w / 2, y: h / 2, "text-anchor": "middle" }, el);
      t.textContent = "no data yet";
      return;
    }
    let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
    let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    if (y0 === y1) { const d = Math.abs(y0) * 0.1 || 1; y0 -= d; y1 += d; }
    const X = (v) => pad.l + ((v - x0) / (x1 - x0)) * (w - pad.l - pad.r);
    const Y = (v) => h - pad.b - ((v - y0) / (y1 - y0)) * (h - pad.t - pad.b);
    svg("line", { x1: pad.l, x2: w - pad.r, y1: h - pad.b, y2: h - pad.b, class: "axis" }, el);
    svg("line", { x1: pad.l, x2: pad.l, y1: pad.t, y2: h - pad.b, class: "axis" }, el);
    for (const v of [y0, (y0 + y1) / 2, y1]) {
      const t = svg("text", { x: pad.l - 4, y: Y(v) + 4, "text-anchor": "end" }, el);
      t.textContent = fmt(v, 3);
    }
    const xl = (v) => (xTime ? new Date(v).toISOString().slice(5, 19).replace("T", " ") : fmt(v, 6));
    const tl = svg("text", { x: pad.l, y: h - 6, "text-anchor": "start" }, el);
    tl.textContent = xl(x0);
    const tr = svg("text", { x: w - pad.r, y: h - 6, "text-anchor": "end" }, el);
    tr.textContent = xl(x1);
    for (const s of series) {
      const attrs = { stroke: s.colour, "data-name": s.name, "data-points": s.points.length };
      if (s.points.length === 1) {
        const [px, py] = s.points[0];
        svg("circle", Object.assign(attrs, { cx: X(px), cy: Y(py), r: 3, fill: s.colour }), el);
      } else {
        attrs.points = s.points.map((p) => X(p[0]).toFixed(1) + "," + Y(p[1]).toFixed(1)).join(" ");
        svg("polyline", attrs, el);
      }
    }
  }

  function renderSeries(rep) {
    // x is time when every point has one, else the record's ordinal within its group
    const useTime = rep.groups.every((g) => g.series.every((p) => p.ts !== null));
    $("series-axis").textContent = useTime ? "(x: time of the run's last record, UTC)" : "(x: record number in the group)";
    const legend = $("legend");
    clear(legend);
    const colourOf = rep.groups.map((_, i) => PALETTE[i % PALETTE.length]);
    for (const [id, field] of [["chart-cost", "infra_cost_usd"], ["chart-qps", "qps"], ["chart-latency", "latency_p95_ms"]]) {
      lineChart($(id), rep.groups.map((g, i) => ({
        name: g.domain + " / " + g.hypothesis,
        colour: colourOf[i],
        points: g.series.map((p) => [useTime ? Date.parse(p.ts) : p.last, p[field]]),
      })), useTime);
    }
    rep.groups.forEach((g, i) => {
      const item = document.createElement("span");
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.backgroundColor = colourOf[i];
      item.appendChild(sw);
      item.appendChild(document.createTextNode(g.domain + " / " + g.hypothesis));
      legend.appendChild(item);
    });
  }

  function renderHistory(rep) {
    samples.push({ t: Date.now(), lambda: rep.lambda_effective, fti: rep.fti_avg });
    while (samples.length > HISTORY) samples.shift();
    const pick = (k) => samples.filter((s) => s[k] !== null).map((s) => [s.t, s[k]]);
    lineChart($("chart-lambda"), [{ name: "lambda_effective", colour: PALETTE[0], points: pick("lambda") }], true);
    lineChart($("chart-fti-avg"), [{ name: "fti_avg", colour: PALETTE[1], points: pick("fti") }], true);
  }

  function render(rep) {
    renderCards(rep);
    renderGroups(rep);
    renderStudies(rep);
    renderRejected(rep);
    $("main").hidden = false;
    renderFtiChart(rep);
    renderSeries(rep);
    renderHistory(rep);
    renders += 1;
    document.body.dataset.renders = String(renders);
  }

  // --- fetching ------------------------------------------------------------------------------------
  function status(text, isError) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", Boolean(isError));
  }

  function askForToken(message) {
    $("auth-msg").textContent = message;
    $("auth").hidden = false;
    $("main").hidden = true;
    status("waiting for a token", true);
    $("token").focus();
  }

  async function poll() {
    timer = null;
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    let resp;
    try {
      resp = await fetch("/report", { headers: headers, cache: "no-store", credentials: "omit" });
    } catch (err) {
      status("cannot reach /report (" + err.message + "); retrying", true);
      timer = setTimeout(poll, refreshSeconds * 1000);
      return;
    }
    if (resp.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      askForToken(token ? "That token was refused; enter SIDRCE_TOKEN again."
        : "This server needs its bearer token (SIDRCE_TOKEN).");
      return; // polling resumes when a token is given
    }
    let body = null;
    try {
      body = await resp.json();
    } catch (err) {
      body = null;
    }
    if (!resp.ok || body === null) {
      const why = body && body.error ? body.error : "HTTP " + resp.status;
      status("/report: " + why + "; retrying", true);
    } else {
      $("auth").hidden = true;
      render(body);
      status("updated " + new Date().toLocaleTimeString() + " · " + body.count + " records");
    }
    timer = setTimeout(poll, refreshSeconds * 1000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("interval").textContent = String(refreshSeconds);
    $("auth").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const t = $("token").value.trim();
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      $("token").value = "";
      $("auth").hidden = true;
      status("loading /report…");
      if (timer !== null) clearTimeout(timer);
      poll();
    });
    poll();
  });
})();
