// Smol in the browser: listen, create and watch a smol being made, find, and sign in with a passkey.
// Plain modules, no build step, no dependency: every page is built from the API's JSON with DOM calls
// (never innerHTML), so nothing a user wrote is ever parsed as markup.

const main = document.getElementById("main");
const notice = document.getElementById("notice");
let leaving = () => {}; // what the current page must stop (an event stream, a scroll observer) before the next
let generation = 0; // the page being shown; an answer for an older one is dropped

// ---- DOM and HTTP helpers ----

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

class Stale extends Error {}  // an answer for a page the user has left

function say(message) {
  notice.textContent = message;
}

class HttpError extends Error {
  constructor(status, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
  }
}

async function call(method, path, body) {
  const options = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    if (response.status === 401 && path !== "/logout") {
      // the cookie no longer works (expired, or the server's secret changed): drop it, or every page would fail
      fetch("/logout", { method: "POST", credentials: "same-origin" });
      signedOut();
    }
    const detail = typeof data === "string" ? data : data.detail;
    throw new HttpError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return data;
}

async function get(path) {
  const page = generation;
  const data = await call("GET", path);
  if (page !== generation) throw new Stale();
  return data;
}
const q = encodeURIComponent;

// ---- the session: the token is an HttpOnly-able cookie; the page keeps who it is for from the token's claims ----

const session = {
  get address() {
    const expires = Number(localStorage.getItem("smol.expires") || 0);
    return expires * 1000 > Date.now() ? localStorage.getItem("smol.address") : null;
  },
  get username() { return localStorage.getItem("smol.username") || ""; },
};

function signedIn(token) {
  const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  localStorage.setItem("smol.address", claims.sub);
  localStorage.setItem("smol.username", claims.usr || "");
  localStorage.setItem("smol.expires", String(claims.exp || 0));
  account();
}

function signedOut() {
  for (const key of ["smol.address", "smol.username", "smol.expires"]) localStorage.removeItem(key);
  account();
}

function account() {
  const inside = Boolean(session.address);
  for (const node of document.querySelectorAll("[data-auth]")) {
    node.hidden = (node.dataset.auth === "in") !== inside;
  }
  document.getElementById("who").textContent = inside ? session.username || short(session.address) : "";
}

function short(address) {
  return address ? `${address.slice(0, 4)}…${address.slice(-4)}` : "";
}

// ---- passkeys (WebAuthn): the browser signs a challenge of ours; the server derives the wallet address ----

const b64url = (buffer) =>
  btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function credentialJSON(credential) {
  const r = credential.response;
  const response = { clientDataJSON: b64url(r.clientDataJSON) };
  if (r.attestationObject) response.attestationObject = b64url(r.attestationObject);
  if (r.authenticatorData) response.authenticatorData = b64url(r.authenticatorData);
  if (r.signature) response.signature = b64url(r.signature);
  if (r.userHandle) response.userHandle = b64url(r.userHandle);
  return { id: credential.id, rawId: b64url(credential.rawId), type: credential.type, response,
           clientExtensionResults: {} };
}

async function passkey(kind, username) {
  const challenge = crypto.getRandomValues(new Uint8Array(32));
  const publicKey = kind === "create"
    ? { challenge, rp: { name: "smol", id: location.hostname },
        user: { id: crypto.getRandomValues(new Uint8Array(16)), name: username || "smol", displayName: username || "smol" },
        pubKeyCredParams: [{ type: "public-key", alg: -7 }], attestation: "none", timeout: 60000,
        authenticatorSelection: { residentKey: "required", userVerification: "preferred" } }
    : { challenge, rpId: location.hostname, userVerification: "preferred", timeout: 60000 };
  const credential = kind === "create"
    ? await navigator.credentials.create({ publicKey }) : await navigator.credentials.get({ publicKey });
  const body = { type: kind, keyId: credential.id, response: credentialJSON(credential) };
  if (kind === "create" && username) body.username = username;
  signedIn(await call("POST", "/login", body));
}

function setupAccount() {
  const dialog = document.getElementById("signin-dialog");
  document.getElementById("signin").addEventListener("click", () => {
    dialog.returnValue = "";  // Esc keeps the previous value in some browsers: it must not sign in again
    dialog.showModal();
  });
  dialog.addEventListener("close", async () => {
    const kind = dialog.returnValue;
    if (kind !== "create" && kind !== "connect") return;
    try {
      await passkey(kind, dialog.querySelector("[name=username]").value.trim());
      say(`Signed in as ${session.username || short(session.address)}`);
      route();
    } catch (error) {
      say(`Sign-in failed: ${error.message}`);
    }
  });
  document.getElementById("signout").addEventListener("click", async () => {
    await call("POST", "/logout");
    signedOut();
    say("Signed out");
    route();
  });
  document.getElementById("search").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = document.getElementById("q").value.trim();
    if (text) location.hash = `#/search?q=${q(text)}`;
  });
}

// ---- players: an audio element with a live waveform ----

let audioContext = null;

function player(src, label) {
  const audio = el("audio", { controls: true, preload: "none", src, "aria-label": label });
  const canvas = el("canvas", { width: 320, height: 48, class: "wave", "aria-hidden": "true" });
  const ours = new URL(src, location.href).origin === location.origin;  // another origin's audio would go silent
  let analyser = null;
  audio.addEventListener("play", () => {
    if (!ours) return;
    if (!analyser) {
      const context = audioContext || (audioContext = new AudioContext());
      if (context.state === "suspended") context.resume();
      analyser = context.createAnalyser();
      analyser.fftSize = 1024;
      context.createMediaElementSource(audio).connect(analyser);
      analyser.connect(context.destination);
    }
    const samples = new Uint8Array(analyser.fftSize);
    const pen = canvas.getContext("2d");
    const draw = () => {
      analyser.getByteTimeDomainData(samples);
      pen.clearRect(0, 0, canvas.width, canvas.height);
      pen.beginPath();
      samples.forEach((v, i) => {
        const x = (i / samples.length) * canvas.width, y = (v / 255) * canvas.height;
        i ? pen.lineTo(x, y) : pen.moveTo(x, y);
      });
      pen.strokeStyle = "#7c5cff";
      pen.stroke();
      if (!audio.paused) requestAnimationFrame(draw);
    };
    draw();
  });
  return el("figure", { class: "player" }, el("figcaption", { text: label }), audio, canvas);
}

// ---- lists ----

function card(smol) {
  const id = smol.Id;
  return el("li", { class: "card" },
    el("a", { href: `#/smol/${id}` },
      el("img", { src: `/image/${id}.png?scale=4`, alt: "", loading: "lazy", width: 128, height: 128,
                  onerror: (event) => event.target.classList.add("missing") }),
      el("span", { class: "title", text: smol.Title || "Untitled" })),
    smol.Address ? el("a", { class: "by", href: `#/u/${smol.Address}`, text: smol.Username || short(smol.Address) }) : null);
}

function pagedList(heading, path) {
  // One page after another over the cursor, as the sentinel at the end scrolls into view.
  const list = el("ul", { class: "grid" });
  const sentinel = el("p", { class: "more", text: "Loading…" });
  let cursor = null, busy = false, done = false;
  const more = async () => {
    if (busy || done) return;
    busy = true;
    try {
      const page = await get(`${path}${path.includes("?") ? "&" : "?"}limit=24${cursor ? `&cursor=${q(cursor)}` : ""}`);
      list.append(...page.smols.map(card));
      cursor = page.pagination.nextCursor;
      done = !page.pagination.hasMore;
      sentinel.textContent = done ? (list.children.length ? "That's all." : "Nothing here yet.") : "";
      if (!done) { observer.unobserve(sentinel); observer.observe(sentinel); }  // still in view: load on
    } catch (error) {
      sentinel.textContent = `Could not load: ${error.message}`;
      done = true;
    } finally {
      busy = false;
    }
  };
  const observer = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && more());
  leaving = () => observer.disconnect();
  show(el("h1", { text: heading }), list, sentinel);
  observer.observe(sentinel);
}

async function trending() {
  show(el("h1", { text: "Trending this week" }), el("p", { text: "Loading…" }));
  const { smols } = await get("/trending?period=week&limit=50");
  show(el("h1", { text: "Trending this week" }),
       smols.length ? el("ul", { class: "grid" }, smols.map(card)) : el("p", { text: "Nothing yet." }));
}

async function searchPage(text) {
  document.getElementById("q").value = text;
  show(el("h1", { text: `Search: ${text}` }), el("p", { text: "Searching…" }));
  const { results } = await get(`/search?q=${q(text)}&limit=50`);
  show(el("h1", { text: `Search: ${text}` }),
       results.length ? el("ul", { class: "grid", id: "results" }, results.map(card)) : el("p", { text: "No smol matches." }));
}

// ---- one smol: finished, or being made (live from its event stream) ----

async function smolPage(id) {
  let body;
  try {
    body = await get(`/${id}`);
  } catch (error) {
    show(el("h1", { text: error.status === 404 ? "Not found" : "Unavailable" }),
         el("p", { text: error.status === 404 ? "No smol here, or it is not yours to see." : error.message }));
    return;
  }
  if (body.d1) finished(id, body);
  else watch(id, body);
}

function header(id, kv, d1) {
  const lyrics = kv.lyrics || {};
  const tags = el("ul", { class: "tags", "aria-label": "Style" },
    (lyrics.style || []).map((tag) => el("li", {}, el("a", { href: `#/tags/${q(tag)}`, text: tag }))));
  const cover = kv.image
    ? el("img", { class: "cover", src: `/image/${id}.png?scale=8`, alt: `Cover of ${lyrics.title || "this smol"}`, width: 512, height: 512 })
    : el("div", { class: "cover pending", text: "Drawing the cover…" });
  return el("section", { class: "head" }, cover,
    el("div", {}, el("h1", { text: (d1 && d1.Title) || lyrics.title || "Making a smol…" }), tags,
      d1 ? el("p", {}, "by ", el("a", { href: `#/u/${d1.Address}`, text: short(d1.Address) }),
              ` · ${d1.Plays} plays · ${d1.Views} views · ${d1.Public ? "public" : "private"}`) : null,
      kv.payload ? el("p", { class: "prompt", text: kv.payload.prompt }) : null,
      kv.payload && kv.payload.playlist
        ? el("p", {}, "In the playlist ", el("a", { href: `#/playlist/${q(kv.payload.playlist)}`, text: kv.payload.playlist }))
        : null));
}

function act(fn) {
  // A button's work; a refusal (gone, not allowed, unavailable) is said, not lost.
  return async () => {
    try { await fn(); } catch (error) { say(error.message); }
  };
}

function finished(id, body) {
  const { kv_do: kv, d1 } = body;
  const mine = session.address && session.address === d1.Address;
  const like = el("button", { type: "button", "aria-pressed": String(body.liked), class: "like",
                              text: body.liked ? "♥ Liked" : "♡ Like", hidden: !session.address });
  like.addEventListener("click", act(async () => {
    await call("PUT", `/likes/${id}`);
    const liked = like.getAttribute("aria-pressed") !== "true";
    like.setAttribute("aria-pressed", String(liked));
    like.textContent = liked ? "♥ Liked" : "♡ Like";
  }));
  const songs = [[d1.Song_1, "Song 1"], [d1.Song_2, "Song 2"]].map(([song, label]) => {
    const pick = mine && song === d1.Song_2
      ? el("button", { type: "button", text: "Make this the first song",
                       onclick: act(async () => { await call("PUT", `/${id}/${song}`); route(); }) }) : null;
    return el("div", {}, player(`/song/${song}.mp3`, label), pick);
  });
  const owner = mine ? el("div", { class: "row" },
    el("button", { type: "button", text: d1.Public ? "Make private" : "Make public",
                   onclick: act(async () => { await call("PUT", `/${id}`); route(); }) }),
    el("button", { type: "button", class: "danger", text: "Delete",
                   onclick: act(async () => {
                     if (confirm("Delete this smol?")) { await call("DELETE", `/${id}`); location.hash = "#/mine"; }
                   }) })) : null;
  const similar = el("section", { "aria-labelledby": "similar-title" }, el("h2", { id: "similar-title", text: "More like this" }));
  show(header(id, kv, d1), el("div", { class: "row" }, like), el("div", { class: "songs" }, songs), owner,
       kv.lyrics ? el("pre", { class: "lyrics", text: kv.lyrics.lyrics }) : null, similar);
  moreLikeThis(id, similar);
}

async function moreLikeThis(id, section, tries = 10) {
  try {
    const { results } = await get(`/search/${id}/similar?limit=8`);
    section.append(results.length ? el("ul", { class: "grid" }, results.map(card)) : el("p", { text: "Nothing like it yet." }));
  } catch (error) {
    if (error instanceof Stale) return;
    if (error.status === 409 && tries > 0) {
      const waiting = section.querySelector(".indexing") || section.appendChild(el("p", { class: "indexing", text: "Indexing in progress…" }));
      setTimeout(() => section.isConnected && (waiting.remove(), moreLikeThis(id, section, tries - 1)), 3000);
    } else section.append(el("p", { text: error.status === 409 ? "Still indexing; try again later." : error.message }));
  }
}

const ENDED = ["errored", "terminated"];

function watch(id, first) {
  const steps = el("ol", { class: "steps", "aria-label": "Steps" });
  const progress = el("progress", { max: 100, value: 0, "aria-label": "Progress" });
  const eta = el("span", { class: "eta" });
  const status = el("p", { class: "status", role: "status" });
  const songs = el("div", { class: "songs" });
  const controls = el("div", { class: "row" });
  const top = el("div");
  show(top, status, el("p", {}, progress, " ", eta), steps, songs, controls);
  const playing = new Map();
  const update = (body) => {
    const kv = body.kv_do, wf = body.wf || {};
    top.replaceChildren(header(id, kv, null));
    status.textContent = `Status: ${wf.status || "…"}${wf.error ? ` (${wf.error.message})` : ""}`;
    if (body.progress) {
      progress.value = body.progress.percent;
      const left = body.progress.eta_seconds;
      eta.textContent = `${body.progress.percent}%` + (wf.status === "paused" ? " · paused"
        : typeof left === "number" ? ` · about ${Math.round(left)} s left` : "");
    }
    steps.replaceChildren(...(wf.steps || []).map((step) => {
      const took = step.started_at && step.ended_at ? ` · ${((Date.parse(step.ended_at) - Date.parse(step.started_at)) / 1000).toFixed(1)} s` : "";
      return el("li", { class: `step ${step.state}`, "data-step": step.name, text: `${step.name}: ${step.state}${took}` });
    }));
    for (const [n, song] of (kv.songs || []).entries()) {
      if (song.audio && !playing.has(song.music_id)) {  // playable while it streams, and once archived
        playing.set(song.music_id, true);
        songs.append(player(song.audio, `Song ${n + 1}`));
      }
    }
    const mine = session.address && kv.payload && kv.payload.address === session.address;
    const action = (label, method, path, after) => el("button", { type: "button", text: label, onclick: async () => {
      try { await call(method, path); say(`${label}: done`); after && after(); } catch (error) { say(error.message); }
    } });
    const buttons = !mine ? [] : wf.status === "errored" ? [action("Retry", "POST", `/retry/${id}`, route),
                                                             action("Delete", "DELETE", `/${id}`, () => { location.hash = "#/mine"; })]
      : wf.status === "paused" ? [action("Resume", "POST", `/${id}/resume`), action("Cancel", "POST", `/${id}/cancel`)]
      : ["queued", "running", "waiting"].includes(wf.status) ? [action("Pause", "POST", `/${id}/pause`), action("Cancel", "POST", `/${id}/cancel`)]
      : [];
    controls.replaceChildren(...buttons);
  };
  update(first);
  if (ENDED.includes((first.wf || {}).status)) return;  // failed or stopped: nothing more will happen
  const events = new EventSource(`/${id}/events`);
  events.addEventListener("state", (event) => update(JSON.parse(event.data)));
  events.addEventListener("end", (event) => {
    events.close();
    if (JSON.parse(event.data).status === "complete") smolPage(id);  // the finished page; a failure stays shown
  });
  events.addEventListener("error", (event) => {
    if (!event.data) return;  // the connection dropped: the browser reconnects by itself
    say(JSON.parse(event.data).message);  // the server's own error (deleted, unavailable): stop here
    events.close();
  });
  leaving = () => events.close();
}

// ---- create ----

function createPage() {
  if (!session.address) {
    show(el("h1", { text: "Create" }), el("p", { text: "Sign in with a passkey to make a smol." }));
    return;
  }
  const form = el("form", { class: "create" },
    el("label", {}, "What should it be about?",
       el("textarea", { name: "prompt", required: true, maxlength: 2280, rows: 4 })),
    el("label", { class: "check" }, el("input", { type: "checkbox", name: "instrumental" }), " Instrumental"),
    el("label", { class: "check" }, el("input", { type: "checkbox", name: "public", checked: true }), " Public"),
    el("label", {}, "Playlist (optional)", el("input", { name: "playlist", maxlength: 64 })),
    el("button", { type: "submit", text: "Make it" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { prompt: data.get("prompt"), instrumental: data.has("instrumental"), public: data.has("public") };
    if (data.get("playlist")) body.playlist = data.get("playlist");
    try {
      const id = await call("POST", "/", body);
      location.hash = `#/smol/${id}`;
    } catch (error) {
      say(`Could not start it: ${error.message}`);
    }
  });
  show(el("h1", { text: "Create a smol" }), form);
}

// ---- playlists and mixtapes: play all, in order ----

function playAll(smols) {
  // One player walking the list: each smol's first song, the next when one ends.
  const songs = smols.filter((smol) => smol.Song_1);
  if (!songs.length) return el("p", { text: "Nothing to play." });
  let at = 0;
  const now = el("p", { class: "now", "aria-live": "polite" });
  const audio = el("audio", { controls: true, preload: "none", "aria-label": "Play all, in order" });
  const load = (n) => {
    at = n;
    audio.src = `/song/${songs[n].Song_1}.mp3`;
    now.textContent = `${n + 1} of ${songs.length}: ${songs[n].Title || "Untitled"}`;
  };
  const play = () => audio.play().catch(() => {});  // (a play() cut short by loading the next song)
  audio.addEventListener("ended", () => { if (at + 1 < songs.length) { load(at + 1); play(); } });
  load(0);
  return el("section", { class: "playall" },
    el("button", { type: "button", text: "▶ Play all", onclick: () => { load(0); play(); } }), now, audio);
}

async function playlistPage(title) {
  const page = await get(`/playlist/${q(title)}?limit=100`);
  show(el("h1", { text: `Playlist: ${title}` }), playAll(page.smols), el("ul", { class: "grid" }, page.smols.map(card)));
}

async function mixtapesPage() {
  const mixtapes = await get("/mixtapes");
  show(el("h1", { text: "Mixtapes" }), mixtapes.length
    ? el("ul", { class: "tracks" }, mixtapes.map((m) => el("li", {},
        el("a", { href: `#/mixtape/${m.Id}`, text: m.Title }), ` · ${m.Smols.length} smols · by ${short(m.Address)}`)))
    : el("p", { text: "No mixtapes yet." }));
}

async function mixtapePage(id) {
  const mixtape = await get(`/mixtapes/${id}`);
  show(el("h1", { text: mixtape.Title }), el("p", { text: mixtape.Desc }), playAll(mixtape.Smols),
       el("ol", { class: "grid" }, mixtape.Smols.map(card)));
}

// ---- the SoundFlow library ----

async function catalogPage() {
  show(el("h1", { text: "SoundFlow" }), el("p", { text: "Loading…" }));
  const [free, premium] = await Promise.all([get("/catalog/free"), get("/catalog/premium")]);
  const categories = [...new Set([...free, ...premium].map((t) => t.category))];
  const sections = categories.map((category) => el("section", {},
    el("h2", { text: category }),
    el("ul", { class: "tracks" }, [...free, ...premium].filter((t) => t.category === category).map((t) =>
      el("li", {}, el("span", { text: `${t.title} · ${t.genre} · ${t.bpm} BPM · ${t.key}` }),
         t.url ? player(t.url, t.title) : el("span", { class: "premium", text: "Premium" }))))));
  show(el("h1", { text: "SoundFlow" }), ...(sections.length ? sections : [el("p", { text: "No tracks yet." })]));
}

// ---- routing (#/path) ----

function parseHash() {
  // Split first, then decode each part: a "/", "?" or "&" typed into a search or a tag stays in it.
  const raw = location.hash.slice(1) || "/";
  const at = raw.indexOf("?");
  const path = at < 0 ? raw : raw.slice(0, at);
  const decode = (part) => { try { return decodeURIComponent(part); } catch { return part; } };
  return { parts: path.split("/").filter(Boolean).map(decode), query: new URLSearchParams(at < 0 ? "" : raw.slice(at + 1)) };
}

async function route() {
  leaving();
  leaving = () => {};
  generation += 1;
  say("");
  const { parts, query } = parseHash();
  try {
    if (parts[0] === "smol" && /^[0-9a-f]{64}$/.test(parts[1] || "")) await smolPage(parts[1]);
    else if (parts[0] === "create") createPage();
    else if (parts[0] === "mine") {
      if (session.address) pagedList("My smols", "/created");
      else show(el("h1", { text: "My smols" }), el("p", { text: "Sign in to see your smols." }));
    }
    else if (parts[0] === "search") await searchPage(query.get("q") || "");
    else if (parts[0] === "u" && parts[1]) pagedList(`By ${short(parts[1])}`, `/?address=${q(parts[1])}`);
    else if (parts[0] === "tags" && parts[1]) pagedList(`Tagged ${parts[1]}`, `/tags/${q(parts[1])}`);
    else if (parts[0] === "trending") await trending();
    else if (parts[0] === "playlist" && parts[1]) await playlistPage(parts[1]);
    else if (parts[0] === "mixtapes") await mixtapesPage();
    else if (parts[0] === "mixtape" && /^[0-9a-f]{16}$/.test(parts[1] || "")) await mixtapePage(parts[1]);
    else if (parts[0] === "liked") {
      if (session.address) pagedList("Liked", "/liked");
      else show(el("h1", { text: "Liked" }), el("p", { text: "Sign in to see what you liked." }));
    }
    else if (parts[0] === "catalog") await catalogPage();
    else pagedList("Listen", "/");
  } catch (error) {
    if (error instanceof Stale) return;
    show(el("h1", { text: "Something went wrong" }), el("p", { text: error.message }));
  }
  main.focus({ preventScroll: true });
}

setupAccount();
account();
window.addEventListener("hashchange", route);
route();
