// The preview page: live updates, tabs, the light/dark switch, frames sized to their email.
// The email itself is never changed on the server: the dark switch rewrites, in the browser,
// which of the email's own `prefers-color-scheme` rules apply inside the frames.
(() => {
  "use strict";
  const ALWAYS = "(min-width: 0px)";
  const NEVER = "(max-width: -1px)";
  const SCHEME_QUERY = /\(\s*prefers-color-scheme\s*:\s*(dark|light)\s*\)/gi;
  const SCHEME_KEY = "newsletter-preview:scheme";
  const originalMedia = new WeakMap();
  let scheme = read(SCHEME_KEY, "light");
  let version = document.body.dataset.version;
  let busy = false;
  let again = false;
  let events = null;

  function read(key, fallback) {
    try { return localStorage.getItem(key) || fallback; } catch (e) { return fallback; }
  }
  function write(key, value) {
    try { localStorage.setItem(key, value); } catch (e) { /* private mode: the choice lasts this page */ }
  }

  // -- colour scheme -------------------------------------------------------------------------
  function emulated(original) {
    const dark = scheme === "dark";
    return original.replace(SCHEME_QUERY, (_, which) => ((which.toLowerCase() === "dark") === dark ? ALWAYS : NEVER));
  }
  function rewriteList(owner, list) {
    if (!list || list.mediaText === undefined) return;
    if (!originalMedia.has(owner)) originalMedia.set(owner, list.mediaText);
    const original = originalMedia.get(owner);
    if (!/prefers-color-scheme/i.test(original)) return;
    const wanted = emulated(original);
    if (list.mediaText !== wanted) list.mediaText = wanted;
  }
  function rewriteRules(rules) {
    for (const rule of rules) {
      if (rule.media) rewriteList(rule, rule.media);
      if (rule.styleSheet) rewriteSheet(rule.styleSheet);
      if (rule.cssRules) rewriteRules(rule.cssRules);
    }
  }
  function rewriteSheet(sheet) {
    try {
      rewriteList(sheet, sheet.media);
      rewriteRules(sheet.cssRules);
    } catch (e) { /* a cross-origin sheet: its rules cannot be read, nor emulated */ }
  }
  function applyScheme(frame) {
    const doc = frame.contentDocument;
    if (!doc || !doc.documentElement) return;
    for (const sheet of doc.styleSheets) rewriteSheet(sheet);
    for (const source of doc.querySelectorAll("source[media]")) {
      if (!originalMedia.has(source)) originalMedia.set(source, source.getAttribute("media"));
      const original = originalMedia.get(source);
      if (/prefers-color-scheme/i.test(original)) source.setAttribute("media", emulated(original));
    }
    // What the browser's own defaults do for an email that says it supports both schemes.
    const meta = doc.querySelector('meta[name="color-scheme"]');
    if (meta && /\bdark\b/.test(meta.content)) doc.documentElement.style.colorScheme = scheme;
  }
  function setScheme(value) {
    scheme = value === "dark" ? "dark" : "light";
    write(SCHEME_KEY, scheme);
    for (const button of document.querySelectorAll("[data-scheme]")) {
      button.setAttribute("aria-pressed", String(button.dataset.scheme === scheme));
    }
    for (const frame of document.querySelectorAll("iframe.frame")) applyScheme(frame);
  }

  // -- frames --------------------------------------------------------------------------------
  function fit(frame) {
    const doc = frame.contentDocument;
    if (!doc || !doc.documentElement) return;
    const root = doc.documentElement.getBoundingClientRect().height;
    const body = doc.body ? doc.body.getBoundingClientRect().bottom : 0;
    const height = Math.ceil(Math.max(root, body, 100));
    if (frame.style.height !== height + "px") frame.style.height = height + "px";
  }
  function openLinksOutside(event) {
    const link = event.target.closest && event.target.closest("a[href]");
    if (!link) return;
    event.preventDefault();
    window.open(link.href, "_blank", "noopener,noreferrer");
  }
  function setUpFrame(frame) {
    const doc = frame.contentDocument;
    if (!doc || doc.URL === "about:blank") return;
    applyScheme(frame);
    fit(frame);
    doc.addEventListener("click", openLinksOutside);
    if (window.ResizeObserver) {
      const observer = new ResizeObserver(() => fit(frame));
      observer.observe(doc.documentElement);
      if (doc.body) observer.observe(doc.body);
    }
    frame.dataset.ready = frame.getAttribute("src") || "";
  }
  document.addEventListener("load", (event) => {
    if (event.target instanceof HTMLIFrameElement) setUpFrame(event.target);
  }, true);

  // -- tabs ----------------------------------------------------------------------------------
  function showTab(name) {
    const tabs = document.querySelectorAll("[data-tab]");
    if (!tabs.length) return;
    if (![...tabs].some((tab) => tab.dataset.tab === name)) name = "email";
    for (const tab of tabs) tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
    for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== name;
  }
  function currentTab() {
    return location.hash === "#text" ? "text" : "email";
  }
  document.addEventListener("click", (event) => {
    const tab = event.target.closest("[data-tab]");
    if (tab) {
      history.replaceState(null, "", tab.dataset.tab === "text" ? "#text" : location.pathname);
      showTab(tab.dataset.tab);
    }
    const button = event.target.closest("[data-scheme]");
    if (button) setScheme(button.dataset.scheme);
  });

  // -- live updates --------------------------------------------------------------------------
  // Swap in the parts of the page that changed; frames are navigated in place (no flash, and
  // the page keeps its scroll position); nothing is reloaded when nothing changed.
  function reloadFrames(oldPart, newPart) {
    for (const fresh of newPart.querySelectorAll("iframe[id]")) {
      const frame = document.getElementById(fresh.id);
      if (!frame) continue;
      const src = fresh.getAttribute("src");
      try { frame.contentWindow.location.replace(new URL(src, location.href).href); }
      catch (e) { frame.setAttribute("src", src); }
    }
    oldPart.dataset.key = newPart.dataset.key;
  }
  function morph(fresh) {
    document.title = fresh.title;
    const main = document.getElementById("main");
    const next = fresh.getElementById("main");
    if (!main || !next) { location.reload(); return; }
    if (main.dataset.layout !== next.dataset.layout) {
      main.replaceWith(document.adoptNode(next));
    } else {
      for (const part of [...next.querySelectorAll("[data-part]")]) {
        const old = document.getElementById(part.id);
        if (!old) continue;
        if (part.dataset.key && old.dataset.key === part.dataset.key) continue;
        if (part.dataset.part === "frames") reloadFrames(old, part);
        else old.replaceWith(document.adoptNode(part));
      }
    }
    showTab(currentTab());
    setScheme(scheme);
    document.dispatchEvent(new CustomEvent("preview:updated", { detail: { version } }));
  }
  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const answer = await fetch(location.pathname + location.search, { cache: "no-store" });
      const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
      version = fresh.body.dataset.version || version;
      morph(fresh);
    } catch (e) {
      setLive("offline", "offline: cannot reach the preview server");
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }
  function setLive(state, text) {
    const live = document.getElementById("live");
    if (!live) return;
    live.className = "live is-" + state;
    live.textContent = text;
  }
  // One open stream per visible tab: browsers allow few connections per host.
  function connect() {
    if (events || document.hidden || !window.EventSource) return;
    events = new EventSource("/_preview/events");
    events.onopen = () => setLive("live", "live");
    events.onerror = () => setLive("offline", "offline: is newsletter preview still running?");
    events.addEventListener("version", (event) => {
      setLive("live", "live");
      if (event.data !== version) refresh();
    });
  }
  function disconnect() {
    if (events) { events.close(); events = null; }
  }
  document.addEventListener("visibilitychange", () => (document.hidden ? disconnect() : connect()));
  window.addEventListener("pagehide", disconnect);
  window.addEventListener("pageshow", connect);

  showTab(currentTab());
  setScheme(scheme);
  for (const frame of document.querySelectorAll("iframe.frame")) {
    if (frame.contentDocument && frame.contentDocument.readyState === "complete") setUpFrame(frame);
  }
  connect();
})();
