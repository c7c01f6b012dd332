// The console works without this file; it only adds conveniences.
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
