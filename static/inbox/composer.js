// The reply box's few behaviours that a form cannot express (templates/inbox/index.html,
// partial "composer"): Enter sends and Shift+Enter adds a line, a count once the reply
// nears the limit, a refusal (400/409) shown in place with the draft and the focus kept,
// the Reply/Note toggle, and the box following a close or reopen that another agent made
// (pushed in the header).
(function () {
  "use strict";

  function form() {
    return document.getElementById("reply-form");
  }

  // Characters as the server counts them (code points: an emoji is one, not two).
  function length(text) {
    return Array.from(text.replace(/\r\n/g, "\n")).length;
  }

  // Shown within 10% of the limit, and beyond it, in the form's own language.
  function updateCount() {
    var f = form();
    var box = document.getElementById("reply-content");
    var count = document.getElementById("reply-count");
    if (!f || !box || !count) return;
    var limit = Number(f.dataset.limit) || 4096;
    var left = limit - length(box.value);
    var text = "";
    if (left < 0) text = f.dataset.countOver.replace("{n}", String(-left));
    else if (left <= limit / 10) text = f.dataset.countLeft.replace("{n}", String(left));
    if (count.textContent !== text) count.textContent = text;
    count.dataset.over = left < 0 ? "true" : "false";
  }

  function noteMode(f) {
    var checked = f.querySelector("input[name=mode]:checked");
    return !!checked && checked.value === "note";
  }

  // The box follows the Reply/Note toggle (README, "Triage": a note is allowed where a reply
  // is not) and the thread's state as pushed to every viewer in the header: a reply is off
  // while the conversation is closed or no provider is configured, a note never is.
  function followState() {
    var f = form();
    var fieldset = document.getElementById("reply-fieldset");
    var help = document.getElementById("reply-help");
    var box = document.getElementById("reply-content");
    var send = document.getElementById("reply-send");
    if (!f || !fieldset || !help || !box || !send) return;
    var status = document.getElementById("conversation-status");
    var closed = !!status && status.dataset.status === "CLOSED";
    var note = noteMode(f);
    var off = f.dataset.provider !== "on" ? f.dataset.offReason : closed ? f.dataset.closedReason : "";
    var textOff = !note && !off && !!f.dataset.textBlocked;
    var wanted = {
      mode: note ? "note" : "reply",
      disabled: !note && !!off,
      help: note ? f.dataset.noteHelp : off || f.dataset.textBlocked || f.dataset.openHelp,
      placeholder: note ? f.dataset.notePlaceholder : f.dataset.replyPlaceholder,
      send: note ? f.dataset.noteSend : f.dataset.replySend,
    };
    // Only what changed: this runs after every swap on the page.
    if (f.dataset.mode !== wanted.mode) f.dataset.mode = wanted.mode;
    if (fieldset.disabled !== wanted.disabled) fieldset.disabled = wanted.disabled;
    if (box.disabled !== textOff) box.disabled = textOff;
    if (send.disabled !== textOff) send.disabled = textOff;
    if (help.textContent !== wanted.help) help.textContent = wanted.help;
    if (box.placeholder !== wanted.placeholder) box.placeholder = wanted.placeholder;
    if (send.textContent !== wanted.send) send.textContent = wanted.send;
  }

  function refresh() {
    updateCount();
    followState();
  }

  document.addEventListener("keydown", function (event) {
    if (event.target.id !== "reply-content" || event.key !== "Enter") return;
    // Shift+Enter is a new line; Enter while an input method composes a word is the IME's.
    if (event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    var f = form();
    if (f && !document.getElementById("reply-fieldset").disabled) f.requestSubmit();
  });

  document.addEventListener("input", function (event) {
    if (event.target.id === "reply-content") updateCount();
  });

  document.addEventListener("change", function (event) {
    if (event.target.name !== "mode" || !event.target.closest("#reply-form")) return;
    followState();
    var box = document.getElementById("reply-content");
    if (box && !box.disabled) box.focus();
  });

  // A refusal answers 400 or 409 with the box re-rendered (the reason, the draft): swapped in
  // like a success, where htmx would otherwise drop an error's body.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (event.detail.target && event.detail.target.id === "reply-form" && (status === 400 || status === 409)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // After a send or a refusal the new box gets the focus back, the cursor after the draft.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (!event.detail.target || event.detail.target.id !== "reply-form") return;
    var box = document.getElementById("reply-content");
    if (box && !box.disabled) {
      box.focus();
      box.setSelectionRange(box.value.length, box.value.length);
    }
  });

  document.addEventListener("DOMContentLoaded", refresh);
  document.addEventListener("htmx:load", refresh);
  document.addEventListener("htmx:afterSettle", refresh);
  document.addEventListener("htmx:oobAfterSwap", refresh);
})();
