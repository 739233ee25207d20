"""The web handset: one HTML page, served by the SMSC simulator's control channel at ``GET /``, that
looks and works like a phone for a tester.

A subscriber picker (the control channel's handsets, ``GET /handsets``, or any other MSISDN, switched
on at first use); an SMS thread (texts received and sent, newest last) with a box to send an MO text
to a short code; a dialler for USSD codes (MAP USSD, 3GPP TS 24.090, relayed over SMPP by the
simulator) with the USSD dialog: each screen, a reply box while the network asks for input, Cancel
(the gateway is told); a SIM toolkit pop-up (ETSI TS 102 223 6.4: DISPLAY TEXT, GET INKEY yes/no or a
key, GET INPUT, SELECT ITEM) with OK / Cancel (Yes / No, or Back) or the items, and the seconds
before the terminal's own timeout answers for the tester; and the handset's log. Live updates come
from the handset's Server-Sent Events stream (``GET /handsets/{msisdn}/events``; the routes are
listed in ``simulators.smsc_control``).

Plain HTML, CSS and JavaScript in this one string: no external resource, no build step. Everything
the network or a tester typed is put on the page as text (``textContent``, ``value``), never as HTML.
The response carries a Content-Security-Policy that allows only this page's own script and style
(by a nonce drawn per response) and requests to its own origin.
"""

from __future__ import annotations

import secrets

from aiohttp import web

__all__ = ["PAGE", "page_html", "page_response"]

_NONCE = "__NONCE__"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>TGW web handset</title>
<link rel="icon" href="data:,">
<style nonce="__NONCE__">
:root {
  --bezel: #171a1f; --screen: #f4f6f8; --ink: #1d2430; --muted: #687385; --line: #dde2e8;
  --accent: #0b6bcb; --ok: #1f8f4e; --bad: #c23b33; --in: #ffffff; --out: #d6e9ff;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif;
  color: var(--ink);
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; min-height: 100vh; background: linear-gradient(160deg, #e3e8ee, #b8c2ce); }
header.bar {
  display: flex; flex-wrap: wrap; align-items: center; gap: .6rem; padding: .6rem 1rem;
  background: #fff; box-shadow: 0 1px 4px rgba(0, 0, 0, .12);
}
header.bar h1 { font-size: 1rem; margin: 0 .8rem 0 0; }
header.bar form { display: flex; gap: .4rem; }
select, input, textarea, button { font: inherit; color: inherit; }
select, input, textarea {
  padding: .4rem .55rem; border: 1px solid #c5cdd8; border-radius: 10px; background: #fff;
}
button { cursor: pointer; }
button:disabled { opacity: .5; cursor: default; }
button.primary {
  background: var(--accent); color: #fff; border: 0; border-radius: 10px; padding: .45rem .95rem;
  font-weight: 600;
}
button.secondary {
  background: #e8ecf1; border: 0; border-radius: 10px; padding: .45rem .95rem; font-weight: 600;
}
.live { font-size: .8rem; display: inline-flex; align-items: center; gap: .35rem; margin-left: auto; }
.live::before { content: ""; width: .6rem; height: .6rem; border-radius: 50%; background: var(--ok); }
.live.off::before { background: var(--bad); }
.phone {
  width: 360px; height: 720px; margin: 1.4rem auto; padding: 14px; border-radius: 46px;
  background: var(--bezel); box-shadow: 0 24px 60px rgba(0, 0, 0, .35), inset 0 0 0 2px #3b424d;
}
.display {
  position: relative; height: 100%; border-radius: 34px; overflow: hidden; background: var(--screen);
  display: flex; flex-direction: column;
}
.statusbar {
  display: flex; justify-content: space-between; align-items: center; gap: .5rem;
  padding: .65rem 1.3rem .4rem; font-size: .74rem; font-weight: 600;
}
.statusbar .notch { width: 74px; height: 18px; border-radius: 10px; background: var(--bezel); }
.views { position: relative; flex: 1; overflow: hidden; }
.view { position: absolute; inset: 0; display: flex; flex-direction: column; }
.thread {
  list-style: none; margin: 0; padding: .6rem; flex: 1; overflow-y: auto;
  display: flex; flex-direction: column; gap: .45rem;
}
.bubble {
  max-width: 82%; padding: .45rem .7rem; border-radius: 15px; font-size: .9rem; line-height: 1.3;
  box-shadow: 0 1px 1px rgba(0, 0, 0, .08); overflow-wrap: anywhere;
}
.bubble.in { align-self: flex-start; background: var(--in); border-bottom-left-radius: 4px; }
.bubble.out { align-self: flex-end; background: var(--out); border-bottom-right-radius: 4px; }
.bubble.failed { box-shadow: inset 0 0 0 1px var(--bad); }
.bubble .meta { display: block; font-size: .68rem; color: var(--muted); margin-bottom: .15rem; }
.bubble .body { white-space: pre-wrap; }
.empty { align-self: center; margin-top: 2.5rem; color: var(--muted); font-size: .85rem; }
.compose {
  display: flex; flex-direction: column; gap: .35rem; padding: .5rem; background: #fff;
  border-top: 1px solid var(--line);
}
.compose .row { display: flex; gap: .35rem; align-items: flex-end; }
.compose textarea { flex: 1; resize: none; }
.status { margin: 0; min-height: 1em; font-size: .75rem; color: var(--muted); }
.status.error { color: var(--bad); }
.number {
  margin: 1.6rem .9rem .4rem; border: 0; background: transparent; text-align: center;
  font-size: 1.8rem; letter-spacing: .04em;
}
.number:focus { outline: none; }
.keypad { display: grid; grid-template-columns: repeat(3, 1fr); gap: .7rem; padding: .5rem 2.3rem; }
.keypad button {
  aspect-ratio: 1; border: 0; border-radius: 50%; background: #e4e9ef; font-size: 1.5rem;
  line-height: 1.1;
}
.keypad button:active { background: #cdd5de; }
.keypad small { display: block; font-size: .55rem; letter-spacing: .14em; color: var(--muted); }
.dial-actions { display: flex; justify-content: center; align-items: center; gap: 2.2rem; padding: .7rem; }
button.call {
  width: 64px; height: 64px; border: 0; border-radius: 50%; background: var(--ok); color: #fff;
  font-size: 1.05rem; font-weight: 700;
}
button.erase { border: 0; background: none; font-size: 1.4rem; color: var(--muted); }
.view .status { text-align: center; padding: 0 1rem; }
.log {
  list-style: none; margin: 0; padding: .5rem .7rem; flex: 1; overflow-y: auto;
  font: .72rem/1.35 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
}
.log li { padding: .25rem 0; border-bottom: 1px solid var(--line); white-space: pre-wrap; overflow-wrap: anywhere; }
.log .kind { font-weight: 700; }
.tabs { display: flex; background: #fff; border-top: 1px solid var(--line); padding-bottom: .5rem; }
.tabs button { flex: 1; border: 0; background: none; padding: .7rem 0 .4rem; font-size: .8rem; color: var(--muted); }
.tabs button[aria-selected="true"] { color: var(--accent); font-weight: 700; }
.badge {
  display: inline-block; min-width: 1.2rem; padding: 0 .3rem; border-radius: .6rem;
  background: var(--bad); color: #fff; font-size: .68rem; line-height: 1.2rem;
}
.modal {
  position: absolute; inset: 0; z-index: 5; display: flex; align-items: center; justify-content: center;
  padding: 1rem; background: rgba(12, 16, 22, .45);
}
.sheet {
  width: 100%; max-height: 90%; overflow-y: auto; display: flex; flex-direction: column; gap: .6rem;
  padding: 1rem; border-radius: 16px; background: #fff; box-shadow: 0 12px 32px rgba(0, 0, 0, .3);
}
.sheet h2 {
  margin: 0; font-size: .74rem; letter-spacing: .08em; text-transform: uppercase; color: var(--muted);
}
.sheet .text { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; font-size: .95rem; line-height: 1.35; }
.sheet form { display: flex; gap: .4rem; }
.sheet form input { flex: 1; min-width: 0; }
.sheet .buttons { display: flex; justify-content: flex-end; gap: .5rem; }
.items { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: .3rem; }
.items button {
  width: 100%; text-align: left; border: 1px solid var(--line); border-radius: 10px; background: #f7f9fb;
  padding: .5rem .7rem;
}
.items button:hover { background: #e9f1fb; }
.timer { margin: 0; font-size: .72rem; color: var(--muted); text-align: right; }
.toast {
  position: absolute; top: 2.3rem; left: .7rem; right: .7rem; z-index: 6; padding: .6rem .8rem;
  border-radius: 12px; background: #1d2430; color: #fff; font-size: .82rem;
  box-shadow: 0 8px 20px rgba(0, 0, 0, .3); overflow-wrap: anywhere;
}
</style>
</head>
<body>
<header class="bar">
  <h1>TGW web handset</h1>
  <label for="picker">Subscriber</label>
  <select id="picker"></select>
  <form id="add-form">
    <input id="add-msisdn" placeholder="another MSISDN" aria-label="another MSISDN" autocomplete="off" inputmode="numeric" size="14">
    <button class="secondary" id="add-button">Use</button>
  </form>
  <span id="live" class="live off" role="status">offline</span>
</header>
<main>
<div class="phone">
  <div class="display">
    <div class="statusbar">
      <span id="sb-clock">--:--</span><span class="notch"></span><span id="sb-sim"></span>
    </div>
    <div class="statusbar"><span id="sb-msisdn">no subscriber</span></div>
    <div class="views">
      <section id="view-messages" class="view" aria-label="Messages">
        <ol id="inbox" class="thread" aria-live="polite"></ol>
        <form id="compose" class="compose">
          <input id="sms-to" placeholder="To (short code)" aria-label="to" autocomplete="off" inputmode="numeric">
          <div class="row">
            <textarea id="sms-text" rows="2" placeholder="Text message" aria-label="text"></textarea>
            <button class="primary" id="sms-send">Send</button>
          </div>
          <p id="sms-status" class="status"></p>
        </form>
      </section>
      <section id="view-phone" class="view" aria-label="Phone" hidden>
        <form id="dial-form">
          <input id="dial-number" class="number" aria-label="number" autocomplete="off" inputmode="tel" placeholder="*123#">
        </form>
        <div class="keypad" id="keypad">
          <button type="button" data-key="1">1<small>&nbsp;</small></button>
          <button type="button" data-key="2">2<small>ABC</small></button>
          <button type="button" data-key="3">3<small>DEF</small></button>
          <button type="button" data-key="4">4<small>GHI</small></button>
          <button type="button" data-key="5">5<small>JKL</small></button>
          <button type="button" data-key="6">6<small>MNO</small></button>
          <button type="button" data-key="7">7<small>PQRS</small></button>
          <button type="button" data-key="8">8<small>TUV</small></button>
          <button type="button" data-key="9">9<small>WXYZ</small></button>
          <button type="button" data-key="*">*<small>&nbsp;</small></button>
          <button type="button" data-key="0">0<small>+</small></button>
          <button type="button" data-key="#">#<small>&nbsp;</small></button>
        </div>
        <div class="dial-actions">
          <button type="button" id="dial-call" class="call" aria-label="call">Call</button>
          <button type="button" id="dial-erase" class="erase" aria-label="erase">&#x232B;</button>
        </div>
        <p id="dial-status" class="status"></p>
      </section>
      <section id="view-log" class="view" aria-label="Log" hidden>
        <ol id="log" class="log"></ol>
      </section>
    </div>
    <nav class="tabs" role="tablist">
      <button type="button" role="tab" id="tab-messages" data-view="messages" aria-selected="true">Messages <span id="badge" class="badge" hidden></span></button>
      <button type="button" role="tab" id="tab-phone" data-view="phone" aria-selected="false">Phone</button>
      <button type="button" role="tab" id="tab-log" data-view="log" aria-selected="false">Log</button>
    </nav>
    <div id="ussd" class="modal" hidden>
      <div class="sheet" role="dialog" aria-labelledby="ussd-title">
        <h2 id="ussd-title">USSD</h2>
        <p id="ussd-text" class="text"></p>
        <form id="ussd-form">
          <input id="ussd-input" aria-label="reply" autocomplete="off">
          <button class="primary" id="ussd-send">Send</button>
        </form>
        <p id="ussd-status" class="status"></p>
        <div class="buttons">
          <button type="button" class="secondary" id="ussd-cancel">Cancel</button>
          <button type="button" class="primary" id="ussd-ok">OK</button>
        </div>
      </div>
    </div>
    <div id="stk" class="modal" hidden>
      <div class="sheet" role="alertdialog" aria-labelledby="stk-title">
        <h2 id="stk-title">SIM Toolkit</h2>
        <p id="stk-text" class="text"></p>
        <ol id="stk-items" class="items"></ol>
        <input id="stk-input" aria-label="input" autocomplete="off">
        <p id="stk-status" class="status"></p>
        <div class="buttons">
          <button type="button" class="secondary" id="stk-cancel">Cancel</button>
          <button type="button" class="primary" id="stk-ok">OK</button>
        </div>
        <p id="stk-timer" class="timer"></p>
      </div>
    </div>
    <div id="toast" class="toast" role="status" hidden></div>
  </div>
</div>
</main>
<script nonce="__NONCE__">
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };
  const MSISDN = /^\\+?[0-9]{1,20}$/;
  const VIEWS = ["messages", "phone", "log"];
  const MAX_LOG = 300;
  const state = {
    msisdn: null, source: null, view: "messages", unread: 0,
    messages: new Map(), screens: new Map(), ussd: null, dialog: null,
    countdown: null, toastTimer: null,
  };

  async function api(method, path, body) {
    const options = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    let data = null;
    try { data = await response.json(); } catch (err) { data = null; }
    if (!response.ok) throw new Error(data && data.error ? data.error : "HTTP " + response.status);
    return data;
  }
  const handsetPath = (tail) => "/handsets/" + encodeURIComponent(state.msisdn) + (tail || "");
  const sessionPath = (handle, tail) => "/ussd/sessions/" + encodeURIComponent(handle) + tail;
  const clock = (iso) => {
    const at = iso ? new Date(iso) : new Date();
    return at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  };

  function setStatus(id, text, error) {
    const node = $(id);
    node.textContent = text || "";
    node.classList.toggle("error", Boolean(error));
  }
  function toast(text) {
    const node = $("toast");
    node.textContent = text;
    node.hidden = false;
    clearTimeout(state.toastTimer);
    state.toastTimer = setTimeout(() => { node.hidden = true; }, 4000);
  }
  function setLive(on, detail) {
    const live = $("live");
    live.classList.toggle("off", !on);
    live.textContent = on ? "live" : detail ? "offline: " + detail : "offline";
  }

  // --- views -----------------------------------------------------------------------------------
  function show(view) {
    state.view = view;
    for (const name of VIEWS) {
      $("view-" + name).hidden = name !== view;
      $("tab-" + name).setAttribute("aria-selected", String(name === view));
    }
    if (view === "messages") {
      state.unread = 0;
      renderBadge();
      scrollThread();
    } else if (view === "phone") {
      $("dial-number").focus();
    }
  }
  function renderBadge() {
    const badge = $("badge");
    badge.hidden = state.unread === 0;
    badge.textContent = String(state.unread);
  }

  // --- the subscriber ------------------------------------------------------------------------------
  async function loadHandsets() {
    let handsets = [];
    try {
      handsets = (await api("GET", "/handsets")).handsets;
    } catch (err) {
      setLive(false, err.message);
    }
    const picker = $("picker");
    const options = [el("option", "", "choose a subscriber")];
    options[0].value = "";
    for (const handset of handsets) {
      const option = el("option", "", handset.msisdn + (handset.sim ? " (SIM toolkit)" : ""));
      option.value = handset.msisdn;
      options.push(option);
    }
    picker.replaceChildren(...options);
    picker.value = state.msisdn || "";
  }
  function choose(msisdn) {
    if (state.source) state.source.close();
    state.source = null;
    state.msisdn = msisdn || null;
    state.messages.clear();
    state.screens.clear();
    state.unread = 0;
    closeUssd();
    closeStk();
    renderThread();
    renderBadge();
    $("log").replaceChildren();
    $("sb-msisdn").textContent = msisdn || "no subscriber";
    $("sb-sim").textContent = "";
    $("picker").value = msisdn || "";
    history.replaceState(null, "", msisdn ? "#" + encodeURIComponent(msisdn) : location.pathname);
    if (!msisdn) {
      setLive(false);
      return;
    }
    const source = new EventSource(handsetPath("/events"));
    state.source = source;
    const on = (name, handler) => source.addEventListener(name, (event) => {
      if (state.source === source) handler(JSON.parse(event.data));
    });
    source.addEventListener("open", () => { if (state.source === source) setLive(true); });
    source.addEventListener("error", () => { if (state.source === source) setLive(false); });
    on("state", onState);
    on("sms", onSms);
    on("ussd", onUssd);
    on("stk-shown", openStk);
    on("stk-closed", onStkClosed);
    on("log", onLog);
  }
  function onState(data) {
    setLive(true);
    $("sb-sim").textContent = data.sim ? "SIM toolkit" : "no SIM applet";
    state.messages.clear();
    for (const message of data.inbox) state.messages.set(message.id, { direction: "in", ...message });
    for (const message of data.sent) state.messages.set(message.id, { direction: "out", ...message });
    renderThread();
    if (data.dialog) openStk(data.dialog); else closeStk();
    if ($("picker").value !== data.msisdn) loadHandsets();
  }

  // --- SMS -------------------------------------------------------------------------------------------
  function onSms(message) {
    const fresh = !state.messages.has(message.id);
    state.messages.set(message.id, message);
    renderThread();
    if (fresh && message.direction === "in" && state.view !== "messages") {
      state.unread += 1;
      renderBadge();
      toast("SMS from " + message.from + ": " + message.text);
    }
  }
  function scrollThread() {
    const thread = $("inbox");
    thread.scrollTop = thread.scrollHeight;
  }
  function renderThread() {
    const thread = $("inbox");
    const messages = [...state.messages.values()].sort((a, b) => a.id - b.id);
    if (!messages.length) {
      thread.replaceChildren(el("li", "empty", state.msisdn ? "No messages yet" : "Choose a subscriber"));
      return;
    }
    thread.replaceChildren(...messages.map((message) => {
      const incoming = message.direction === "in";
      const item = el("li", "bubble " + (incoming ? "in" : "out"));
      item.dataset.id = String(message.id);
      let meta = (incoming ? "From " + message.from : "To " + message.to) + " \\u00b7 " + clock(message.at);
      if (!incoming && message.status) {
        item.classList.add("failed");
        meta += " \\u00b7 refused: " + (message.status_name || message.status);
      }
      item.append(el("span", "meta", meta), el("span", "body", message.text));
      return item;
    }));
    scrollThread();
  }
  async function sendSms(event) {
    event.preventDefault();
    if (!state.msisdn) return setStatus("sms-status", "Choose a subscriber first", true);
    const to = $("sms-to").value.trim();
    const text = $("sms-text").value;
    if (!to || !text) return setStatus("sms-status", "Give a short code and a text", true);
    $("sms-send").disabled = true;
    setStatus("sms-status", "Sending\\u2026");
    try {
      await api("POST", handsetPath("/sms"), { to, text });
      $("sms-text").value = "";
      setStatus("sms-status", "Sent to " + to);
    } catch (err) {
      setStatus("sms-status", err.message, true);
    } finally {
      $("sms-send").disabled = false;
    }
  }

  // --- USSD ------------------------------------------------------------------------------------------
  function openUssd(title, text) {
    $("ussd-title").textContent = title;
    $("ussd-text").textContent = text;
    $("ussd-form").hidden = true;
    $("ussd-ok").hidden = true;
    $("ussd-cancel").hidden = false;
    setStatus("ussd-status", "");
    $("ussd").hidden = false;
  }
  function closeUssd() {
    state.ussd = null;
    $("ussd").hidden = true;
  }
  function ussdFailed(ussd, reason) {
    if (state.ussd !== ussd) return;
    ussd.final = true;
    $("ussd-form").hidden = true;
    $("ussd-cancel").hidden = true;
    $("ussd-ok").hidden = false;
    setStatus("ussd-status", reason, true);
  }
  async function dial(event) {
    if (event) event.preventDefault();
    const code = $("dial-number").value.trim();
    if (!state.msisdn) return setStatus("dial-status", "Choose a subscriber first", true);
    if (!code) return setStatus("dial-status", "Type a USSD code, e.g. *123#", true);
    if (state.ussd) return;
    setStatus("dial-status", "");
    const ussd = { handle: null, code, final: false, cancelled: false, seen: 0 };
    state.ussd = ussd;
    openUssd("USSD " + code, "Calling " + code + "\\u2026");
    try {
      const opened = await api("POST", "/ussd/dial", { msisdn: state.msisdn, code });
      ussd.handle = opened.session;
      if (ussd.cancelled) {
        await api("POST", sessionPath(ussd.handle, "/release"), {});
        return;
      }
      const early = state.screens.get(ussd.handle) || [];
      for (const screen of early) renderScreen(ussd, screen);
    } catch (err) {
      ussdFailed(ussd, err.message);
    }
  }
  function onUssd(data) {
    const screens = state.screens.get(data.session) || [];
    screens.push(data.screen);
    state.screens.set(data.session, screens);
    let ussd = state.ussd;
    if (!ussd && data.network_initiated) {
      ussd = { handle: data.session, code: data.code, final: false, cancelled: false, seen: 0 };
      state.ussd = ussd;
      openUssd("USSD from the network", "");
      if (state.view !== "phone") toast("USSD message from the network");
    }
    if (ussd && ussd.handle === data.session) renderScreen(ussd, data.screen);
  }
  function renderScreen(ussd, screen) {
    if (state.ussd !== ussd) return;
    ussd.seen += 1;
    ussd.final = screen.final;
    const asks = screen.kind === "continue" && !screen.final;
    $("ussd-text").textContent = screen.text;
    $("ussd-form").hidden = !asks;
    $("ussd-cancel").hidden = screen.final;
    $("ussd-ok").hidden = !screen.final;
    $("ussd-send").disabled = false;
    $("ussd-input").disabled = false;
    if (screen.kind === "released") setStatus("ussd-status", "The service ended the session", true);
    else if (screen.kind === "timeout") setStatus("ussd-status", "The network timed the session out", true);
    else setStatus("ussd-status", "");
    if (asks) {
      $("ussd-input").value = "";
      $("ussd-input").focus();
    }
  }
  async function replyUssd(event) {
    event.preventDefault();
    const ussd = state.ussd;
    const text = $("ussd-input").value;
    if (!ussd || !ussd.handle || !text) return;
    const seen = ussd.seen;
    $("ussd-send").disabled = true;
    $("ussd-input").disabled = true;
    setStatus("ussd-status", "Sending\\u2026");
    try {
      await api("POST", sessionPath(ussd.handle, "/reply"), { text });
      if (state.ussd === ussd && ussd.seen === seen) setStatus("ussd-status", "Waiting for the network\\u2026");
    } catch (err) {
      setStatus("ussd-status", err.message, true);
      $("ussd-send").disabled = false;
      $("ussd-input").disabled = false;
    }
  }
  async function cancelUssd() {
    const ussd = state.ussd;
    closeUssd();
    if (!ussd || ussd.final) return;
    ussd.cancelled = true;
    if (!ussd.handle) return;
    try {
      await api("POST", sessionPath(ussd.handle, "/release"), {});
    } catch (err) {
      setStatus("dial-status", err.message, true);
    }
  }

  // --- SIM toolkit -----------------------------------------------------------------------------------
  function takesInput(dialog) {
    return dialog.kind === "input" || dialog.kind === "key";
  }
  function openStk(dialog) {
    state.dialog = dialog;
    $("stk-title").textContent = "SIM Toolkit \\u00b7 " + dialog.command;
    $("stk-text").textContent = dialog.text;
    const items = dialog.items.map((item) => {
      const entry = el("li");
      const button = el("button", "", item.id + ". " + item.text);
      button.type = "button";
      button.dataset.item = String(item.id);
      button.addEventListener("click", () => answerStk({ action: "item", item: item.id }));
      entry.append(button);
      return entry;
    });
    $("stk-items").replaceChildren(...items);
    $("stk-items").hidden = dialog.kind !== "select";
    const input = $("stk-input");
    input.hidden = !takesInput(dialog);
    input.value = "";
    if (takesInput(dialog)) {
      const bounds = dialog.input;
      input.maxLength = bounds.max;
      input.type = bounds.hidden ? "password" : "text";
      input.inputMode = bounds.digits_only ? "tel" : "text";
      input.placeholder = (bounds.min === bounds.max ? bounds.max : bounds.min + "\\u2013" + bounds.max)
        + (bounds.digits_only ? " digits" : " characters");
      input.value = bounds.default || "";
    }
    $("stk-ok").hidden = dialog.kind === "select";
    $("stk-ok").textContent = dialog.kind === "yes_no" ? "Yes" : "OK";
    $("stk-cancel").textContent = dialog.kind === "yes_no" ? "No" : dialog.kind === "select" ? "Back" : "Cancel";
    setStkBusy(false);
    setStatus("stk-status", "");
    $("stk").hidden = false;
    if (takesInput(dialog)) input.focus();
    const closes = Date.now() + dialog.expires_in * 1000;
    const tick = () => {
      const left = Math.max(0, Math.round((closes - Date.now()) / 1000));
      $("stk-timer").textContent = "The phone answers for you in " + left + " s";
    };
    clearInterval(state.countdown);
    tick();
    state.countdown = setInterval(tick, 1000);
  }
  function closeStk() {
    state.dialog = null;
    clearInterval(state.countdown);
    $("stk").hidden = true;
  }
  function onStkClosed(data) {
    if (!state.dialog || state.dialog.id !== data.id) return;
    closeStk();
    if (data.by !== "user answered") toast("SIM toolkit: " + data.detail);
  }
  function setStkBusy(busy) {
    for (const button of document.querySelectorAll("#stk button")) button.disabled = busy;
  }
  async function answerStk(answer) {
    const dialog = state.dialog;
    if (!dialog) return;
    setStkBusy(true);
    try {
      await api("POST", handsetPath("/stk/answer"), { dialog: dialog.id, ...answer });
      if (state.dialog === dialog) closeStk();
    } catch (err) {
      setStatus("stk-status", err.message, true);
      setStkBusy(false);
    }
  }
  function okStk() {
    const dialog = state.dialog;
    if (!dialog) return;
    if (takesInput(dialog)) answerStk({ action: "input", text: $("stk-input").value });
    else answerStk({ action: "ok" });
  }

  // --- the log ---------------------------------------------------------------------------------------
  function onLog(entry) {
    const log = $("log");
    const item = el("li");
    const at = new Date(entry.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    item.append(el("span", "", at + " "), el("span", "kind", entry.kind), el("span", "", ": " + entry.detail));
    log.prepend(item);
    while (log.children.length > MAX_LOG) log.lastElementChild.remove();
  }

  // --- wiring ----------------------------------------------------------------------------------------
  $("picker").addEventListener("change", () => choose($("picker").value));
  $("add-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = $("add-msisdn").value.trim();
    if (!MSISDN.test(value)) return toast("An MSISDN is 1 to 20 digits");
    try {
      const handset = await api("GET", "/handsets/" + encodeURIComponent(value));
      $("add-msisdn").value = "";
      state.msisdn = handset.msisdn;
      await loadHandsets();
      choose(handset.msisdn);
    } catch (err) {
      toast(err.message);
    }
  });
  for (const name of VIEWS) $("tab-" + name).addEventListener("click", () => show(name));
  $("compose").addEventListener("submit", sendSms);
  $("keypad").addEventListener("click", (event) => {
    const key = event.target.closest("button[data-key]");
    if (key) $("dial-number").value += key.dataset.key;
  });
  $("dial-erase").addEventListener("click", () => {
    const number = $("dial-number");
    number.value = number.value.slice(0, -1);
  });
  $("dial-form").addEventListener("submit", dial);
  $("dial-call").addEventListener("click", () => dial());
  $("ussd-form").addEventListener("submit", replyUssd);
  $("ussd-cancel").addEventListener("click", cancelUssd);
  $("ussd-ok").addEventListener("click", closeUssd);
  $("stk-ok").addEventListener("click", okStk);
  $("stk-cancel").addEventListener("click", () => answerStk({ action: "cancel" }));
  $("stk-input").addEventListener("keydown", (event) => { if (event.key === "Enter") okStk(); });
  const tickClock = () => { $("sb-clock").textContent = clock(); };
  tickClock();
  setInterval(tickClock, 15000);

  let wanted = "";
  try { wanted = decodeURIComponent(location.hash.slice(1)); } catch (err) { wanted = ""; }
  loadHandsets().then(() => choose(MSISDN.test(wanted) ? wanted : ""));
})();
</script>
</body>
</html>
"""

_CSP = (
    "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def page_html(nonce: str) -> str:
    """The page with ``nonce`` on its script and style."""
    return PAGE.replace(_NONCE, nonce)


def page_response() -> web.Response:
    """``GET /``: the page, with a fresh nonce and the Content-Security-Policy that names it."""
    nonce = secrets.token_urlsafe(18)
    return web.Response(
        text=page_html(nonce),
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": _CSP.format(nonce=nonce),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
