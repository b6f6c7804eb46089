// Draws the server's plan for one image (its `usage.images[]` entry from
// the price preview) over the picture: tiles with their numbers, the
// per-tile view of a whole image, padding, and a caption with the price.

const MAX_W = 320;
const MAX_H = 240;

/// The caption that says what the model sees and what it costs.
export function caption(plan) {
  const n = plan.tile_boxes ? plan.tile_boxes.length : 0;
  const tokens = `${plan.tokens} tokens`;
  let what;
  if (n > 0) {
    what = `${n} tile${n === 1 ? "" : "s"}${plan.thumbnail ? " + thumbnail" : ""}`;
  } else if (plan.resized && plan.policy === "native") {
    const r = plan.resized;
    what = `whole image at ${r.width}x${r.height}`;
    if (plan.sliced_by_projector) what += ", sliced by the projector";
    const c = plan.canvas;
    if (c && (c.width !== r.width || c.height !== r.height)) {
      what += `, padded to ${c.width}x${c.height}`;
    }
  } else {
    what = "thumbnail only";
  }
  if (plan.downscaled) what += " (downscaled)";
  return `${what} · ${tokens} (${plan.detail}, ${plan.policy})`;
}

/// Draws `img` and `plan` on `canvas`; returns the number of tiles drawn.
export function draw(canvas, img, plan) {
  const w = img.naturalWidth;
  const h = img.naturalHeight;
  // Original-image pixels per model pixel, for padding drawn around it.
  const r = plan.resized ? w / Math.max(1, plan.resized.width) : 1;
  const pad = padding(plan, r, w, h);
  const s = Math.min(1, MAX_W / pad.w, MAX_H / pad.h);
  const iw = Math.max(1, Math.round(pad.w * s));
  const ih = Math.max(1, Math.round(pad.h * s));
  // The thumbnail goes beside the picture, never over a tile.
  const side = plan.thumbnail ? Math.max(40, Math.min(72, ih)) : 0;
  canvas.width = iw + (side ? side + 12 : 0);
  canvas.height = Math.max(ih, side ? side + 22 : 0);
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  g.fillStyle = "#8a8a8a";
  g.fillRect(0, 0, iw, ih);
  const x0 = pad.left * s;
  const y0 = pad.top * s;
  g.drawImage(img, x0, y0, w * s, h * s);
  const boxes = plan.tile_boxes || [];
  if (boxes.length > 0) {
    boxes.forEach((b, i) => box(g, x0 + b[0] * s, y0 + b[1] * s, (b[2] - b[0]) * s, (b[3] - b[1]) * s, String(i + 1)));
  } else {
    grid(g, x0, y0, w * s, h * s, plan.cols || 1, plan.rows || 1);
  }
  if (plan.thumbnail) thumbnail(g, img, plan.thumbnail, iw + 9, side);
  return boxes.length;
}

/// The global thumbnail beside the picture, at its own shape (the whole
/// picture as the model gets it), labelled with its price.
function thumbnail(g, img, t, x0, side) {
  const k = side / Math.max(t.width, t.height, 1);
  const tw = Math.max(8, t.width * k);
  const th = Math.max(8, t.height * k);
  const x = x0 + 3;
  const y = 20;
  g.drawImage(img, x, y, tw, th);
  g.lineWidth = 2;
  g.strokeStyle = "#0b57d0";
  g.strokeRect(x - 1, y - 1, tw + 2, th + 2);
  g.font = "bold 11px system-ui, sans-serif";
  g.fillStyle = "#1b1b1b";
  g.fillText(`thumb +${t.tokens}`, x, y - 6);
}

/// The padded area in original-image pixels, and where the image sits in it.
function padding(plan, r, w, h) {
  const c = plan.canvas;
  const o = plan.offset || { x: 0, y: 0 };
  if (!c || !plan.resized) return { w, h, left: 0, top: 0 };
  return {
    w: Math.max(w, c.width * r),
    h: Math.max(h, c.height * r),
    left: o.x * r,
    top: o.y * r,
  };
}

function box(g, x, y, w, h, label) {
  g.lineWidth = 2;
  g.strokeStyle = "#000";
  g.strokeRect(x + 1, y + 1, w - 2, h - 2);
  g.strokeStyle = "#ffd400";
  g.setLineDash([6, 4]);
  g.strokeRect(x + 1, y + 1, w - 2, h - 2);
  g.setLineDash([]);
  g.font = "bold 12px system-ui, sans-serif";
  const tw = g.measureText(label).width + 6;
  g.fillStyle = "rgba(0,0,0,0.75)";
  g.fillRect(x + 3, y + 3, tw, 16);
  g.fillStyle = "#fff";
  g.fillText(label, x + 6, y + 15);
}

/// The per-tile view of a whole image: the tile-sized regions it covers.
function grid(g, x, y, w, h, cols, rows) {
  g.strokeStyle = "rgba(255,212,0,0.9)";
  g.lineWidth = 1;
  g.setLineDash([3, 3]);
  for (let c = 1; c < cols; c++) line(g, x + (w * c) / cols, y, x + (w * c) / cols, y + h);
  for (let r = 1; r < rows; r++) line(g, x, y + (h * r) / rows, x + w, y + (h * r) / rows);
  g.setLineDash([]);
  g.lineWidth = 2;
  g.strokeRect(x + 1, y + 1, w - 2, h - 2);
}

function line(g, x1, y1, x2, y2) {
  g.beginPath();
  g.moveTo(x1, y1);
  g.lineTo(x2, y2);
  g.stroke();
}
