// jobplatform dashboard: a page that can still change (body[data-refresh-ms]) asks for
// itself again with If-None-Match. A 304 (nothing changed) costs no body and no DOM work;
// a 200 replaces only the [data-live] regions whose markup changed, then polling goes on
// at the interval the new page names, or stops when it names none (a finished job).
// No inline script, no build step: served as a static file, so a strict
// Content-Security-Policy (script-src 'self') allows it.
(function () {
  "use strict";

  var body = document.body;
  var interval = parseInt(body.dataset.refreshMs || "", 10);
  var etag = body.dataset.etag || "";
  if (!interval || !window.fetch || !window.DOMParser) {
    return;
  }
  var indicator = document.getElementById("live-indicator");
  var timer = null;

  function say(text) {
    if (indicator) {
      indicator.textContent = text;
    }
  }

  function clock() {
    return new Date().toTimeString().slice(0, 8);
  }

  function schedule() {
    timer = window.setTimeout(poll, interval);
  }

  function apply(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    document.querySelectorAll("[data-live]").forEach(function (region) {
      var replacement = region.id && fresh.getElementById(region.id);
      if (replacement && replacement.outerHTML !== region.outerHTML) {
        region.replaceWith(document.adoptNode(replacement));
      }
    });
    document.title = fresh.title;
    body.dataset.updates = String(parseInt(body.dataset.updates || "0", 10) + 1);
    return parseInt(fresh.body.dataset.refreshMs || "", 10);
  }

  function poll() {
    timer = null;
    if (document.hidden) {
      // Nobody is looking: ask again once the page is visible.
      return;
    }
    window
      .fetch(window.location.href, {
        headers: { "If-None-Match": etag, Accept: "text/html" },
        cache: "no-store",
        credentials: "same-origin",
        redirect: "manual",
      })
      .then(function (response) {
        if (response.type === "opaqueredirect") {
          // Logged out (or the token was revoked): let the browser follow to the log-in page.
          window.location.reload();
          return null;
        }
        if (response.status === 304) {
          body.dataset.unchanged = String(parseInt(body.dataset.unchanged || "0", 10) + 1);
          say("live · checked " + clock());
          schedule();
          return null;
        }
        if (response.status !== 200) {
          say("live · answer " + response.status + " at " + clock() + ", retrying");
          schedule();
          return null;
        }
        etag = response.headers.get("ETag") || etag;
        return response.text().then(function (html) {
          var next = apply(html);
          if (next) {
            interval = next;
            say("live · updated " + clock());
            schedule();
          } else {
            say("final · " + clock());
          }
        });
      })
      .catch(function () {
        say("live · offline at " + clock() + ", retrying");
        schedule();
      });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && timer === null && interval) {
      poll();
    }
  });
  schedule();
})();
