// mmif report: draws the page from the JSON block #mmif-data (layout documented in report.rs).
// Opened with the fragment #selftest, it checks itself once every image has settled and writes the
// result as JSON into <pre id="selftest"> (read by the browser test of `mmif report`).
"use strict";
(function () {
  const pageErrors = [];
  window.addEventListener("error", (e) => pageErrors.push(String(e.message || e.type)));
  window.addEventListener("unhandledrejection", (e) => pageErrors.push("unhandled rejection: " + String(e.reason)));
  const consoleError = console.error.bind(console);
  console.error = (...args) => { pageErrors.push(args.map(String).join(" ")); consoleError(...args); };

  const D = JSON.parse(document.getElementById("mmif-data").textContent);
  const app = document.getElementById("app");
  const SVG = "http://www.w3.org/2000/svg";

  /** Element with attributes (props when the key is a property of the element) and children. */
  function el(tag, attrs, ...kids) {
    const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.setAttribute("class", v);
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "style") e.setAttribute("style", v);
      else e.setAttribute(k, v);
    }
    for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  const fmt = (v) => (v === null || v === undefined ? "–" : Math.abs(v) >= 100 ? v.toFixed(2) : v.toFixed(3));
  const panelNames = D.sources.concat(D.methods);

  // ---- tables: best per column marked, sortable by clicking a header ----
  function bestOf(values, higher) {
    const finite = values.filter((v) => v !== null);
    if (!finite.length) return null;
    return higher ? Math.max(...finite) : Math.min(...finite);
  }
  /** rows: [{label, values}] → a sortable table of the metrics. */
  function scoreTable(rows, caption) {
    const head = el("tr", null, el("th", { "data-col": "-1" }, caption));
    D.metrics.forEach((m, j) =>
      head.append(el("th", { "data-col": String(j), title: m.higher ? "higher is better" : "lower is better" },
        m.name, " ", el("span", { class: "hint" }, m.higher ? "↑" : "↓"))));
    const body = el("tbody");
    const best = D.metrics.map((m, j) => bestOf(rows.map((r) => r.values[j]), m.higher));
    for (const r of rows) {
      const tr = el("tr", null, el("td", { "data-v": r.label }, r.label));
      r.values.forEach((v, j) => {
        const isBest = v !== null && v === best[j] && rows.length > 1;
        tr.append(el("td", { "data-v": v === null ? "" : String(v), class: isBest ? "best" : "", title: v === null ? "" : String(v) }, fmt(v)));
      });
      body.append(tr);
    }
    const table = el("table", { class: "scores" }, el("thead", null, head), body);
    head.addEventListener("click", (ev) => {
      const th = ev.target.closest("th");
      if (th) sortBy(table, Number(th.dataset.col), th);
    });
    return table;
  }
  /** Sorts by column `col` (-1: the label): first click best first, next click reversed. */
  function sortBy(table, col, th) {
    const higher = col >= 0 ? D.metrics[col].higher : false;
    const dir = th.dataset.dir === (higher ? "desc" : "asc") ? (higher ? "asc" : "desc") : higher ? "desc" : "asc";
    table.querySelectorAll("th").forEach((h) => delete h.dataset.dir);
    th.dataset.dir = dir;
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    const key = (tr) => tr.cells[col + 1].dataset.v;
    rows.sort((a, b) => {
      const ka = key(a), kb = key(b);
      let c;
      if (col < 0) c = ka.localeCompare(kb);
      else if (ka === "" || kb === "") return (ka === "") - (kb === ""); // missing values last
      else c = Number(ka) - Number(kb);
      return dir === "asc" ? c : -c;
    });
    rows.forEach((r) => body.append(r));
  }

  // ---- bar charts of the means ----
  function barChart(j) {
    const m = D.metrics[j];
    const vals = D.means.map((r) => r[j]);
    const finite = vals.filter((v) => v !== null);
    const lo = Math.min(0, ...finite), hi = Math.max(0, ...finite);
    const span = hi - lo || 1;
    const best = bestOf(vals, m.higher);
    const rowH = 20, left = 96, width = 200, right = 56;
    const svg = el("svg:svg", { viewBox: `0 0 ${left + width + right} ${vals.length * rowH + 6}`, role: "img", "aria-label": m.name + " means" });
    const x0 = left + ((0 - lo) / span) * width;
    vals.forEach((v, i) => {
      const y = 3 + i * rowH;
      svg.append(el("svg:text", { x: left - 6, y: y + 14, "text-anchor": "end" }, D.methods[i]));
      if (v === null) return;
      const x1 = left + ((v - lo) / span) * width;
      svg.append(el("svg:rect", { x: Math.min(x0, x1), y: y + 2, width: Math.max(1, Math.abs(x1 - x0)), height: rowH - 6, class: v === best ? "best" : "" }));
      svg.append(el("svg:text", { x: Math.max(x0, x1) + 4, y: y + 14 }, fmt(v)));
    });
    svg.append(el("svg:line", { x1: x0, x2: x0, y1: 0, y2: vals.length * rowH + 6, stroke: "#888" }));
    return el("div", { class: "chart" }, el("h3", null, `${m.name} (${m.higher ? "higher" : "lower"} is better)`), svg);
  }

  // ---- synchronised zoom and pan: one state per pair, in fractions of the panel size ----
  function makeSync(label) {
    const st = { s: 1, x: 0, y: 0, views: [] };
    st.apply = () => {
      for (const v of st.views) {
        for (const img of v.querySelectorAll("img")) img.style.transform = `translate(${st.x * 100}%, ${st.y * 100}%) scale(${st.s})`;
        v.classList.toggle("pixelated", st.s >= 4);
      }
      label.textContent = `zoom ×${st.s.toFixed(st.s < 10 ? 2 : 1)}`;
    };
    st.clamp = () => {
      st.s = Math.min(64, Math.max(1, st.s));
      st.x = Math.min(0, Math.max(1 - st.s, st.x));
      st.y = Math.min(0, Math.max(1 - st.s, st.y));
    };
    st.reset = () => { st.s = 1; st.x = 0; st.y = 0; st.apply(); };
    st.attach = (view) => {
      st.views.push(view);
      view.addEventListener("wheel", (ev) => {
        ev.preventDefault();
        const r = view.getBoundingClientRect();
        const u = (ev.clientX - r.left) / r.width, w = (ev.clientY - r.top) / r.height;
        const px = (u - st.x) / st.s, py = (w - st.y) / st.s;
        st.s *= Math.exp(-ev.deltaY * 0.0015);
        st.clamp();
        st.x = u - px * st.s; st.y = w - py * st.s;
        st.clamp(); st.apply();
      }, { passive: false });
      let drag = null;
      view.addEventListener("pointerdown", (ev) => {
        if (ev.target.closest("input,select,button")) return;
        drag = { x: ev.clientX, y: ev.clientY };
        view.setPointerCapture(ev.pointerId);
        view.classList.add("dragging");
      });
      view.addEventListener("pointermove", (ev) => {
        if (!drag) return;
        const r = view.getBoundingClientRect();
        st.x += (ev.clientX - drag.x) / r.width; st.y += (ev.clientY - drag.y) / r.height;
        drag = { x: ev.clientX, y: ev.clientY };
        st.clamp(); st.apply();
      });
      const end = () => { drag = null; view.classList.remove("dragging"); };
      view.addEventListener("pointerup", end);
      view.addEventListener("pointercancel", end);
      view.addEventListener("dblclick", st.reset);
    };
    return st;
  }

  function view(img, aspect, extra) {
    return el("div", { class: "view", style: `aspect-ratio: ${img.w} / ${img.h}` },
      el("img", { src: img.src, alt: img.name || "", draggable: "false" }), extra || null);
  }

  // ---- one pair: every panel, the wipe comparison and the per-image table ----
  function pairSection(p, k) {
    const zoomLabel = el("span");
    const sync = makeSync(zoomLabel);
    const grid = el("div", { class: "grid" });
    p.images.forEach((img, i) => {
      const v = view(img);
      sync.attach(v);
      const method = i >= D.sources.length;
      grid.append(el("figure", { class: "panel " + (method ? "method" : "source") }, v,
        el("figcaption", null, method ? el("b", null, panelNames[i]) : el("span", null, panelNames[i]),
          el("a", { href: img.file, title: "the original file", target: "_blank" }, `${img.w}×${img.h} ↗`))));
    });
    // wipe: image A over image B, A clipped right of the slider
    const a = el("select"), b = el("select");
    panelNames.forEach((n, i) => { a.append(el("option", { value: i }, n)); b.append(el("option", { value: i }, n)); });
    a.value = String(Math.min(D.sources.length, panelNames.length - 1));
    b.value = String(Math.min(D.sources.length + 1, panelNames.length - 1));
    const first = p.images[0];
    const wipeView = el("div", { class: "view", style: `aspect-ratio: ${first.w} / ${first.h}` },
      el("img", { class: "bottom", src: p.images[Number(b.value)].src, alt: "B", draggable: "false" }),
      el("img", { class: "top", src: p.images[Number(a.value)].src, alt: "A", draggable: "false" }),
      el("div", { class: "divider" }));
    sync.attach(wipeView);
    const slider = el("input", { type: "range", min: "0", max: "100", value: "50", "aria-label": "wipe position" });
    const setWipe = () => {
      wipeView.querySelector(".top").style.clipPath = `inset(0 ${100 - slider.value}% 0 0)`;
      wipeView.querySelector(".divider").style.left = `${slider.value}%`;
    };
    const setImages = () => {
      wipeView.querySelector(".top").src = p.images[Number(a.value)].src;
      wipeView.querySelector(".bottom").src = p.images[Number(b.value)].src;
    };
    slider.addEventListener("input", setWipe);
    a.addEventListener("change", setImages);
    b.addEventListener("change", setImages);
    const flip = el("button", { type: "button", title: "swap A and B" }, "flip A⇄B");
    flip.addEventListener("click", () => { const t = a.value; a.value = b.value; b.value = t; setImages(); });
    const reset = el("button", { type: "button" }, "reset zoom");
    reset.addEventListener("click", sync.reset);
    const rows = D.methods.map((name, i) => ({ label: name, values: p.scores[i] }));
    const section = el("section", { class: "pair", id: "pair-" + k, "data-stem": p.stem },
      el("h3", null, p.stem),
      el("div", { class: "toolbar" }, "scroll to zoom, drag to pan (all panels follow), double-click to reset", reset, zoomLabel),
      grid,
      el("div", { class: "compare" },
        el("div", null, el("div", { class: "toolbar" }, "wipe: A", a, "over B", b, flip), wipeView, slider),
        el("div", null, scoreTable(rows, "Method"))));
    sync.apply();
    setWipe();
    return section;
  }

  // ---- the page ----
  document.title = D.title;
  app.append(
    el("h1", null, D.title),
    el("div", { class: "meta" }, `${D.pairs.length} pairs × ${D.methods.length} methods · metrics: ${D.preset} · made by ${D.version} with `,
      el("code", null, D.command.join(" "))),
    el("h2", null, "Means"),
    scoreTable(D.methods.map((name, i) => ({ label: name, values: D.means[i] })), "Method"),
    el("div", { class: "meta" }, "click a column to sort (best first, again to reverse); ★ best of the column"),
    el("h2", null, "Means per metric"),
    el("div", { class: "charts" }, D.metrics.map((_, j) => barChart(j))),
    el("h2", null, "Images"),
    el("nav", { class: "pairs" }, D.pairs.map((p, k) => el("a", { href: "#pair-" + k }, p.stem))),
    el("div", { class: "pairs" }, D.pairs.map(pairSection)),
    el("pre", { id: "selftest" }));

  // ---- self-test (#selftest) ----
  function settle(img) {
    if (img.complete) return Promise.resolve();
    return new Promise((res) => { img.addEventListener("load", res, { once: true }); img.addEventListener("error", res, { once: true }); });
  }
  function monotone(values, dir) {
    for (let i = 1; i < values.length; i++) if (dir === "asc" ? values[i] < values[i - 1] : values[i] > values[i - 1]) return false;
    return true;
  }
  function checkSorting(table) {
    const out = [];
    table.querySelectorAll("thead th").forEach((th) => {
      const col = Number(th.dataset.col);
      for (let click = 0; click < 2; click++) {
        th.click();
        const cells = Array.from(table.tBodies[0].rows).map((r) => r.cells[col + 1].dataset.v);
        const dir = th.dataset.dir;
        const ok = col < 0
          ? cells.every((c, i) => i === 0 || (dir === "asc" ? cells[i - 1].localeCompare(c) <= 0 : cells[i - 1].localeCompare(c) >= 0))
          : monotone(cells.filter((c) => c !== "").map(Number), dir);
        out.push({ col, dir, ok });
      }
    });
    return out;
  }
  function checkBest(table) {
    const rows = Array.from(table.tBodies[0].rows);
    return D.metrics.every((m, j) => {
      const vals = rows.map((r) => r.cells[j + 1].dataset.v).filter((v) => v !== "").map(Number);
      const best = m.higher ? Math.max(...vals) : Math.min(...vals);
      return rows.every((r) => {
        const c = r.cells[j + 1];
        return c.classList.contains("best") === (rows.length > 1 && c.dataset.v !== "" && Number(c.dataset.v) === best);
      });
    });
  }
  async function selftest() {
    const imgs = Array.from(document.images);
    await Promise.all(imgs.map(settle));
    const failed = imgs.filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.closest("[data-stem]")?.dataset.stem + ":" + i.alt);
    const tables = Array.from(document.querySelectorAll("table.scores"));
    const sorting = tables.flatMap(checkSorting);
    // one wheel event on the first panel must move every panel of its pair alike
    const firstPair = document.querySelector("section.pair");
    let zoomSync = false;
    if (firstPair) {
      const v = firstPair.querySelector(".view");
      const r = v.getBoundingClientRect();
      v.dispatchEvent(new WheelEvent("wheel", { deltaY: -400, clientX: r.left + r.width / 3, clientY: r.top + r.height / 3, bubbles: true, cancelable: true }));
      const t = Array.from(firstPair.querySelectorAll(".view img")).map((i) => i.style.transform);
      zoomSync = t.length > 1 && t.every((x) => x === t[0]) && t[0].includes("scale(") && !t[0].includes("scale(1)");
      v.dispatchEvent(new MouseEvent("dblclick", { bubbles: true }));
    }
    const result = {
      images: imgs.length,
      loaded: imgs.length - failed.length,
      failed,
      tables: tables.length,
      sorted: sorting.length > 0 && sorting.every((s) => s.ok),
      best: tables.every(checkBest),
      zoomSync,
      charts: document.querySelectorAll(".chart svg").length,
      errors: pageErrors,
    };
    const pre = document.getElementById("selftest");
    pre.textContent = JSON.stringify(result);
    pre.dataset.done = "1";
  }
  if (location.hash === "#selftest") selftest().catch((e) => pageErrors.push(String(e)));
})();
