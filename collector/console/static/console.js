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
