// The angle plot: yaw, pitch and roll over the last WINDOW_S seconds, one row each; the raw network
// output thin, the filtered stream thick. Samples: [seq, t_capture, tracked, euler[3], raw[3]|null, pos].
export const WINDOW_S = 10;
const NAMES = ["yaw", "pitch", "roll"];
const COLOURS = ["#ff6b6b", "#51cf66", "#4dabf7"];

function niceRange(values) {
  let lo = Math.min(...values), hi = Math.max(...values);
  if (!isFinite(lo)) { lo = -10; hi = 10; }
  const mid = (lo + hi) / 2, half = Math.max((hi - lo) / 2 * 1.15, 5);
  return [mid - half, mid + half];
}

export function drawPlot(canvas, samples) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, left = 46, right = 8, rowH = H / 3;
  ctx.fillStyle = "#0b0d10";
  ctx.fillRect(0, 0, W, H);
  ctx.font = "11px sans-serif";
  if (!samples.length) {
    ctx.fillStyle = "#8b949e";
    ctx.fillText("waiting for the stream...", left, 20);
    return;
  }
  const tEnd = samples[samples.length - 1][1], tStart = tEnd - WINDOW_S;
  const x = (t) => left + (W - left - right) * (t - tStart) / WINDOW_S;
  for (let a = 0; a < 3; a++) {
    const top = a * rowH, values = [];
    for (const s of samples) {
      values.push(s[3][a]);
      if (s[4]) values.push(s[4][a]);
    }
    const [lo, hi] = niceRange(values);
    const y = (v) => top + 6 + (rowH - 12) * (hi - v) / (hi - lo);
    ctx.strokeStyle = "#2c323a";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let s = 0; s <= WINDOW_S; s += 2) { ctx.moveTo(x(tEnd - s), top); ctx.lineTo(x(tEnd - s), top + rowH); }
    ctx.moveTo(left, top + rowH); ctx.lineTo(W - right, top + rowH);
    ctx.stroke();
    ctx.fillStyle = "#8b949e";
    ctx.fillText(NAMES[a], 4, top + 14);
    ctx.fillText(hi.toFixed(0), 4, top + 28);
    ctx.fillText(lo.toFixed(0), 4, top + rowH - 6);
    // raw: thin, broken where there was no measurement
    ctx.strokeStyle = COLOURS[a];
    ctx.globalAlpha = 0.55;
    ctx.lineWidth = 1;
    ctx.beginPath();
    let pen = false;
    for (const s of samples) {
      if (!s[4]) { pen = false; continue; }
      const px = x(s[1]), py = y(s[4][a]);
      if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
      pen = true;
    }
    ctx.stroke();
    // filtered: thick; grey while the stream is lost
    ctx.globalAlpha = 1;
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    pen = false;
    for (const s of samples) {
      const px = x(s[1]), py = y(s[3][a]);
      if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
      pen = s[2];
      if (!s[2]) { ctx.stroke(); ctx.beginPath(); ctx.moveTo(px, py); }
    }
    ctx.stroke();
  }
  ctx.fillStyle = "#8b949e";
  ctx.fillText(`-${WINDOW_S} s`, left, H - 2);
  ctx.fillText("now", W - right - 22, H - 2);
}
