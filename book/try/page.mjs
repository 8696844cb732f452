// The "Try it" page (book/try.md): the model that ships with clothparse parses a photo in the reader's browser with
// onnxruntime-web (WebAssembly, one thread); nothing leaves the page. clothparse book build puts this file, the
// runtime (ort/), the model and its card (model.onnx, model.json) and example.png in _build/html/try-it/.
import { garmentList, imageInput, parseLogits, priorInput, resizeBilinear, tint } from "./parse.mjs";

const HERE = new URL("./", import.meta.url);
const MAX_BYTES = 60 * 2 ** 20; // a file larger than any photo: refused before it is read
const MAX_PIXELS = 40e6; // 40 megapixels: the photo, its overlay and its mask stay a few hundred MB
const $ = (id) => document.getElementById(id);

// What the page did last, for the curious (and the browser test): see tests/test_try_page.py.
const state = { parses: 0, busy: false, last: null, card: null, session: null, photo: null };
window.clothparseTry = state;

function say(text, kind = "info") {
  const line = $("try-status");
  line.textContent = text;
  line.dataset.kind = kind;
}

function fail(text) {
  say(text, "error");
  state.last = { ok: false, error: text };
  state.parses++;
}

// The prior as the page's choices set it: the garments marked present and absent.
function chosenPrior() {
  const present = [], absent = [];
  for (const g of state.card.prior ? state.card.prior.garments : []) {
    const v = document.querySelector(`input[name="try-prior-${g}"]:checked`)?.value;
    if (v === "present") present.push(g);
    if (v === "absent") absent.push(g);
  }
  return { present, absent };
}

// A file (or the example's URL) -> its pixels as a viewer shows them (EXIF orientation applied, no colour
// management, as Pillow reads them); null with a line on the page when it cannot be parsed here.
async function readPhoto(blob, name) {
  if (blob.size > MAX_BYTES) return fail(`${name} is ${(blob.size / 2 ** 20).toFixed(0)} MB: too large for a photo (at most ${MAX_BYTES / 2 ** 20} MB here).`);
  const url = URL.createObjectURL(blob);
  try {
    const img = new Image();
    const loaded = await new Promise((resolve) => { img.onload = () => resolve(true); img.onerror = () => resolve(false); img.src = url; });
    if (!loaded || !img.naturalWidth) return fail(`${name} is not an image this browser can read (a JPEG, PNG, WebP... photo).`);
    const pixels = img.naturalWidth * img.naturalHeight;
    if (pixels > MAX_PIXELS) return fail(`${name} is ${img.naturalWidth}x${img.naturalHeight} (${(pixels / 1e6).toFixed(0)} megapixels): too large to parse here (at most ${MAX_PIXELS / 1e6} megapixels); scale it down first.`);
    const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none" });
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    const rgba = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    return { name, width: bitmap.width, height: bitmap.height, rgba };
  } catch (e) {
    return fail(`${name} could not be decoded (${e.message}).`);
  } finally {
    URL.revokeObjectURL(url);
  }
}

// Parse the current photo with the chosen prior: the model at its size, the mask at the photo's.
async function parse() {
  const photo = state.photo, card = state.card, ort = state.ort;
  const [h, w] = card.input.size;
  const { present, absent } = chosenPrior();
  const t0 = performance.now();
  const small = resizeBilinear(photo.rgba, photo.width, photo.height, 4, w, h);
  const feeds = { image: new ort.Tensor("float32", imageInput(small, h, w, card.input.mean, card.input.std), [1, 3, h, w]) };
  if (card.prior) feeds.prior = new ort.Tensor("float32", priorInput(card.prior.garments, present, absent), [1, card.prior.garments.length]);
  const t1 = performance.now();
  const out = await state.session.run(feeds);
  const t2 = performance.now();
  const names = card.classes.map((c) => c.name);
  const excluded = absent.map((g) => names.indexOf(g));
  const mask = parseLogits(out.seg.data, names.length, h, w, photo.height, photo.width, excluded);
  const garments = garmentList(mask, photo.rgba, photo.width, photo.height, names, out.cls ? out.cls.data : null);
  const ms = performance.now() - t0;
  show(photo, mask, garments);
  $("try-time").textContent = `Parsed in ${ms.toFixed(0)} ms (the model itself: ${(t2 - t1).toFixed(0)} ms) at ${photo.width}x${photo.height}, in this browser.`;
  say(`${photo.name}: ${garments.length ? garments.map((g) => g.name).join(", ") : "no garment found"}.`);
  state.last = { ok: true, name: photo.name, width: photo.width, height: photo.height, present, absent, garments, mask, ms, model_ms: t2 - t1 };
  state.parses++;
}

function show(photo, mask, garments) {
  const colors = state.card.classes.map((c) => [1, 3, 5].map((k) => parseInt(c.color.slice(k, k + 2), 16)));
  const canvas = $("try-overlay");
  canvas.width = photo.width;
  canvas.height = photo.height;
  const image = new ImageData(tint(new Uint8ClampedArray(photo.rgba), mask, colors), photo.width, photo.height);
  canvas.getContext("2d").putImageData(image, 0, 0);
  $("try-garments").replaceChildren(...garments.map((g) => {
    const li = document.createElement("li");
    const p = g.presence_probability === null ? "" : `, presence ${(100 * g.presence_probability).toFixed(0)} %`;
    const share = g.pixel_share < 0.001 ? "< 0.1" : (100 * g.pixel_share).toFixed(1);
    li.textContent = `${g.name}: ${share} % of the photo, ${g.color_name}${p}`;
    return li;
  }));
}

// One parse at a time: a request during a parse runs once that one ends, with the choices as they are then.
let pending = false;
async function request() {
  if (state.busy) { pending = true; return; }
  state.busy = true;
  try {
    do { pending = false; await parse(); } while (pending);
  } catch (e) {
    fail(`The parse failed: ${e.message}`);
  } finally {
    state.busy = false;
  }
}

async function open(blob, name) {
  const photo = await readPhoto(blob, name);
  if (!photo) return;
  state.photo = photo;
  await request();
}

function controls(card) {
  $("try-model").textContent = modelLine(card);
  $("try-legend").replaceChildren(...card.classes.slice(1).map((c) => {
    const li = document.createElement("li");
    li.innerHTML = `<span class="try-swatch" style="background:${c.color}"></span>${c.name}`;
    return li;
  }));
  const rows = (card.prior ? card.prior.garments : []).map((g) => {
    const tr = document.createElement("tr");
    tr.innerHTML = `<td>${g}</td>` + ["unknown", "present", "absent"].map((v) =>
      `<td><label><input type="radio" name="try-prior-${g}" value="${v}"${v === "unknown" ? " checked" : ""}> ${v}</label></td>`).join("");
    return tr;
  });
  $("try-prior").replaceChildren(...rows);
  $("try-prior").addEventListener("change", () => state.photo && request());
  $("try-file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    e.target.value = ""; // the same file chosen again is a change too
    if (file) open(file, file.name);
  });
  const drop = $("try-drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.dataset.over = "1"; });
  drop.addEventListener("dragleave", () => delete drop.dataset.over);
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    delete drop.dataset.over;
    const file = e.dataTransfer.files[0];
    if (file) open(file, file.name);
  });
}

function modelLine(card) {
  const test = card.test || {}, shipped = card.shipped || {}, agree = shipped.agreement?.without_prior;
  const data = { ccp: "CCP (Clothing Co-Parsing)", synthetic: "synthetic paper dolls", imaterialist: "iMaterialist 2019" }[shipped.dataset] || shipped.dataset;
  const iou = "iou_excl_bg" in test ? ` Its test IoU (garments, background excluded) on ${data}: ${(100 * test.iou_excl_bg).toFixed(1)} % over ${test.images} photos.` : "";
  const formats = shipped.int8_matrices?.length ? "float16 and int8" : "float16";
  const half = agree ? ` Weights in ${formats} (${shipped.size_mb} MiB): the same class as the float32 model on ${(100 * agree.pixels).toFixed(2)} % of the pixels of ${shipped.agreement.photos} photos.` : "";
  return `Model: ${card.model} (${card.encoder}), trained by the ${card.profile} profile, seed ${card.seed}, at ${card.size[0]}x${card.size[1]}.${iou}${half}`;
}

async function start() {
  if (typeof WebAssembly !== "object") return fail("This browser has no WebAssembly, which the model needs: open the page in a current Firefox, Chrome, Edge or Safari.");
  const response = await fetch(new URL("model.json", HERE));
  if (!response.ok) return fail("No model ships with this version of clothparse yet (the published run's model is made with: clothparse export --ship).");
  state.card = await response.json();
  controls(state.card);
  say("Loading the model...");
  const ort = (state.ort = await import("./ort/ort.wasm.min.mjs"));
  ort.env.wasm.numThreads = 1; // threads need a cross-origin-isolated page, which a static host does not give
  ort.env.wasm.wasmPaths = new URL("ort/", HERE).href;
  const t0 = performance.now();
  state.session = await ort.InferenceSession.create(new URL("model.onnx", HERE).href, { executionProviders: ["wasm"] });
  state.session_ms = performance.now() - t0;
  const example = await fetch(new URL("example.png", HERE));
  await open(await example.blob(), "the example (a synthetic paper doll)");
}

start().catch((e) => fail(`The page could not start: ${e.message}`));
