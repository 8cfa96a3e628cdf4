// Progressive enhancement only: every page works without this file.
// - Forms with data-confirm ask before they submit (delete, replay).
// - Buttons with data-copy copy a text (an ingest URL) to the clipboard.
document.addEventListener("submit", function (e) {
  var form = e.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) { e.preventDefault(); }
});
document.addEventListener("click", function (e) {
  var button = e.target.closest && e.target.closest("[data-copy]");
  if (!button || !navigator.clipboard) { return; }
  navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
    button.textContent = "Copied";
  });
});
