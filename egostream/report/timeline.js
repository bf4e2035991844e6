// egostream report: one multi-track timeline per stream, drawn with plotly.js (embedded in the page).
// Input: window.EGOSTREAM = {mode: "static" | "live", records: [WindowResult maps], truth: {stream_id: truth},
// thumbnails: {stream_id: [{time_s, src, width, height}]}, tracks: [{key, title, color, weight}], palette: [...]}.
// In live mode the records arrive as JSON text frames from the result server's /ws?format=json. The page records
// what it drew in <body data-status>, <body data-windows>, <body data-tracks> (pixel boxes of each track) and
// <body data-errors>, and in live mode reports the same to the server.
(function () {
  "use strict";
  const cfg = window.EGOSTREAM;
  const errors = [];
  window.addEventListener("error", (event) => { errors.push(String(event.message)); publishStatus(); });
  window.addEventListener("unhandledrejection", (event) => { errors.push(String(event.reason)); publishStatus(); });
  const streams = new Map();  // stream_id -> {records: [], div}
  const LTA_STEPS = 5;
  let socket = null;

  function colour(id) { return cfg.palette[((id % cfg.palette.length) + cfg.palette.length) % cfg.palette.length]; }
  function fmt(x, digits) { return (x === null || x === undefined || Number.isNaN(x)) ? "-" : Number(x).toFixed(digits); }
  function escapeHtml(text) {
    return String(text).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;"}[c]));
  }

  function streamOf(id) {
    if (!streams.has(id)) {
      const section = document.createElement("section");
      section.className = "stream";
      section.innerHTML = "<h2></h2><div class=\"plot\"></div><details><summary>backpack evidence per window" +
        "</summary><table class=\"evidence\"></table></details>";
      section.querySelector("h2").textContent = "stream " + id;
      document.getElementById("streams").appendChild(section);
      streams.set(id, {records: [], section: section, div: section.querySelector(".plot")});
    }
    return streams.get(id);
  }

  function evidenceText(record) {
    const parts = [];
    for (const [task, matches] of Object.entries(record.evidence || {})) {
      const best = matches.slice(0, 3).map((m) => m.verb.name + " " + m.noun.name + " " + fmt(m.similarity, 2));
      parts.push(task + ": " + (best.length ? best.join("; ") : "-"));
    }
    return parts.join("<br>");
  }

  // The tracks in drawing order, with their y-axis names (y, y2, ...) and domains (weights share the height).
  function trackLayout(hasVideo) {
    const tracks = cfg.tracks.filter((t) => hasVideo || t.key !== "video");
    const gap = 0.03;
    const total = tracks.reduce((sum, t) => sum + t.weight, 0);
    const usable = 1 - gap * (tracks.length - 1);
    let top = 1;
    return tracks.map((t, i) => {
      const height = usable * t.weight / total;
      const entry = {...t, axis: i === 0 ? "y" : "y" + (i + 1), layoutKey: i === 0 ? "yaxis" : "yaxis" + (i + 1),
                     domain: [Math.max(0, top - height), top]};
      top -= height + gap;
      return entry;
    });
  }

  function bar(name, axis, rows, starts, ends, colours, texts, hovers, opacity) {
    return {type: "bar", orientation: "h", name: name, yaxis: axis, xaxis: "x", y: rows, base: starts,
            x: ends.map((end, i) => Math.max(end - starts[i], 1e-3)), marker: {color: colours, opacity: opacity},
            text: texts, textposition: "inside", insidetextanchor: "start", hovertext: hovers, hoverinfo: "text",
            showlegend: false};
  }

  function traces(id, state, tracks) {
    const records = state.records;
    const truth = cfg.truth[id] || {actions: [], state_changes: [], moments: []};
    const axis = Object.fromEntries(tracks.map((t) => [t.key, t.axis]));
    const colourOf = Object.fromEntries(tracks.map((t) => [t.key, t.color]));
    // an empty trace on every track keeps its axis in the layout before the track has anything to draw
    const out = tracks.map((t) => ({type: "scatter", mode: "markers", x: [], y: [], xaxis: "x", yaxis: t.axis,
                                    showlegend: false, hoverinfo: "skip"}));
    const times = records.map((r) => r.time_s);
    // MQ: final moments (each emitted once), the newest window's provisional ones, the annotated moments
    const finals = records.flatMap((r) => (r.mq ? r.mq.moments.filter((m) => m.final) : []));
    const last = records.length ? records[records.length - 1] : null;
    const live = last && last.mq ? last.mq.moments.filter((m) => !m.final) : [];
    const moment = (m) => m.label.name + " " + fmt(m.score, 2);
    if (finals.length) {
      out.push(bar("MQ final", axis.mq, finals.map(() => "final"), finals.map((m) => m.start_s),
                   finals.map((m) => m.end_s), colourOf.mq, finals.map(moment),
                   finals.map((m) => "final: " + moment(m) + " [" + fmt(m.start_s, 1) + ", " + fmt(m.end_s, 1) + "] s"),
                   0.85));
    }
    if (live.length) {
      out.push(bar("MQ live", axis.mq, live.map(() => "live"), live.map((m) => m.start_s), live.map((m) => m.end_s),
                   colourOf.mq, live.map(moment),
                   live.map((m) => "provisional: " + moment(m) + " [" + fmt(m.start_s, 1) + ", " + fmt(m.end_s, 1) + "] s"),
                   0.4));
    }
    if (truth.moments.length) {
      out.push(bar("MQ truth", axis.mq, truth.moments.map(() => "truth"), truth.moments.map((m) => m.start_s),
                   truth.moments.map((m) => m.end_s), cfg.truth_color, truth.moments.map((m) => m.label),
                   truth.moments.map((m) => "truth: " + m.label), 0.6));
    }
    // AR: the current action of each window, over the stream time since the previous window
    const withAr = records.filter((r) => r.ar && r.ar.verbs.length && r.ar.nouns.length);
    if (withAr.length) {
      const starts = withAr.map((r) => {
        const i = records.indexOf(r);
        return i > 0 ? records[i - 1].time_s : Math.max(0, r.ar.span.start_s);
      });
      out.push(bar("AR", axis.ar, withAr.map(() => "predicted"), starts, withAr.map((r) => r.time_s),
                   withAr.map((r) => colour(r.ar.verbs[0].id)),
                   withAr.map((r) => r.ar.verbs[0].name + " " + r.ar.nouns[0].name),
                   withAr.map((r) => "t=" + fmt(r.time_s, 1) + " s: " + r.ar.verbs[0].name + " (" +
                     fmt(r.ar.verbs[0].score, 2) + ") " + r.ar.nouns[0].name + " (" + fmt(r.ar.nouns[0].score, 2) +
                     ")" + (r.filled ? "<br>built on refilled rows" : "") +
                     (Object.keys(r.evidence || {}).length ? "<br>evidence:<br>" + evidenceText(r) : "")),
                   0.9));
    }
    if (truth.actions.length) {
      out.push(bar("AR truth", axis.ar, truth.actions.map(() => "truth"), truth.actions.map((a) => a.start_s),
                   truth.actions.map((a) => a.end_s), truth.actions.map((a) => colour(a.verb_id)),
                   truth.actions.map((a) => a.verb + " " + a.noun), truth.actions.map((a) => "truth: " + a.verb + " " + a.noun),
                   0.55));
    }
    // LTA: the next actions (top-1 of each future step) as coloured squares, step 1 at the bottom
    const withLta = records.filter((r) => r.lta && r.lta.top1.length);
    for (let step = 0; step < LTA_STEPS; step++) {
      const rows = withLta.filter((r) => r.lta.top1.length > step);
      if (!rows.length) break;
      out.push({type: "scatter", mode: "markers", yaxis: axis.lta, xaxis: "x", x: rows.map((r) => r.time_s),
                y: rows.map(() => "+" + (step + 1)), showlegend: false, hoverinfo: "text",
                marker: {symbol: "square", size: 9, color: rows.map((r) => colour(r.lta.top1[step].verb.id))},
                hovertext: rows.map((r) => "t=" + fmt(r.time_s, 1) + " s, next +" + (step + 1) + ": " +
                  r.lta.top1[step].verb.name + " " + r.lta.top1[step].noun.name)});
    }
    if (truth.actions.length && withLta.length) {
      const next = withLta.map((r) => truth.actions.find((a) => a.start_s >= r.time_s)).map((a) => a || null);
      const keep = withLta.map((r, i) => [r, next[i]]).filter((pair) => pair[1] !== null);
      if (keep.length) {
        out.push({type: "scatter", mode: "markers", yaxis: axis.lta, xaxis: "x", x: keep.map((p) => p[0].time_s),
                  y: keep.map(() => "truth +1"), showlegend: false, hoverinfo: "text",
                  marker: {symbol: "square-open", size: 9, color: keep.map((p) => colour(p[1].verb_id))},
                  hovertext: keep.map((p) => "truth next: " + p[1].verb + " " + p[1].noun)});
      }
    }
    // OSCC probability and PNR keyframes; the annotated samples underneath (state changes shaded, PNR as x)
    const withOscc = records.filter((r) => r.oscc);
    if (withOscc.length) {
      out.push({type: "scatter", mode: "lines+markers", name: "OSCC", yaxis: axis.oscc, xaxis: "x",
                x: withOscc.map((r) => r.time_s), y: withOscc.map((r) => r.oscc.probability),
                line: {color: colourOf.oscc, width: 3}, marker: {size: 4}, showlegend: false,
                hovertemplate: "t=%{x:.1f} s, P(state change)=%{y:.2f}<extra></extra>"});
    }
    const withPnr = records.filter((r) => r.pnr);
    if (withPnr.length) {
      out.push({type: "scatter", mode: "markers", name: "PNR", yaxis: axis.oscc, xaxis: "x",
                x: withPnr.map((r) => r.pnr.time_s), y: withPnr.map(() => 1.08), showlegend: false,
                marker: {symbol: "triangle-down", size: 9, color: cfg.pnr_color},
                hovertext: withPnr.map((r) => "PNR keyframe " + fmt(r.pnr.time_s, 2) + " s (window at " +
                  fmt(r.time_s, 1) + " s)"), hoverinfo: "text"});
    }
    for (const sample of truth.state_changes) {
      out.push({type: "scatter", mode: "lines", yaxis: axis.oscc, xaxis: "x", showlegend: false, hoverinfo: "text",
                x: [sample.start_s, sample.end_s], y: [-0.12, -0.12],
                line: {color: sample.state_change ? cfg.truth_color : "#cccccc", width: 6},
                hovertext: "truth: " + (sample.state_change ? "state change" : "no state change")});
    }
    const truthPnr = truth.state_changes.filter((s) => s.pnr_s !== null);
    if (truthPnr.length) {
      out.push({type: "scatter", mode: "markers", yaxis: axis.oscc, xaxis: "x", showlegend: false,
                x: truthPnr.map((s) => s.pnr_s), y: truthPnr.map(() => -0.12), hoverinfo: "text",
                marker: {symbol: "x", size: 10, color: cfg.pnr_color},
                hovertext: truthPnr.map((s) => "truth PNR " + fmt(s.pnr_s, 2) + " s")});
    }
    // latency per window, refilled windows marked
    const latency = (r) => (r.latency_ms.end_to_end !== undefined ? r.latency_ms.end_to_end : r.latency_ms.total);
    if (records.length) {
      out.push({type: "scatter", mode: "lines+markers", name: "latency", yaxis: axis.latency, xaxis: "x",
                x: times, y: records.map((r) => latency(r) || 0), line: {color: colourOf.latency, width: 2},
                marker: {size: 4}, showlegend: false,
                hovertemplate: "t=%{x:.1f} s, latency %{y:.0f} ms<extra></extra>"});
      const filled = records.filter((r) => r.filled);
      if (filled.length) {
        out.push({type: "scatter", mode: "markers", name: "refilled", yaxis: axis.latency, xaxis: "x",
                  x: filled.map((r) => r.time_s), y: filled.map((r) => latency(r) || 0), showlegend: false,
                  marker: {symbol: "x", size: 10, color: cfg.filled_color},
                  hovertext: filled.map((r) => "window " + r.window_index + " built on refilled rows"),
                  hoverinfo: "text"});
      }
    }
    return out;
  }

  function layout(id, state, tracks) {
    const records = state.records;
    const end = Math.max(records.length ? records[records.length - 1].time_s : 0,
                         ...(cfg.truth[id] ? cfg.truth[id].actions.map((a) => a.end_s) : [0]), 1);
    const result = {height: cfg.height, margin: {l: 170, r: 20, t: 10, b: 40}, bargap: 0.25, barmode: "overlay",
                    hovermode: "closest", plot_bgcolor: "#ffffff", paper_bgcolor: "#ffffff",
                    xaxis: {range: [0, end], title: {text: "stream time (s)"}, anchor: tracks[tracks.length - 1].axis,
                            showgrid: true, gridcolor: "#eeeeee"},
                    shapes: [], images: [], annotations: []};
    for (const t of tracks) {
      const axisLayout = {domain: t.domain, title: {text: t.title, font: {size: 11}}, fixedrange: true,
                          gridcolor: "#eeeeee", zeroline: false};
      if (["mq", "ar", "lta"].includes(t.key)) axisLayout.type = "category";
      if (t.key === "mq") { axisLayout.categoryorder = "array"; axisLayout.categoryarray = ["truth", "live", "final"]; }
      if (t.key === "ar") { axisLayout.categoryorder = "array"; axisLayout.categoryarray = ["truth", "predicted"]; }
      if (t.key === "lta") {
        axisLayout.categoryorder = "array";
        axisLayout.categoryarray = ["truth +1", ...Array.from({length: LTA_STEPS}, (_, k) => "+" + (k + 1))];
      }
      if (t.key === "oscc") axisLayout.range = [-0.2, 1.15];
      if (t.key === "video") { axisLayout.range = [0, 1]; axisLayout.showticklabels = false; axisLayout.showgrid = false; }
      if (t.key === "latency") axisLayout.rangemode = "tozero";
      result[t.layoutKey] = axisLayout;
    }
    const videoTrack = tracks.find((t) => t.key === "video");
    const thumbs = cfg.thumbnails[id] || (streams.size === 1 ? cfg.thumbnails["*"] : null) || [];
    if (videoTrack) {
      const step = thumbs.length > 1 ? thumbs[1].time_s - thumbs[0].time_s : end;
      for (const thumb of thumbs) {
        result.images.push({source: thumb.src, xref: "x", yref: videoTrack.axis, x: thumb.time_s - step / 2, y: 1,
                            sizex: step, sizey: 1, xanchor: "left", yanchor: "top", sizing: "stretch",
                            layer: "above"});
      }
    }
    for (const r of records.filter((r) => r.filled)) {  // refilled windows shaded across every track
      const i = records.indexOf(r);
      result.shapes.push({type: "rect", xref: "x", yref: "paper", x0: i > 0 ? records[i - 1].time_s : 0,
                          x1: r.time_s, y0: 0, y1: 1, fillcolor: cfg.filled_color, opacity: 0.12,
                          line: {width: 0}, layer: "below"});
    }
    return result;
  }

  function evidenceTable(state) {
    const table = state.section.querySelector("table.evidence");
    const rows = state.records.filter((r) => Object.keys(r.evidence || {}).length).slice(-cfg.evidence_rows);
    table.innerHTML = "<tr><th>window</th><th>t (s)</th><th>nearest prototypes (verb noun similarity)</th></tr>" +
      rows.map((r) => "<tr><td>" + r.window_index + "</td><td>" + fmt(r.time_s, 1) + "</td><td>" +
                      evidenceText(r).split("<br>").map(escapeHtml).join("<br>") + "</td></tr>").join("");
  }

  function trackBoxes() {
    const boxes = {};
    for (const [id, state] of streams) {
      const full = state.div._fullLayout;
      if (!full || !state.tracks) continue;
      const rect = state.div.getBoundingClientRect();
      const left = rect.left + window.scrollX, top = rect.top + window.scrollY;
      for (const t of state.tracks) {
        const y = full[t.layoutKey], x = full.xaxis;
        if (!y || !x) continue;
        boxes[id + "/" + t.key] = [left + x._offset, top + y._offset, left + x._offset + x._length,
                                   top + y._offset + y._length];
      }
    }
    return boxes;
  }

  function publishStatus() {
    const windows = Array.from(streams.values()).reduce((n, s) => n + s.records.length, 0);
    document.body.dataset.windows = String(windows);
    document.body.dataset.errors = JSON.stringify(errors);
    document.body.dataset.tracks = JSON.stringify(trackBoxes());
    document.getElementById("summary").textContent = windows + " windows, " + streams.size + " stream(s)" +
      (cfg.mode === "live" ? " (live)" : "");
    if (socket && socket.readyState === 1) {
      socket.send(JSON.stringify({page: "status", windows: windows, errors: errors}));
    }
  }

  function render() {
    const jobs = [];
    for (const [id, state] of streams) {
      const hasVideo = Boolean(cfg.thumbnails[id] || (streams.size === 1 && cfg.thumbnails["*"]));
      state.tracks = trackLayout(hasVideo);
      jobs.push(Plotly.react(state.div, traces(id, state, state.tracks), layout(id, state, state.tracks),
                             {displaylogo: false, responsive: false}));
      evidenceTable(state);
    }
    return Promise.all(jobs).then(() => { document.body.dataset.status = "rendered"; publishStatus(); })
      .catch((error) => { errors.push(String(error)); document.body.dataset.status = "failed"; publishStatus(); });
  }

  function add(record) { streamOf(record.stream_id).records.push(record); }

  let pending = null;
  function scheduleRender() {
    if (pending === null) pending = setTimeout(() => { pending = null; render(); }, cfg.live_refresh_ms);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws?format=json");
    socket.onmessage = (event) => { add(JSON.parse(event.data)); scheduleRender(); };
    socket.onclose = () => { document.body.dataset.status = "disconnected"; setTimeout(connect, 1000); };
    socket.onopen = () => { publishStatus(); };
  }

  for (const id of Object.keys(cfg.truth)) streamOf(id);
  for (const record of cfg.records) add(record);
  render();
  if (cfg.mode === "live") connect();
})();
