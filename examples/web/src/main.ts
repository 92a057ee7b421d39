// The sample app: every call goes through @mediagraph/client. The API's URL comes from ?api=…
// (default http://127.0.0.1:8000, where `make dev` listens); the page may be served from any
// origin that the API's development profile allows (http://localhost:* and http://127.0.0.1:*).
import {
  MediagraphClient,
  devSignIn,
  pendingUploads,
  type Media,
  type MediaEvent,
  type Pager,
  type UploadProgress,
} from "@mediagraph/client";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const api = new URLSearchParams(location.search).get("api") ?? "http://127.0.0.1:8000";
const TOKEN_KEY = "mediagraph.sample.session";

let client: MediagraphClient | null = null;
let pager: Pager<Media> | null = null;
let stopStatus: (() => void) | null = null;

$("api-url").textContent = api;

function showError(error: unknown): void {
  const box = $("error");
  box.hidden = false;
  box.textContent = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function start(session: { token: string; user: string }): void {
  client = new MediagraphClient({ url: api, token: session.token });
  $("whoami").hidden = false;
  $("whoami").textContent = `Signed in as ${session.user}`;
  $("upload-section").hidden = false;
  $("gallery-section").hidden = false;
  showResumable();
  startGallery();
  void refreshTrash();
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const session = await devSignIn(api, $<HTMLInputElement>("user").value.trim());
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify(session));
    start(session);
  } catch (error) {
    showError(error);
  }
});

// A reload keeps the session (sessionStorage) and the unfinished multipart uploads (localStorage).
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) start(JSON.parse(saved));

function showResumable(): void {
  const pending = pendingUploads();
  const box = $("resumable");
  box.hidden = pending.length === 0;
  box.textContent = pending.map((upload) => `Unfinished upload: ${upload.filename} — choose the same file to resume.`).join(" ");
}

// ---- upload, progress, live status ----

$<HTMLInputElement>("file").addEventListener("change", (event) => {
  const file = (event.target as HTMLInputElement).files?.[0];
  if (file && client) void upload(client, file);
});

async function upload(api: MediagraphClient, file: File): Promise<void> {
  const chosenAt = performance.now();
  const progress = $<HTMLProgressElement>("progress");
  const history = $("status-history");
  history.replaceChildren();
  $("preview").hidden = true;
  $("status").textContent = "–";
  progress.hidden = false;
  progress.value = 0;
  progress.dataset.seen = "";
  delete $("preview").dataset.elapsedMs;
  stopStatus?.();
  $("error").hidden = true;
  const task = api.upload(file, {
    concurrency: 1, // one part at a time: progress a person can follow
    onProgress: (p: UploadProgress) => renderProgress(p),
    // The record exists and is PENDING: watch it, and send the bytes once the subscription has
    // answered with the current state (so PROCESSING cannot slip by before it is live).
    onCreated: (media) =>
      new Promise<void>((live) => {
        stopStatus = api.watchStatus(media.id, {
          next: (event) => {
            renderStatus(event, chosenAt);
            live();
          },
          error: (error) => {
            showError(error);
            live();
          },
          complete: () => void refreshGallery(),
        });
      }),
  });
  try {
    await task.done;
    showResumable();
  } catch (error) {
    showError(error);
  }
}

function renderProgress(p: UploadProgress): void {
  const progress = $<HTMLProgressElement>("progress");
  const percent = p.total ? Math.floor((100 * p.loaded) / p.total) : 100;
  progress.value = p.phase === "hashing" ? 0 : percent;
  progress.dataset.seen = `${progress.dataset.seen ?? ""} ${progress.value}`.trim();
  progress.dataset.loaded = String(p.phase === "hashing" ? 0 : p.loaded);
  let text = p.phase === "hashing" ? "hashing…" : `${percent}%`;
  if (p.partCount) text += ` (${p.partCount} parts${p.resumedParts ? `, resumed: ${p.resumedParts} already uploaded` : ""})`;
  $("progress-text").textContent = text;
  if (p.resumedParts) $("progress").dataset.resumedParts = String(p.resumedParts);
}

function renderStatus(event: MediaEvent, chosenAt: number): void {
  const status = event.media.status;
  $("status").textContent = status;
  const item = document.createElement("li");
  item.textContent = status;
  $("status-history").append(item);
  if (status === "COMPLETED" && event.media.url) {
    const preview = $<HTMLImageElement>("preview");
    preview.onload = () => {
      // What the benchmark reads: file chosen → COMPLETED shown (with its image).
      preview.dataset.elapsedMs = String(performance.now() - chosenAt);
    };
    preview.src = event.media.url;
    preview.alt = event.media.filename;
    preview.hidden = false;
  }
}

// ---- gallery with infinite scroll, delete and restore ----

function card(media: Media, action: "Delete" | "Restore"): HTMLLIElement {
  const item = document.createElement("li");
  item.dataset.id = media.id;
  item.dataset.status = media.status;
  const image = document.createElement("img");
  const thumb = media.thumbnails.find((t) => t.name === "thumb-large") ?? media.thumbnails[0];
  image.alt = media.filename;
  if (thumb?.url ?? media.url) image.src = (thumb?.url ?? media.url) as string;
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = `${media.filename} · ${media.status}`;
  const button = document.createElement("button");
  button.textContent = action;
  button.className = action.toLowerCase();
  button.onclick = async () => {
    button.disabled = true;
    try {
      if (action === "Delete") await client!.deleteMedia(media.id);
      else await client!.restoreMedia(media.id);
      await Promise.all([refreshGallery(), refreshTrash()]);
    } catch (error) {
      showError(error);
      button.disabled = false;
    }
  };
  item.append(image, name, button);
  return item;
}

let observer: IntersectionObserver | null = null;

function startGallery(): void {
  pager = client!.myMediaPager(12);
  $("gallery").replaceChildren();
  observer?.disconnect();
  // Load the next page whenever the end of the list scrolls into view.
  observer = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) void loadMore();
  });
  observer.observe($("more"));
  void loadMore();
}

async function loadMore(): Promise<void> {
  if (!pager) return;
  const current = pager;
  try {
    const items = await current.loadMore();
    if (current !== pager) return; // the gallery was refreshed meanwhile
    for (const media of items) {
      if (!document.querySelector(`#gallery li[data-id="${media.id}"]`)) $("gallery").append(card(media, "Delete"));
    }
    $("more").textContent = current.hasMore ? "Loading…" : "That's all.";
    // Still room on screen: keep filling it.
    const more = $("more").getBoundingClientRect();
    if (current.hasMore && more.top < innerHeight) void loadMore();
  } catch (error) {
    showError(error);
  }
}

async function refreshGallery(): Promise<void> {
  startGallery();
}

async function refreshTrash(): Promise<void> {
  try {
    const items = await client!.deletedMediaPager(50).loadMore();
    $("trash").replaceChildren(...items.map((media) => card(media, "Restore")));
  } catch (error) {
    showError(error);
  }
}
