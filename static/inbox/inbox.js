// The inbox's few lines of behaviour that HTML and htmx cannot express:
// keyboard shortcuts, times in the agent's zone and language, and which row is open.
(function () {
  "use strict";

  // --- Time zone: tell the server the browser's zone (read by AgentTimezoneMiddleware),
  // so the times it renders (day separators, titles) are the agent's from the next page on.
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone && /^[A-Za-z0-9_+\-\/]+$/.test(zone) && !document.cookie.match(new RegExp("(^|; )tz=" + zone.replace(/[+]/g, "\\+") + "(;|$)"))) {
    document.cookie = "tz=" + zone + "; path=/; max-age=31536000; samesite=lax";
  }

  // --- Times: every <time datetime> is re-rendered here, in the browser's zone and the
  // page's language, so a fragment pushed to every agent reads right for each of them. The
  // one formatter for the page, htmx answers, pushes and refetches (README, "The inbox").
  var lang = document.documentElement.lang || "en";
  var clock = new Intl.DateTimeFormat(lang, { hour: "numeric", minute: "2-digit" });
  var full = new Intl.DateTimeFormat(lang, { dateStyle: "full", timeStyle: "short" });
  var dayMonth = new Intl.DateTimeFormat(lang, { day: "numeric", month: "short" });
  var dateOnly = new Intl.DateTimeFormat(lang, { dateStyle: "medium" });
  var medium = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  var relative = new Intl.RelativeTimeFormat(lang, { numeric: "auto", style: "short" });
  var relativeDay = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });

  // A thread's day separator: today, yesterday (in the page's language), else the date.
  function dayText(when, now) {
    var start = function (d) { return new Date(d.getFullYear(), d.getMonth(), d.getDate()); };
    var days = Math.round((start(when) - start(now)) / 86400000);
    if (days === 0 || days === -1) {
      var word = relativeDay.format(days, "day");
      return word.charAt(0).toLocaleUpperCase(lang) + word.slice(1);
    }
    return dateOnly.format(when);
  }

  function relativeText(when, now) {
    var seconds = Math.round((when - now) / 1000);
    var abs = Math.abs(seconds);
    if (abs < 60) return relative.format(0, "second");
    if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
    if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
    if (abs < 7 * 86400) return relative.format(Math.round(seconds / 86400), "day");
    if (when.getFullYear() === now.getFullYear()) return dayMonth.format(when);
    return dateOnly.format(when);
  }

  function renderTimes(root) {
    var now = new Date();
    root.querySelectorAll("time[datetime][data-format]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      var format = el.dataset.format;
      if (format === "relative") el.textContent = relativeText(when, now);
      else if (format === "time") el.textContent = clock.format(when);
      else if (format === "datetime") el.textContent = medium.format(when);
      else if (format === "day") el.textContent = dayText(when, now);
      el.title = full.format(when);
    });
  }

  // --- The thread's day separators: one before the first message of each day, in the
  // browser's zone. Pages and pushed bubbles each bring the separator of their own first
  // day (a pushed bubble always brings one, inbox/_pushed.html#bubble), so after every
  // swap each day keeps one separator, moved before its first message, and the rest go.
  function dayKey(el) {
    var time = el && el.querySelector("time[datetime]");
    var when = time && new Date(time.getAttribute("datetime"));
    if (!when || isNaN(when)) return null;
    return when.getFullYear() + "-" + (when.getMonth() + 1) + "-" + when.getDate();
  }

  function joinDays() {
    var list = document.getElementById("messages");
    if (!list) return;
    var separators = {};
    list.querySelectorAll(":scope > .day-separator").forEach(function (el) {
      var key = dayKey(el);
      if (key && !separators[key]) separators[key] = el;
      else el.remove();
    });
    var used = new Set();
    var previous = null;
    list.querySelectorAll(":scope > li[id^='message-'], :scope > li[id^='note-']").forEach(function (message) {
      var key = dayKey(message);
      if (!key || key === previous) return;
      previous = key;
      var separator = separators[key];
      if (!separator || used.has(key)) return;
      used.add(key);
      if (separator.nextElementSibling !== message) list.insertBefore(separator, message);
    });
    Object.keys(separators).forEach(function (key) {
      if (!used.has(key)) separators[key].remove();
    });
  }

  // --- A thread opened from a search's row: its matching message in view (once).
  function showMatch(root) {
    var match = root.querySelector && root.querySelector("#messages [data-search-match]:not([data-shown])");
    if (!match) return;
    match.setAttribute("data-shown", "");
    // The thread's own scroller only: scrollIntoView would also scroll the page itself,
    // pushing the top bar out of sight.
    var scroller = match.closest(".thread-scroll");
    if (!scroller) return;
    var box = scroller.getBoundingClientRect();
    var at = match.getBoundingClientRect();
    scroller.scrollTop += at.top + at.height / 2 - (box.top + box.height / 2);
  }

  // --- Which conversation is open: aria-current on its row (rows are shared by every
  // agent, so the server never marks them).
  function markCurrent() {
    var thread = document.getElementById("conversation-thread");
    var id = thread ? thread.dataset.conversationId : null;
    document.querySelectorAll("#conversation-list a.conversation-link").forEach(function (a) {
      var row = a.closest("li");
      if (id && row && row.id === "conversation-" + id) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
  }

  function refresh(root) {
    renderTimes(root || document);
    joinDays();
    markCurrent();
    showMatch(root || document);
  }

  document.addEventListener("DOMContentLoaded", function () { refresh(document); });
  document.addEventListener("htmx:load", function (event) { refresh(event.target); });
  document.addEventListener("htmx:oobAfterSwap", function () { refresh(document); });
  // What live.js refetched (on every socket open): swapped without htmx, same formatter.
  document.addEventListener("inbox:refetched", function (event) { refresh(event.target); });
  setInterval(function () { renderTimes(document); }, 60000);

  // htmx's history snapshot is the page's HTML, where a typed search is only a property:
  // write it into the attribute so back/forward show the query that made the list.
  document.addEventListener("htmx:beforeHistorySave", function () {
    var search = document.getElementById("search-q");
    if (search) search.setAttribute("value", search.value);
  });

  // --- Keyboard: j/k move through the list, Enter opens (a focused link does that
  // natively), / focuses the search, Escape leaves it.
  function typing(target) {
    return target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName);
  }

  function moveFocus(step) {
    var links = Array.prototype.slice.call(
      document.querySelectorAll("#conversation-list a.conversation-link")
    );
    if (!links.length) return;
    var index = links.indexOf(document.activeElement);
    if (index === -1) index = links.findIndex(function (a) { return a.getAttribute("aria-current") === "page"; });
    var next = index === -1 ? (step > 0 ? 0 : links.length - 1) : Math.min(Math.max(index + step, 0), links.length - 1);
    links[next].focus();
    links[next].scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape" && event.target.id === "search-q") {
      event.target.blur();
      return;
    }
    if (typing(event.target)) return;
    if (event.key === "j") { event.preventDefault(); moveFocus(1); }
    else if (event.key === "k") { event.preventDefault(); moveFocus(-1); }
    else if (event.key === "/") {
      var search = document.getElementById("search-q");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
    }
  });
})();
