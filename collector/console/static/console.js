// The console works without this file; it only adds conveniences: select-all, print, the
// overview's live refresh, the document check's drop zone, and triage in place on the alert
// list (buttons and keyboard; the row is replaced by the one the server renders, so nothing
// here builds markup from data).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll("input.pick").forEach(function (box) { box.checked = all.checked; });
    });
  }
  var print = document.getElementById("print");
  if (print) { print.addEventListener("click", function () { window.print(); }); }
  var upload = document.getElementById("doccheck-form");
  if (upload) { documentCheck(upload); }
  var table = document.getElementById("alerts");
  if (table && document.getElementById("close-panel")) { triage(table); }
});

// The overview refreshes itself: the server says when the alert feed moved (server-sent
// events), then the page fetches its body again. One fetch at a time; a change that arrives
// during one is fetched right after it. Every 30 s it refreshes anyway (agents, duty shifts).
document.addEventListener("DOMContentLoaded", function () {
  var live = document.getElementById("overview-live");
  if (!live || !window.EventSource || !window.fetch) { return; }
  var state = document.getElementById("live-state");
  var busy = false, again = false;
  function shown() {
    var body = live.querySelector("[data-cursor]");
    return body ? Number(body.getAttribute("data-cursor")) : -1;
  }
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(live.getAttribute("data-live"), {credentials: "same-origin", cache: "no-store"})
      .then(function (response) {
        if (response.redirected || !response.ok) { throw new Error("status " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var parsed = new DOMParser().parseFromString(html, "text/html");
        var body = parsed.querySelector("[data-cursor]");
        if (body) { live.replaceChildren(document.importNode(body, true)); }
      })
      .catch(function () { if (state) { state.textContent = state.getAttribute("data-lost"); } })
      .finally(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }
  var stream = new EventSource(live.getAttribute("data-stream"));
  stream.addEventListener("open", function () {
    if (state) { state.textContent = state.getAttribute("data-idle"); state.className = "live-state noprint on"; }
  });
  stream.addEventListener("error", function () {
    if (state) { state.textContent = state.getAttribute("data-lost"); state.className = "live-state noprint off"; }
  });
  stream.addEventListener("change", function (message) {
    var cursor = -1;
    try { cursor = JSON.parse(message.data).cursor; } catch (e) { cursor = -1; }
    if (cursor < 0 || cursor !== shown()) { refresh(); }
  });
  window.setInterval(refresh, 30000);
});
// 文书检查: drop files on the zone (the file input still works alone), refuse too many or too
// large before anything is sent, with the page's own words from data-* attributes.
function documentCheck(form) {
  var zone = document.getElementById("dropzone");
  var input = document.getElementById("files");
  var chosen = document.getElementById("chosen");
  var error = document.getElementById("client-error");
  var maxBytes = parseInt(form.dataset.maxBytes, 10);
  var maxFiles = parseInt(form.dataset.maxFiles, 10);
  var suffixes = input.accept.split(",");
  function problem() {
    var files = input.files, total = 0;
    if (files.length > maxFiles) { return form.dataset.tooMany; }
    for (var i = 0; i < files.length; i++) {
      total += files[i].size;
      var name = files[i].name.toLowerCase();
      if (!suffixes.some(function (s) { return name.endsWith(s); })) { return form.dataset.wrongType; }
    }
    return total > maxBytes ? form.dataset.tooLarge : "";
  }
  function show() {
    var names = Array.prototype.map.call(input.files, function (f) { return f.name; });
    chosen.textContent = names.length ? form.dataset.chosen.replace("{names}", names.join("、")) : "";
    var message = problem();
    error.textContent = message;
    error.hidden = !message;
  }
  input.addEventListener("change", show);
  ["dragenter", "dragover"].forEach(function (kind) {
    zone.addEventListener(kind, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (kind) {
    zone.addEventListener(kind, function (e) { e.preventDefault(); zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (e) {
    if (e.dataTransfer && e.dataTransfer.files.length) {
      input.files = e.dataTransfer.files;
      show();
    }
  });
  form.addEventListener("submit", function (e) {
    var message = problem();
    if (message) { e.preventDefault(); error.textContent = message; error.hidden = false; }
  });
}

function triage(table) {
  var bulk = document.getElementById("bulk");
  var status = document.getElementById("triage-status");
  var csrf = bulk.querySelector("input[name=csrf]").value;
  var back = bulk.querySelector("input[name=back]").value;
  var selected = null;

  function rows() { return Array.prototype.slice.call(table.querySelectorAll("tbody tr.alert-row")); }

  function select(row) {
    if (!row) { return; }
    if (selected) { selected.classList.remove("selected"); selected.removeAttribute("aria-selected"); }
    selected = row;
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var list = rows();
    var index = list.indexOf(selected);
    select(list[Math.max(0, Math.min(list.length - 1, index + step))]);
  }

  function say(text, failed) {
    status.textContent = text;
    status.className = failed ? "error" : "ok";
  }

  function act(row, action, fields) {
    var body = new URLSearchParams();
    body.append("csrf", csrf);
    body.append("back", back);
    Object.keys(fields || {}).forEach(function (key) { body.append(key, fields[key]); });
    var url = "/console/alerts/" + row.dataset.id + "/" + action;
    return fetch(url, { method: "POST", body: body, credentials: "same-origin",
                        headers: { "X-Requested-With": "fetch", "Accept": "application/json" } })
      .then(function (response) {
        return response.json().then(function (answer) { return [response, answer]; });
      })
      .then(function (pair) {
        var answer = pair[1];
        if (answer.row) {
          var holder = document.createElement("template");
          holder.innerHTML = answer.row.trim();
          var fresh = holder.content.firstElementChild;
          var wasSelected = row === selected;
          row.replaceWith(fresh);
          if (wasSelected) { select(fresh); }
        }
        say(answer.message, !pair[0].ok);
        return pair[0].ok;
      })
      .catch(function () { say(status.dataset.failed || "请求失败，请刷新页面后重试。", true); return false; });
  }

  function closePanel(row) {
    var open = table.querySelector("tr.close-row");
    if (open) { open.remove(); }
    var copy = document.getElementById("close-panel").content.firstElementChild.cloneNode(true);
    row.after(copy);
    var radios = copy.querySelectorAll("input[type=radio]");
    var comment = copy.querySelector(".close-comment");
    function resolution() {
      var picked = copy.querySelector("input[type=radio]:checked");
      return picked ? picked.value : "";
    }
    function submit() {
      if (!resolution()) { radios[0].focus(); return; }
      if (!comment.value.trim()) { comment.focus(); return; }
      act(row, "close", { resolution: resolution(), comment: comment.value }).then(function (ok) {
        if (ok) { copy.remove(); }
      });
    }
    copy.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { event.preventDefault(); copy.remove(); select(row); return; }
      if (event.key === "Enter") { event.preventDefault(); submit(); return; }
      if (event.target !== comment && /^[1-9]$/.test(event.key) && radios[event.key - 1]) {
        event.preventDefault();
        radios[event.key - 1].checked = true;
        comment.focus();
      }
    });
    radios.forEach(function (radio) {
      radio.addEventListener("change", function () { comment.focus(); });
    });
    copy.querySelector(".close-submit").addEventListener("click", submit);
    copy.querySelector(".close-cancel").addEventListener("click", function () { copy.remove(); });
    radios[0].focus();
  }

  table.addEventListener("click", function (event) {
    var target = event.target;
    var row = target.closest("tr.alert-row");
    if (!row) { return; }
    var button = target.closest("button.quick-action");
    if (button) {
      event.preventDefault();
      select(row);
      act(row, button.dataset.action);
      return;
    }
    if (target.closest("a.quick-close")) {
      event.preventDefault();
      select(row);
      closePanel(row);
      return;
    }
    if (!target.closest("a, input, button, label")) { select(row); }
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.target.closest("input, select, textarea, .close-panel")) { return; }
    var key = event.key;
    if (key === "j") { event.preventDefault(); move(1); return; }
    if (key === "k") { event.preventDefault(); move(-1); return; }
    if (!selected) { return; }
    var state = selected.dataset.status;
    if (key === "a" && state === "new") { event.preventDefault(); act(selected, "acknowledge"); }
    else if (key === "s" && state === "acknowledged") { event.preventDefault(); act(selected, "start"); }
    else if (key === "c" && state !== "closed") { event.preventDefault(); closePanel(selected); }
    else if (key === "o" || key === "Enter") {
      event.preventDefault();
      window.location.href = selected.querySelector("a.open").href;
    } else if (key === "x") {
      var box = selected.querySelector("input.pick");
      if (box) { event.preventDefault(); box.checked = !box.checked; }
    }
  });

  select(rows()[0]);
}
