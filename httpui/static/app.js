// plug's web UI: a little JavaScript over the JSON API the command line
// uses. Every string from the plug goes into the page as text
// (textContent), never as HTML.
"use strict";
(() => {
  const $ = (s, el = document) => el.querySelector(s);
  const $$ = (s, el = document) => Array.from(el.querySelectorAll(s));

  // el builds an element; children are nodes or text.
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    return e;
  }

  function flash(msg, bad) {
    const f = $("#flash");
    if (!f) return;
    f.textContent = msg;
    f.className = bad ? "bad" : "good";
  }

  function size(n) {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + " " + u[i];
  }

  function request(method, url, body) {
    const opt = { method, headers: {}, credentials: "same-origin" };
    if (body instanceof FormData) opt.body = body;
    else if (body !== undefined) {
      opt.body = JSON.stringify(body);
      opt.headers["Content-Type"] = "application/json";
    }
    return fetch(url, opt);
  }

  async function failure(r) {
    try { return new Error((await r.json()).error || r.statusText); } catch { return new Error(r.status + " " + r.statusText); }
  }

  async function api(method, url, body) {
    const r = await request(method, url, body);
    if (!r.ok) throw await failure(r);
    return r.json();
  }

  // stream reads a newline-delimited JSON answer ({"progress"}, {"warning"},
  // then {"result"} or {"error"}), calling on for each object.
  async function stream(method, url, body, on) {
    const r = await request(method, url, body);
    if (!r.ok) throw await failure(r);
    const rd = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "", result;
    for (;;) {
      const { value, done } = await rd.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (!line) continue;
        const o = JSON.parse(line);
        if ("error" in o) throw new Error(o.error);
        if ("result" in o) result = o.result;
        on(o);
      }
    }
    if (result === undefined) throw new Error("the plug stopped answering before the end");
    return result;
  }

  function onSubmit(sel, fn) {
    for (const f of $$(sel)) {
      f.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const buttons = $$("button", f);
        buttons.forEach((b) => (b.disabled = true));
        try { await fn(f, ev); } catch (e) { flash(e.message, true); } finally { buttons.forEach((b) => (b.disabled = false)); }
      });
    }
  }

  function onClick(sel, fn) {
    for (const b of $$(sel)) {
      b.addEventListener("click", async () => {
        b.disabled = true;
        try { await fn(b); } catch (e) { flash(e.message, true); } finally { b.disabled = false; }
      });
    }
  }

  const when = (t) => new Date(t).toLocaleString();

  // ---- Friends ----

  function friendsPage() {
    onClick("#make-invite", async () => {
      const inv = await api("POST", "/api/v1/invites");
      $("#invite-code").value = inv.code;
      $("#invite-expires").textContent = when(inv.expires);
      $("#invite-expires").setAttribute("datetime", inv.expires);
      const img = $("#invite-qr");
      img.src = "/api/v1/qr.png?size=320&text=" + encodeURIComponent(inv.code);
      $("#invite").hidden = false;
    });
    onClick("#copy-invite", async () => {
      await navigator.clipboard.writeText($("#invite-code").value);
      flash("The invite code is copied.");
    });
    onSubmit("#accept-form", async (f) => {
      const code = f.code.value.trim();
      flash("Pairing… both plugs must reach each other; this can take a little while.");
      const fr = await api("POST", "/api/v1/friends/accept", { code });
      flash("You and " + fr.name + " are friends now.");
      location.reload();
    });
    onSubmit("form.quota", async (f) => {
      const mib = Number(f.mib.value);
      if (!Number.isFinite(mib) || mib < 0) throw new Error("Give the quota in MiB, 0 or more.");
      const fr = await api("PUT", "/api/v1/friends/" + encodeURIComponent(f.dataset.peer) + "/quota", { quota_given: Math.round(mib * 1048576) });
      flash("You now give " + fr.name + " " + size(fr.quota_given) + ".");
    });
    onClick("button.remove", async (b) => {
      if (!confirm("Remove " + b.dataset.name + "? Their shards of your data are moved to other friends at the next repair, and what you hold for them is deleted.")) return;
      const r = await api("DELETE", "/api/v1/friends/" + encodeURIComponent(b.dataset.peer));
      flash(b.dataset.name + " is removed; " + size(r.freed) + " freed.");
      location.reload();
    });

    // QR codes: from the camera, or from a picture, decoded by jsQR.
    const found = (text) => {
      $("#accept-code").value = text;
      flash("Read the invite from the QR code: press Accept.");
    };
    const decode = (source, w, h) => {
      const c = document.createElement("canvas");
      c.width = w;
      c.height = h;
      const g = c.getContext("2d", { willReadFrequently: true });
      g.drawImage(source, 0, 0, w, h);
      const d = g.getImageData(0, 0, w, h);
      const qr = window.jsQR && window.jsQR(d.data, w, h);
      return qr && qr.data;
    };
    const file = $("#qr-file");
    if (file) file.addEventListener("change", async () => {
      if (!file.files.length) return;
      try {
        const bmp = await createImageBitmap(file.files[0]);
        const text = decode(bmp, bmp.width, bmp.height);
        if (text) found(text);
        else flash("No QR code found in that picture: paste the code instead.", true);
      } catch (e) {
        flash("Could not read that picture: " + e.message, true);
      }
    });
    onClick("#scan", async () => {
      const video = $("#scan-video");
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        flash("This browser gives no camera here (it needs https or localhost): paste the code instead.", true);
        return;
      }
      let media;
      try {
        media = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      } catch (e) {
        flash("No camera: " + e.message + ". Paste the code instead.", true);
        return;
      }
      video.srcObject = media;
      video.hidden = false;
      await video.play();
      flash("Show the QR code to the camera.");
      const stop = () => { media.getTracks().forEach((t) => t.stop()); video.hidden = true; };
      const tick = () => {
        if (video.readyState >= 2) {
          const text = decode(video, video.videoWidth, video.videoHeight);
          if (text) { stop(); found(text); return; }
        }
        if (!video.hidden) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
  }

  // ---- Backups ----

  function showProgress(p) {
    let pct = 0;
    if (p.phase === "done") pct = 100;
    else if (p.bytes_total > 0) pct = Math.min(99, Math.floor((100 * p.bytes) / p.bytes_total));
    $("#backup-bar").value = pct;
    $("#backup-pct").textContent = pct + "%";
    $("#backup-detail").textContent = p.phase + ": " + p.files + (p.scan_done ? " of " + p.files_total : "") + " files, " + size(p.bytes) + (p.scan_done ? " of " + size(p.bytes_total) : "") + ", " + size(p.new_bytes) + " new";
  }

  function followBackup(id) {
    $("#backup-progress").hidden = false;
    $("#backup-result").textContent = "";
    const btn = $("#backup-now");
    btn.disabled = true;
    const es = new EventSource("/api/v1/backups/jobs/" + encodeURIComponent(id) + "/events");
    const end = () => { es.close(); btn.disabled = false; };
    es.addEventListener("progress", (m) => showProgress(JSON.parse(m.data)));
    es.addEventListener("warning", (m) => {
      const w = JSON.parse(m.data);
      $("#backup-warnings").append(el("li", {}, w.path + ": " + w.error));
    });
    es.addEventListener("result", (m) => {
      end();
      const r = JSON.parse(m.data);
      showProgress({ phase: "done", files: r.files, files_total: r.files, bytes: r.bytes, bytes_total: r.bytes, new_bytes: r.new_bytes, scan_done: true });
      const res = $("#backup-result");
      res.replaceChildren("Done: snapshot ", el("a", { href: "/backups/" + encodeURIComponent(r.snapshot_id), id: "new-snapshot" }, r.snapshot_id.slice(0, 8)),
        ", " + r.files + " files, " + size(r.bytes) + ", " + size(r.new_bytes) + " new, in " + r.duration_s.toFixed(1) + " s.");
      res.className = "";
      addSnapshotRow(r.snapshot_id);
    });
    es.addEventListener("error", (m) => {
      if (m.data) {
        end();
        $("#backup-result").textContent = "The backup failed: " + JSON.parse(m.data);
        $("#backup-result").className = "bad";
      } else if (es.readyState === EventSource.CLOSED) {
        end();
        flash("Lost the connection to the plug while backing up.", true);
      }
    });
  }

  // addSnapshotRow puts a new snapshot at the top of the list.
  async function addSnapshotRow(id) {
    let snaps;
    try { snaps = await api("GET", "/api/v1/snapshots"); } catch (e) { return; }
    const s = snaps.find((x) => x.id === id);
    if (!s) return;
    let body = document.querySelector("#snapshots tbody");
    if (!body) {
      const none = $("#no-snapshots");
      if (!none) return;
      body = el("tbody");
      const head = el("tr", {}, ...["Taken", "Snapshot", "Folders", "Files", "Size", "New", ""].map((h, i) => el("th", i >= 3 && i <= 5 ? { class: "num" } : {}, h)));
      none.replaceWith(el("table", { id: "snapshots" }, el("thead", {}, head), body));
    }
    if (body.querySelector('tr[data-id="' + CSS.escape(id) + '"]')) return;
    const t = new Date(s.time);
    const row = el("tr", { "data-id": s.id },
      el("td", {}, el("time", { datetime: s.time }, t.toLocaleString())),
      el("td", {}, el("code", {}, s.id.slice(0, 8))),
      el("td", {}, ...s.paths.map((p) => el("code", {}, p + " "))),
      el("td", { class: "num" }, String(s.files)),
      el("td", { class: "num" }, size(s.bytes)),
      el("td", { class: "num" }, size(s.new_bytes)),
      el("td", {}, el("a", { href: "/backups/" + encodeURIComponent(s.id), class: "browse" }, "Browse")));
    body.prepend(row);
  }

  function backupsPage() {
    onSubmit("#add-source", async (f) => {
      await api("POST", "/api/v1/sources", { path: f.path.value.trim() });
      location.reload();
    });
    onClick("button.rm-source", async (b) => {
      await api("DELETE", "/api/v1/sources", { path: b.dataset.path });
      location.reload();
    });
    onClick("#backup-now", async () => {
      const j = await api("POST", "/api/v1/backups/jobs", {});
      followBackup(j.id);
    });
    const running = $("#run") && $("#run").dataset.job;
    if (running) followBackup(running);

    // The redundancy target: the overhead shown as the number moves.
    const red = $("#redundancy");
    if (red && $("#redundancy-target")) {
      const n = Number(red.dataset.friends);
      const input = $("#redundancy-target");
      const auto = $("#redundancy-auto");
      const show = () => {
        input.disabled = auto.checked;
        const m = Number(input.value);
        const words = $("#redundancy-words");
        if (m >= 1 && n - m >= 1) {
          words.replaceChildren("Each pack is cut into " + (n - m) + " data and " + m + " spare shards over " + n +
            " friends: your data takes ", el("output", { id: "redundancy-overhead" }, (n / (n - m)).toFixed(2)), "× its size on their disks.");
        } else {
          words.replaceChildren("Losing " + m + " friends and keeping everything takes at least " + (m + 1) +
            " friends in different houses: pair with " + (m + 1 - n) + " more, or choose fewer.");
        }
      };
      input.addEventListener("input", show);
      auto.addEventListener("change", show);
      show();
      onSubmit("#redundancy-form", async (f) => {
        await api("PUT", "/api/v1/redundancy", { target: auto.checked ? "auto" : Number(f.target.value) });
        location.reload();
      });
    }

    onClick("#verify", async () => {
      const bar = $("#verify-bar");
      bar.hidden = false;
      bar.removeAttribute("value");
      const out = $("#check-result");
      out.replaceChildren("Asking your friends for proofs…");
      try {
        const rep = await stream("POST", "/api/v1/verify?stream=1", { read_data: $("#read-data").checked }, (o) => {
          if (o.progress && o.progress.total) { bar.max = o.progress.total; bar.value = o.progress.done; }
        });
        showVerify(rep);
      } finally {
        bar.hidden = true;
      }
    });
    onClick("#repair", async () => {
      $("#check-result").replaceChildren("Repairing…");
      const r = await api("POST", "/api/v1/repair");
      const rep = r.report || {};
      const out = $("#check-result");
      out.replaceChildren(el("p", { id: "repair-words" },
        (r.error ? "Repair stopped: " + r.error + ". " : "Repair done. ") +
        (rep.replaced && rep.replaced.length ? "Replaced " + rep.replaced.join(", ") + "; " : "No friend needed replacing; ") +
        rep.moved + " shards moved, " + rep.repacked + " packs cut again" + (rep.published ? ", and the catalog was given to your friends." : ".")));
      if (rep.failed && rep.failed.length) out.append(el("p", { class: "bad" }, "Failed: " + rep.failed.join(", ")));
    });
  }

  function showVerify(rep) {
    const out = $("#check-result");
    const words = rep.lost_packs && rep.lost_packs.length
      ? rep.lost_packs.length + " packs cannot be rebuilt: run Repair."
      : rep.can_lose >= rep.target
        ? "All good: you can lose " + rep.can_lose + " friend(s) and keep everything."
        : "Below target: you can lose " + rep.can_lose + " friend(s), you aim for " + rep.target + ". Run Repair, or pair with more friends.";
    const rows = (rep.friends || []).map((f) => el("tr", {},
      el("td", {}, f.name || f.peer_id.slice(0, 12)), el("td", { class: "num" }, f.shards), el("td", { class: "num" }, f.proved),
      el("td", { class: "num" }, f.missing), el("td", { class: "num" }, f.corrupt), el("td", {}, f.offline ? "offline" : (f.error || "ok"))));
    out.replaceChildren(el("p", { id: "verify-words", class: rep.ok ? "" : "bad" }, words),
      el("table", { id: "verify-table" }, el("thead", {}, el("tr", {}, el("th", {}, "Friend"), el("th", { class: "num" }, "Shards"),
        el("th", { class: "num" }, "Proved"), el("th", { class: "num" }, "Missing"), el("th", { class: "num" }, "Corrupt"), el("th", {}, ""))),
      el("tbody", {}, ...rows)));
  }

  function browsePage() {
    for (const b of $$("button.pick")) {
      b.addEventListener("click", () => {
        $("#restore-path").value = b.dataset.path;
        $("#restore-to").focus();
      });
    }
    onSubmit("#restore-form", async (f) => {
      const bar = $("#restore-bar");
      bar.hidden = false;
      bar.removeAttribute("value");
      const out = $("#restore-result");
      out.textContent = "Restoring…";
      out.className = "";
      try {
        const st = await stream("POST", "/api/v1/restore?stream=1",
          { snapshot: f.dataset.snapshot, path: f.path.value.trim(), to: f.to.value.trim(), overwrite: f.overwrite.checked },
          (o) => {
            const p = o.progress;
            if (p && p.bytes_total) { bar.max = p.bytes_total; bar.value = p.bytes; }
          });
        out.textContent = "Restored " + st.files + " files (" + size(st.bytes) + ") into " + f.to.value.trim() + ".";
      } catch (e) {
        out.textContent = e.message;
        out.className = "bad";
      } finally {
        bar.hidden = true;
      }
    });
  }

  // ---- Timeline ----

  function timelinePage() {
    onSubmit("#post-form", async (f) => {
      const fd = new FormData();
      fd.append("text", f.text.value);
      for (const img of f.image.files) fd.append("image", img, img.name);
      await api("POST", "/api/v1/posts", fd);
      location.reload();
    });
    onSubmit("form.edit-form", async (f) => {
      await api("PUT", "/api/v1/posts/" + encodeURIComponent(f.dataset.id), { text: f.text.value });
      location.reload();
    });
    onClick("button.delete", async (b) => {
      if (!confirm("Delete this post? Your friends' copies are deleted too.")) return;
      await api("DELETE", "/api/v1/posts/" + encodeURIComponent(b.dataset.id));
      location.reload();
    });
  }

  // ---- Import ----

  function importPage() {
    const run = async (body, kind) => {
      $("#import-status").hidden = false;
      const bar = $("#import-bar");
      bar.removeAttribute("value");
      const count = $("#import-count");
      count.textContent = "Sending…";
      const report = $("#import-report");
      report.replaceChildren();
      try {
        const rep = await stream("POST", "/api/v1/import?stream=1", body, (o) => {
          const p = o.progress;
          if (!p) return;
          if (p.total) { bar.max = p.total; bar.value = p.done; count.textContent = p.done + " of " + p.total; } else count.textContent = p.done + " read";
        });
        bar.max = 1;
        bar.value = 1;
        count.textContent = "Done.";
        const dl = el("dl", { class: "facts", id: "import-result" });
        for (const [k, label] of [["imported", "Imported"], ["duplicates", "Already there"], ["skipped", "Skipped"], ["media_found", "Pictures found"], ["media_missing", "Pictures missing from the export"]]) {
          dl.append(el("dt", {}, label), el("dd", { "data-key": k }, rep[k] || 0));
        }
        report.append(dl);
        if (rep.skip_reasons) report.append(el("p", { class: "muted" }, "Skipped: " + Object.entries(rep.skip_reasons).map(([r, n]) => r + " (" + n + ")").join(", ")));
        for (const e of rep.errors || []) report.append(el("p", { class: "bad" }, e));
        report.append(el("p", {}, el("a", { href: "/timeline?source=" + encodeURIComponent(kind), id: "see-imported" }, "See them on the timeline")));
      } catch (e) {
        count.textContent = "";
        report.replaceChildren(el("p", { class: "bad" }, "The import failed: " + e.message));
      }
    };
    onSubmit("#import-upload", async (f) => {
      const fd = new FormData();
      fd.append("kind", f.kind.value);
      fd.append("archive", f.archive.files[0], f.archive.files[0].name);
      await run(fd, f.kind.value);
    });
    onSubmit("#import-source", async (f) => {
      await run({ kind: f.kind.value, source: f.source.value.trim() }, f.kind.value);
    });
  }

  // ---- Log ----

  const rank = { DEBUG: 0, INFO: 1, WARN: 2, ERROR: 3 };

  function logPage() {
    const table = $("#log");
    const body = $("tbody", table);
    const min = rank[$("#log-level").value.toUpperCase()] || 0;
    const comp = $("#log-component").value.trim();
    const q = $("#log-q").value.trim().toLowerCase();
    let es = null;
    const add = (e) => {
      const attrs = Object.entries(e.attrs || {}).sort();
      const text = [e.component, e.message, ...attrs.map(([k, v]) => k + "=" + v)].join(" ").toLowerCase();
      if ((rank[e.level] ?? 1) < min || (comp && e.component !== comp) || (q && !text.includes(q))) return;
      const what = el("td", {}, e.message);
      for (const [k, v] of attrs) what.append(" ", el("span", { class: "attr" }, k + "=" + v));
      body.prepend(el("tr", { class: "lvl-" + e.level, "data-seq": e.seq },
        el("td", {}, el("time", { datetime: e.time }, when(e.time))), el("td", {}, e.level), el("td", {}, e.component || ""), what));
      while (body.rows.length > 1000) body.deleteRow(-1);
      const empty = $("#log-empty");
      if (empty) empty.remove();
    };
    const start = () => {
      es = new EventSource("/api/v1/events/stream?after=" + encodeURIComponent(table.dataset.after || "0"));
      es.addEventListener("log", (m) => {
        const e = JSON.parse(m.data);
        table.dataset.after = e.seq;
        add(e);
      });
    };
    const live = $("#log-live");
    live.addEventListener("change", () => {
      if (live.checked) start();
      else if (es) { es.close(); es = null; }
    });
    start();
  }

  const pages = { friends: friendsPage, backups: backupsPage, timeline: timelinePage, import: importPage, log: logPage };
  const page = document.body.dataset.page;
  if (pages[page]) pages[page]();
  if ($("#restore-form")) browsePage();
  document.body.dataset.ready = "1";
})();
