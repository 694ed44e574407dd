// The live inbox, page side: one WebSocket of this page's own, and each push swapped in with
// htmx's public API (htmx.swap: its fragments are out-of-band swaps by DOM id). Around it:
// reconnecting after any close with backoff, a refetch of what the page shows on every
// (re)open so nothing sent during a gap is lost (and whenever the server says the open socket
// missed a push), an indicator, and a count of new received messages in the title while the
// tab is hidden.
//
// Back and forward swap in a new copy of the page's body (htmx's history restore), with a
// new #live-socket element: everything here looks the element up when it needs it and
// listens on <body>, and the one socket serves every copy (the page tells it what it views).
(function () {
  "use strict";
  if (!document.getElementById("live-socket") || !window.htmx || window.inboxLive) return;
  window.inboxLive = true;
  // The server's close code for a session that logged out (inbox/consumers.py).
  var SESSION_ENDED = 4401;
  var baseTitle = document.title;
  var unseen = new Set();
  var versions = new Map();
  var retries = 0;
  var socket = null;
  // Pushes that arrive while a refetch is in flight: applied at once, and again after the
  // refetched state is swapped in, which may have been read before their change committed.
  var duringRefetch = null;
  // A refetch asked for while one is in flight: that one may have read the page before
  // what the request is about committed, so one more follows it (however many were asked).
  var refetchAgain = false;
  // Replayed pushes were already counted: a marker among them asks for nothing again.
  var replaying = false;

  // Exponential backoff with jitter, capped at 30 s.
  function backoff(attempt) {
    var ceiling = Math.min(30000, 500 * Math.pow(2, attempt));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  function socketElement() {
    return document.getElementById("live-socket");
  }

  var shown = "connecting";
  function show(state) {
    shown = state;
    var indicator = document.getElementById("live-status");
    if (!indicator) return;
    indicator.dataset.state = state;
    indicator.textContent = indicator.getAttribute("data-label-" + state) || state;
  }
  // A history restore brings a new copy of the indicator, as the server rendered it; the
  // socket is the same one.
  document.body.addEventListener("htmx:historyRestore", function () {
    show(shown);
  });

  function isOpen(ws) {
    return ws !== null && ws.readyState === WebSocket.OPEN;
  }

  // A push swapped in: every element of it is an out-of-band swap (inbox/live/fragments.py),
  // so nothing is swapped into the element itself. At once and settled at once, so that two
  // pushes are applied in the order they arrived.
  function swapIn(message) {
    var elt = socketElement();
    if (!elt) return;
    htmx.swap(elt, message, { swapStyle: "none", swapDelay: 0, settleDelay: 0 });
  }

  function replay(messages) {
    messages.forEach(received);
  }

  function refetch() {
    if (duringRefetch) {
      refetchAgain = true;
      return;
    }
    var elt = socketElement();
    var ids = ((elt && elt.getAttribute("data-live-refetch")) || "").split(/\s+/).filter(Boolean);
    duringRefetch = [];
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) throw new Error("refetch answered " + response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        versions.clear();
        // The fresh list is newer than every update held back; those that arrive during
        // the refetch are replayed below (and held again if the agent is still on the list).
        dropHeld();
        ids.forEach(function (id) {
          var current = document.getElementById(id);
          var replacement = fresh.getElementById(id);
          if (current && replacement) {
            current.replaceWith(replacement);
            htmx.process(replacement);
            // As for any swap: inbox.js renders its times with the page's one formatter.
            replacement.dispatchEvent(new CustomEvent("inbox:refetched", { bubbles: true }));
          }
        });
      })
      .catch(function (error) {
        console.warn("live: refetch failed", error);
      })
      .then(function () {
        var missed = duringRefetch || [];
        duringRefetch = null;
        replaying = true;
        try {
          replay(missed);
        } finally {
          replaying = false;
        }
        if (refetchAgain) {
          refetchAgain = false;
          refetch();
          return;
        }
        // "Live" only once the page has caught up with what it missed, if still connected.
        if (isOpen(socket)) show("live");
      });
  }

  // What the page views now. htmx navigates between tabs, searches and threads without a
  // reload, and a reconnect reuses the socket's first URL, so the page tells the server.
  // Read from what the server rendered into the panes htmx swaps (the list's state on
  // #list-results, the thread's id on #conversation-thread), never parsed from the address;
  // the server applies the defaults (inbox/listing.py).
  function view() {
    var list = document.getElementById("list-results");
    var thread = document.getElementById("conversation-thread");
    return JSON.stringify({
      type: "view",
      status: (list && list.getAttribute("data-live-status")) || "",
      q: (list && list.getAttribute("data-live-q")) || "",
      sort: (list && list.getAttribute("data-live-sort")) || "",
      assignee: (list && list.getAttribute("data-live-assignee")) || "",
      conversation: (thread && thread.getAttribute("data-conversation-id")) || "",
    });
  }
  var viewed = view();
  var socketUrl = null;

  function follow() {
    viewed = view();
    if (isOpen(socket)) socket.send(viewed);
  }

  function connect() {
    show(retries ? "reconnecting" : "connecting");
    if (socketUrl === null) {
      // The page's first view, in the element's data-live-url (relative to the page).
      var url = new URL(socketElement().getAttribute("data-live-url"), window.location.href);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      socketUrl = url.href;
    }
    var ws = new WebSocket(socketUrl);
    socket = ws;
    ws.addEventListener("open", function () {
      if (ws !== socket) return;
      retries = 0;
      follow();
      refetch();
    });
    ws.addEventListener("message", function (event) {
      if (ws === socket && typeof event.data === "string") received(event.data);
    });
    ws.addEventListener("close", function (event) {
      if (ws === socket) closed(event.code);
    });
  }

  function navigated() {
    if (view() === viewed) return;
    // Another tab or search: its list was read after every update held for the last one.
    dropHeld();
    follow();
    // What was pushed between the new pane's fetch and the socket following it. A closed
    // socket missed nothing yet (its next open refetches everything), and a refetch then
    // could only swap a stale read over the agent's own next action, with no push to
    // correct it.
    if (isOpen(socket)) refetch();
  }
  // After the swap: htmx updates the address before it swaps, and view() reads the panes.
  ["htmx:afterSwap", "htmx:historyRestore"].forEach(
    function (name) {
      document.body.addEventListener(name, navigated);
    }
  );
  window.addEventListener("popstate", navigated);

  // Any close but a logout: reconnect after a while (a deploy, a restart, an idle proxy,
  // daphne's --websocket_timeout closing with 1000).
  function closed(code) {
    socket = null;
    var elt = socketElement();
    if (code === SESSION_ENDED) {
      // Logged out (in another tab, say): nothing to reconnect to; the login form, then back.
      var login = (elt && elt.getAttribute("data-login-url")) || "/";
      window.location.assign(
        login +
          (login.indexOf("?") >= 0 ? "&" : "?") +
          "next=" +
          encodeURIComponent(window.location.pathname + window.location.search)
      );
      return;
    }
    show("reconnecting");
    retries += 1;
    setTimeout(connect, backoff(retries));
  }

  // A fragment older than one already applied to the same element is dropped, so pushes
  // from several server processes may arrive in any order.
  document.body.addEventListener("htmx:oobBeforeSwap", function (event) {
    var fragment = event.detail.fragment;
    var elt = fragment && fragment.nodeType === 11 ? fragment.firstElementChild : fragment;
    if (!elt || !elt.getAttribute) return;
    var key = elt.getAttribute("data-live-key");
    var version = Number(elt.getAttribute("data-live-version"));
    if (!key || !version) return;
    if ((versions.get(key) || 0) > version) {
      event.detail.shouldSwap = false;
    } else {
      versions.set(key, version);
    }
  });

  // A bubble whose successor this page does not have (yet) goes at the end of the thread.
  document.body.addEventListener("htmx:oobErrorNoTarget", function (event) {
    var content = event.detail.content;
    var fallback = content && content.getAttribute && content.getAttribute("data-live-fallback");
    var target = fallback && document.querySelector(fallback);
    if (!target) return;
    var nodes = Array.from(content.childNodes);
    target.append.apply(target, nodes);
    nodes.forEach(function (node) {
      if (node.nodeType === 1) htmx.process(node);
    });
  });

  function showCount() {
    document.title = unseen.size ? "(" + unseen.size + ") " + baseTitle : baseTitle;
  }
  // The frames that make the page fetch what it shows: sent instead of a fragment too big
  // for one frame (inbox/live/fragments.py), the message included; and when the socket missed
  // a push (a numbered batch that never came, inbox/consumers.py), so the page is not left
  // stale.
  var REFETCH_MARKERS = ["<!--live:refetch-->", "<!--live:resync-->"];
  function asksForRefetch(message) {
    return REFETCH_MARKERS.some(function (marker) {
      return message.indexOf(marker) >= 0;
    });
  }
  function beforeMessage(message) {
    if (duringRefetch) duringRefetch.push(message);
    if (!replaying && asksForRefetch(message)) refetch();
    if (!document.hidden) return;
    var marker = /<!--live:received ([0-9a-f-]+)-->/g;
    var match;
    while ((match = marker.exec(message)) !== null) unseen.add(match[1]);
    showCount();
  }

  function received(message) {
    beforeMessage(message);
    if (hold(message)) return;
    swapIn(message);
  }

  // --- The list stays still under the agent's hand (README, "What the page keeps true"). While the
  // pointer is on the list, or the list is scrolled down, a pushed row would move the rows
  // under it: the list's frames (rows, marked `live:row <id>`, and the tabs' counts, which
  // count them) wait, in order, and #list-updates says how many conversations changed.
  // They are applied when the agent clicks it, when the pointer leaves the list at its top,
  // or when the list is scrolled back to its top. Bubbles and headers are never held.
  var held = [];
  var heldRows = new Set();
  var pointerOnList = false;
  var ROW_MARKER = /<!--live:row ([0-9a-f-]+)-->/;
  var COUNTS_MARKER = "<!--live:counts-->";

  function listScroller() {
    return document.getElementById("list-scroll");
  }

  function listScrolled() {
    var scroller = listScroller();
    return Boolean(scroller && scroller.scrollTop > 0);
  }

  function hold(message) {
    var row = ROW_MARKER.exec(message);
    // The counts wait only behind rows that wait: alone they move nothing.
    var counts = !row && held.length > 0 && message.indexOf(COUNTS_MARKER) >= 0;
    if (!counts && !(row && (pointerOnList || listScrolled()))) return false;
    held.push(message);
    if (row) heldRows.add(row[1]);
    showBar();
    return true;
  }

  function showBar() {
    var bar = document.getElementById("list-updates");
    if (!bar) return;
    var count = heldRows.size;
    bar.hidden = count === 0;
    var label = bar.getAttribute(count === 1 ? "data-label-one" : "data-label-other") || "";
    bar.textContent = count ? label.replace("{count}", String(count)) : "";
  }

  function dropHeld() {
    held = [];
    heldRows.clear();
    showBar();
  }

  function applyHeld() {
    var frames = held;
    dropHeld();
    frames.forEach(swapIn);
  }

  document.addEventListener("click", function (event) {
    var bar = event.target.closest && event.target.closest("#list-updates");
    if (!bar) return;
    var scroller = listScroller();
    // The agent asked for the updates: applied, and the top of the list, where they are.
    if (scroller) scroller.scrollTop = 0;
    applyHeld();
  });
  // A mouse only: a tap (touch, pen) leaves no pointer resting on the list.
  document.addEventListener("pointerover", function (event) {
    if (event.pointerType !== "mouse") return;
    pointerOnList = Boolean(event.target.closest && event.target.closest("#list-scroll"));
  });
  document.addEventListener("pointerout", function (event) {
    if (event.pointerType !== "mouse") return;
    var to = event.relatedTarget;
    if (to && to.closest && to.closest("#list-scroll")) return;
    pointerOnList = false;
    if (!listScrolled() && held.length) applyHeld();
  });
  // Scroll events do not bubble: listened to in the capture phase, for whichever copy of
  // the list (htmx swaps it) is scrolled.
  document.addEventListener(
    "scroll",
    function (event) {
      if (event.target.id === "list-scroll" && event.target.scrollTop === 0 && held.length) {
        applyHeld();
      }
    },
    true
  );

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      unseen.clear();
      showCount();
    }
  });

  connect();
})();
