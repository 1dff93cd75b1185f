// phonebank reference volunteer page: plain JS, same-origin fetches only.
// The volunteer token, the lease and its number live in memory only (never in storage).
"use strict";

(function () {
  const OUTCOMES = [
    ["conversation", "Talked"],
    ["refused", "Answered, declined"],
    ["no_answer", "No answer"],
    ["busy", "Busy"],
    ["voicemail", "Voicemail"],
    ["wrong_number", "Wrong number"],
    ["not_in_service", "Not in service"],
    ["do_not_call", "Do not call again"],
    ["skipped", "Could not call"],
  ];
  const MS_PER_MINUTE = 60000;
  const CLOCK_REFRESH_MS = 30000;
  let lease = null;

  const $ = (id) => document.getElementById(id);

  function say(text, isError) {
    const status = $("status");
    status.textContent = text;
    status.className = isError ? "error" : "";
  }

  function bearer() {
    return { "Authorization": "Bearer " + $("token").value.trim() };
  }

  async function call(method, path, body, extraHeaders) {
    const headers = Object.assign({}, bearer(), extraHeaders || {});
    const init = { method: method, headers: headers, credentials: "omit", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const answer = await fetch(path, init);
    const text = await answer.text();
    return { status: answer.status, data: text ? JSON.parse(text) : null };
  }

  function explain(answer) {
    const data = answer.data || {};
    if (answer.status === 423 && data.next_opening) {
      return "Nobody may be called now; calling opens at " +
        new Date(data.next_opening).toLocaleString() + ".";
    }
    if (answer.status === 409 && data.retry_after_ms) {
      return data.message + "; try again in " +
        Math.ceil(data.retry_after_ms / MS_PER_MINUTE) + " min.";
    }
    return (data.message || "Error") + " (" + answer.status + ")";
  }

  function calleeClock(zone) {
    try {
      return new Intl.DateTimeFormat("en-GB", {
        timeZone: zone, weekday: "short", hour: "2-digit", minute: "2-digit",
      }).format(new Date()) + " (" + zone + ")";
    } catch (e) {
      return zone;
    }
  }

  function showLease() {
    $("lease").hidden = lease === null;
    $("ask").hidden = lease !== null;
    if (lease === null) {
      $("tel").textContent = "…";
      $("tel").href = "#";
      return;
    }
    $("tel").textContent = lease.number;
    $("tel").href = "tel:" + lease.number;
    $("region").textContent = lease.region.name + " — " + lease.region.name_ru;
    $("localtime").textContent = calleeClock(lease.callee_zone);
    $("attempt").textContent = String(lease.attempt);
    $("deadline").textContent = new Date(lease.deadline_ms).toLocaleTimeString();
  }

  async function loadGuideline(path) {
    const answer = await call("GET", path);
    if (answer.status !== 200) {
      return;
    }
    for (const text of answer.data.texts) {
      const target = $("guide-" + text.language);
      if (target) {
        target.textContent = text.body;
      }
    }
  }

  async function getNumber() {
    say("Asking for a number…");
    const answer = await call("POST", "/api/v1/leases", {});
    if (answer.status === 201) {
      lease = answer.data;
      showLease();
      say("Your number. Please call it now.");
      await loadGuideline(lease.guideline.path);
    } else if (answer.status === 204) {
      say("No number is available right now. Please try again later.");
    } else {
      say(explain(answer), true);
    }
  }

  async function onLease(action, body, done) {
    if (lease === null) {
      return;
    }
    const path = "/api/v1/leases/" + encodeURIComponent(lease.lease_id) + "/" + action;
    const answer = await call("POST", path, body || {}, { "X-Lease-Token": lease.lease_token });
    if (answer.status === 200) {
      done(answer.data);
    } else {
      if (answer.status === 404 || answer.status === 410) {
        lease = null;
        showLease();
      }
      say(explain(answer), true);
    }
  }

  function complete(outcome, callbackAt) {
    const body = { outcome: outcome };
    if (callbackAt) {
      body.callback_at = callbackAt;
    }
    onLease("complete", body, function () {
      lease = null;
      showLease();
      say("Thank you — recorded. Ready for the next one.");
    });
  }

  function setup() {
    const box = $("outcomes");
    for (const [code, label] of OUTCOMES) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = label;
      button.addEventListener("click", function () { complete(code); });
      box.appendChild(button);
    }
    $("get").addEventListener("click", getNumber);
    $("renew").addEventListener("click", function () {
      onLease("renew", {}, function (data) {
        lease.deadline_ms = data.deadline_ms;
        showLease();
        say("More time granted.");
      });
    });
    $("release").addEventListener("click", function () {
      onLease("release", {}, function () {
        lease = null;
        showLease();
        say("Number given back.");
      });
    });
    $("callback").addEventListener("click", function () {
      const picked = $("callback-at").value;
      if (!picked) {
        say("Pick the time the person asked to be called back.", true);
        return;
      }
      complete("callback", new Date(picked).toISOString());
    });
    showLease();
    setInterval(function () {
      if (lease !== null) {
        $("localtime").textContent = calleeClock(lease.callee_zone);
      }
    }, CLOCK_REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", setup);
})();
