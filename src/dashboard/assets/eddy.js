// eddy's dashboard: small improvements over pages that work without this script.
"use strict";

// Times are rendered in UTC on the server; show them in the reader's own time zone.
function localTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const at = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(at.getTime())) continue;
    el.title = el.getAttribute("datetime");
    el.textContent = at.toLocaleString(undefined, {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
  }
}

// The JSON editor says what is wrong as one types, and will not submit invalid JSON.
function jsonEditors(root) {
  for (const area of root.querySelectorAll("textarea[data-json-editor]")) {
    const form = area.form;
    const error = form.querySelector("#json-error");
    const save = form.querySelector("button[type=submit]");
    const check = () => {
      try {
        JSON.parse(area.value);
        error.hidden = true;
        error.textContent = "";
        save.disabled = false;
        area.removeAttribute("aria-invalid");
      } catch (e) {
        error.hidden = false;
        error.textContent = "Not valid JSON: " + e.message;
        save.disabled = true;
        area.setAttribute("aria-invalid", "true");
      }
    };
    area.addEventListener("input", check);
    area.addEventListener("keydown", (event) => {
      // Tab indents rather than leaving the editor.
      if (event.key !== "Tab" || event.shiftKey) return;
      event.preventDefault();
      area.setRangeText("  ", area.selectionStart, area.selectionEnd, "end");
      check();
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  jsonEditors(document);
});
// Parts htmx swaps in (a job's progress) get local times too.
document.addEventListener("htmx:afterSwap", (event) => localTimes(event.target));
