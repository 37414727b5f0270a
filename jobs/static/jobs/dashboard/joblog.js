// jobplatform dashboard: the job page's log, live. Asks for the lines after the last one
// shown (section#job-log[data-after]) every data-refresh-ms with If-None-Match: an
// unchanged log is a 304 with no body; new lines are appended (as text, never as markup).
// A full answer (next: true) is followed at once. Polling stops once the job is finished
// and no line is left: the worker writes a job's last lines before its outcome.
// A static file, no inline script: a strict Content-Security-Policy allows it.
(function () {
  "use strict";

  var section = document.getElementById("job-log");
  if (!section || !window.fetch) {
    return;
  }
  var interval = parseInt(section.dataset.refreshMs || "", 10);
  if (!interval) {
    return; // the job had finished when the page was made: every line is on it
  }
  var url = section.dataset.logsUrl;
  var after = section.dataset.after || "0";
  var etag = "";
  var lines = document.getElementById("job-log-lines");
  var total = document.getElementById("job-log-total");
  var dropped = document.getElementById("job-log-dropped");
  var finished = { succeeded: true, failed: true, cancelled: true };
  var timer = null;
  var asking = false;

  function cell(row, text, className) {
    var td = document.createElement("td");
    if (className) {
      td.className = className;
    }
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function append(line) {
    var row = document.createElement("tr");
    row.dataset.lineId = String(line.id);
    row.dataset.level = line.level;
    cell(row, line.at.slice(11, 26)); // HH:MM:SS.ffffff, UTC like the rest of the page
    cell(row, String(line.attempt), "num");
    var level = document.createElement("span");
    level.className = "level level-" + line.level;
    level.textContent = line.level;
    cell(row, "").appendChild(level);
    cell(row, line.message, "message");
    var fields = document.createElement("code");
    fields.textContent = Object.keys(line.fields).length ? JSON.stringify(line.fields) : "";
    cell(row, "").appendChild(fields);
    lines.appendChild(row);
  }

  function schedule() {
    timer = window.setTimeout(poll, interval);
  }

  function apply(page) {
    page.results.forEach(append);
    if (page.results.length) {
      after = String(page.results[page.results.length - 1].id);
      section.dataset.after = after;
    }
    total.textContent = String(page.total);
    dropped.textContent = String(page.dropped);
    section.dataset.status = page.status;
    section.dataset.updates = String(parseInt(section.dataset.updates || "0", 10) + 1);
    if (page.next) {
      etag = ""; // another page: nothing to compare with yet
      poll();
    } else if (finished[page.status]) {
      section.dataset.final = "true";
    } else {
      schedule();
    }
  }

  function poll() {
    timer = null;
    if (document.hidden) {
      return; // asked again once the page is visible
    }
    asking = true;
    window
      .fetch(url + "?after=" + encodeURIComponent(after), {
        headers: { "If-None-Match": etag, Accept: "application/json" },
        cache: "no-store",
        credentials: "same-origin",
        redirect: "manual",
      })
      .then(function (response) {
        asking = false;
        if (response.status === 304) {
          schedule();
          return null;
        }
        if (response.status !== 200) {
          schedule(); // logged out: dashboard.js takes the browser to the log-in page
          return null;
        }
        etag = response.headers.get("ETag") || "";
        return response.json().then(apply);
      })
      .catch(function () {
        asking = false;
        schedule();
      });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && timer === null && !asking && section.dataset.final !== "true") {
      poll();
    }
  });
  poll();
})();
