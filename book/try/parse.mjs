// The parsing path of clothparse_lib (evaluation/parsing.py, evaluation/runtime.py, data/base.py) in the browser,
// step for step, so that the page's masks are Python's: the photo squashed to the model's size with Pillow's
// bilinear resampling (fit_images), scaled and normalised as the card says, the prior (NaN = unknown), the logits
// resized back to the photo bilinearly with half-pixel centres (resize_logits), the garments declared absent left
// out of the argmax (parse_logits), and each garment's share, box, probability and dominant colour.
// Pure functions on typed arrays: no DOM, no runtime.

const PRECISION_BITS = 22; // Pillow's fixed point for 8-bit images (32 - 8 - 2)

// Pillow's precompute_coeffs for the bilinear filter: per output pixel, the first input pixel and the weights.
function resampleCoeffs(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filterscale; // the bilinear filter's support is 1
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      w[x] = t < 1 ? 1 - t : 0;
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = Math.trunc(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, kk, ksize };
}

const clip8 = (v) => Math.min(255, Math.max(0, v >> PRECISION_BITS));

// RGB (3 bytes a pixel) or RGBA (4) pixels of a width x height image -> RGB at outWidth x outHeight, exactly as
// Pillow's Image.resize(..., BILINEAR): a horizontal pass, then a vertical one, each rounded to 8 bits.
export function resizeBilinear(pixels, width, height, channels, outWidth, outHeight) {
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += channels) {
    rgb[i] = pixels[j]; rgb[i + 1] = pixels[j + 1]; rgb[i + 2] = pixels[j + 2];
  }
  if (width === outWidth && height === outHeight) return rgb;
  const h = resampleCoeffs(width, outWidth);
  const v = resampleCoeffs(height, outHeight);
  const first = v.bounds[0];
  const last = v.bounds[outHeight * 2 - 2] + v.bounds[outHeight * 2 - 1];
  let src = rgb, srcWidth = width, rows = height, offset = 0;
  if (width !== outWidth) { // the rows the vertical pass reads, resized horizontally
    rows = last - first;
    const tmp = new Uint8Array(outWidth * rows * 3);
    for (let y = 0; y < rows; y++) {
      for (let xx = 0; xx < outWidth; xx++) {
        const xmin = h.bounds[xx * 2], xmax = h.bounds[xx * 2 + 1], k = xx * h.ksize;
        for (let c = 0; c < 3; c++) {
          let ss = 1 << (PRECISION_BITS - 1);
          for (let x = 0; x < xmax; x++) ss += rgb[((y + first) * width + x + xmin) * 3 + c] * h.kk[k + x];
          tmp[(y * outWidth + xx) * 3 + c] = clip8(ss);
        }
      }
    }
    src = tmp; srcWidth = outWidth; offset = first;
  }
  if (height === outHeight) return src;
  const out = new Uint8Array(outWidth * outHeight * 3);
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = v.bounds[yy * 2] - offset, ymax = v.bounds[yy * 2 + 1], k = yy * v.ksize;
    for (let xx = 0; xx < outWidth; xx++) {
      for (let c = 0; c < 3; c++) {
        let ss = 1 << (PRECISION_BITS - 1);
        for (let y = 0; y < ymax; y++) ss += src[((y + ymin) * srcWidth + xx) * 3 + c] * v.kk[k + y];
        out[(yy * outWidth + xx) * 3 + c] = clip8(ss);
      }
    }
  }
  return out;
}

// RGB bytes (h x w) -> the graph's image input (1, 3, h, w): (x / 255 - mean) / std in float32, as numpy computes it.
export function imageInput(rgb, height, width, mean, std) {
  const f = Math.fround, n = height * width, out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    const m = f(mean[c]), s = f(std[c]);
    for (let i = 0; i < n; i++) out[c * n + i] = f(f(f(rgb[i * 3 + c] / 255) - m) / s);
  }
  return out;
}

// The prior input (1, 8): 1 present, 0 absent, NaN unknown, in the card's garment order.
export function priorInput(garments, present, absent) {
  return Float32Array.from(garments, (g) => (present.includes(g) ? 1 : absent.includes(g) ? 0 : NaN));
}

// resize_logits's taps: source index pairs and float32 weights, half-pixel centres, clamped at the edges.
function linearTaps(nIn, nOut) {
  const i0 = new Int32Array(nOut), i1 = new Int32Array(nOut), w = new Float32Array(nOut);
  for (let i = 0; i < nOut; i++) {
    const src = Math.max((i + 0.5) * (nIn / nOut) - 0.5, 0);
    i0[i] = Math.min(Math.trunc(src), nIn - 1);
    i1[i] = Math.min(i0[i] + 1, nIn - 1);
    w[i] = src - i0[i];
  }
  return { i0, i1, w };
}

// seg: (C, h, w) logits -> the class of each pixel of a height x width photo, the logits resized bilinearly
// (float32 arithmetic, as numpy's) and the classes in `excluded` (absent garments) never chosen; a row at a time.
export function parseLogits(seg, classes, h, w, height, width, excluded = []) {
  const f = Math.fround, ty = linearTaps(h, height), tx = linearTaps(w, width);
  const kept = [...Array(classes).keys()].filter((c) => !excluded.includes(c));
  const mask = new Uint8Array(height * width);
  const row = new Float32Array(kept.length * w);
  for (let y = 0; y < height; y++) {
    const a = ty.i0[y] * w, b = ty.i1[y] * w, wy = ty.w[y], vy = f(1 - wy);
    kept.forEach((c, k) => {
      for (let x = 0; x < w; x++) row[k * w + x] = f(f(seg[c * h * w + a + x] * vy) + f(seg[c * h * w + b + x] * wy));
    });
    for (let x = 0; x < width; x++) {
      const x0 = tx.i0[x], x1 = tx.i1[x], wx = tx.w[x], vx = f(1 - wx);
      let best = -Infinity, arg = 0;
      for (let k = 0; k < kept.length; k++) {
        const v = f(f(row[k * w + x0] * vx) + f(row[k * w + x1] * wx));
        if (v > best) { best = v; arg = kept[k]; }
      }
      mask[y * width + x] = arg;
    }
  }
  return mask;
}

// parsing.COLOR_NAMES: the names of dominant colours.
const COLOR_NAMES = {
  black: [20, 20, 20], white: [240, 240, 240], grey: [128, 128, 128], red: [200, 30, 40], orange: [240, 130, 30],
  yellow: [240, 220, 50], green: [40, 150, 60], blue: [40, 90, 200], navy: [25, 35, 80], purple: [120, 50, 150],
  pink: [240, 150, 180], brown: [110, 70, 40], beige: [215, 195, 160],
};

// parsing.dominant_color: the most frequent colour (8 levels a channel), as hex and its nearest name.
function dominantColor(sums, counts) {
  let top = 0;
  for (let k = 1; k < counts.length; k++) if (counts[k] > counts[top]) top = k;
  const rgb = [0, 1, 2].map((c) => Math.round(sums[top * 3 + c] / counts[top]));
  let name = "", dist = Infinity;
  for (const [n, ref] of Object.entries(COLOR_NAMES)) {
    const d = ref.reduce((s, v, c) => s + (v - rgb[c]) ** 2, 0);
    if (d < dist) { dist = d; name = n; }
  }
  return { hex: "#" + rgb.map((v) => v.toString(16).padStart(2, "0")).join(""), name };
}

// parse_logits's garment list: each garment found (in the card's order), its pixel share, box [x0, y0, x1, y1)
// and presence probability (sigmoid of its ClassBranch logit; null without one) and dominant colour.
export function garmentList(mask, rgba, width, height, classNames, cls) {
  const found = new Map();
  for (let i = 0; i < mask.length; i++) {
    const c = mask[i];
    if (c === 0) continue;
    let g = found.get(c);
    if (!g) {
      g = { n: 0, x0: width, y0: height, x1: 0, y1: 0, sums: new Float64Array(512 * 3), counts: new Uint32Array(512) };
      found.set(c, g);
    }
    const x = i % width, y = (i - x) / width, r = rgba[i * 4], gr = rgba[i * 4 + 1], b = rgba[i * 4 + 2];
    g.n++; g.x0 = Math.min(g.x0, x); g.y0 = Math.min(g.y0, y); g.x1 = Math.max(g.x1, x + 1); g.y1 = Math.max(g.y1, y + 1);
    const key = (r >> 5) * 64 + (gr >> 5) * 8 + (b >> 5);
    g.counts[key]++; g.sums[key * 3] += r; g.sums[key * 3 + 1] += gr; g.sums[key * 3 + 2] += b;
  }
  return [...found.keys()].sort((a, b) => a - b).map((c) => {
    const g = found.get(c), color = dominantColor(g.sums, g.counts);
    return {
      name: classNames[c], pixel_share: g.n / mask.length, box: [g.x0, g.y0, g.x1, g.y1],
      presence_probability: cls ? 1 / (1 + Math.exp(-cls[c - 1])) : null, dominant_color: color.hex, color_name: color.name,
    };
  });
}

// Parsing.overlay: garments tinted in their class colours (alpha 0.5), the background untouched; RGBA in place.
export function tint(rgba, mask, colors, alpha = 0.5) {
  for (let i = 0; i < mask.length; i++) {
    const c = mask[i];
    if (c === 0) continue;
    for (let k = 0; k < 3; k++) rgba[i * 4 + k] = Math.round((1 - alpha) * rgba[i * 4 + k] + alpha * colors[c][k]);
  }
  return rgba;
}
