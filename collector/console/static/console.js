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
