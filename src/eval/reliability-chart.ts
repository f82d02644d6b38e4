/**
 * The reliability diagram: an SVG written here (pure), rendered to PNG with sharp (librsvg). Observed
 * frequency against mean predicted probability per bin, the diagonal of perfect calibration, one series
 * per calibration set, its ECE in the legend, and the test-model banner when the weights are random.
 */
import sharp from 'sharp';
import { escapeHtml } from '../reports/note.js';
import type { Calibration } from './summary.js';

export interface ChartSeries {
  name: string;
  colour: string;
  calibration: Calibration;
}

const W = 640;
const PLOT = { x: 110, y: 70, size: 400 };

const fmt = (v: number | null) => (v === null ? 'n/a' : v.toFixed(3));

function point(meanP: number, observed: number): [number, number] {
  return [PLOT.x + meanP * PLOT.size, PLOT.y + (1 - observed) * PLOT.size];
}

function seriesSvg(s: ChartSeries, index: number): string {
  const pts = s.calibration.bins.filter((b) => b.n > 0).map((b) => point(b.meanP!, b.observed!));
  const line = pts.length > 1 ? `<polyline fill="none" stroke="${s.colour}" stroke-width="2" points="${pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>` : '';
  const dots = pts.map(([x, y]) => `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="4" fill="${s.colour}"/>`).join('');
  const ly = PLOT.y + PLOT.size + 50 + index * 20;
  const legend = `<rect x="${PLOT.x}" y="${ly - 10}" width="12" height="12" fill="${s.colour}"/>` +
    `<text x="${PLOT.x + 18}" y="${ly}" font-size="13">${escapeHtml(s.name)}: n=${s.calibration.n}, ECE=${fmt(s.calibration.ece)}</text>`;
  return line + dots + legend;
}

export function reliabilitySvg(series: readonly ChartSeries[], banner?: string): string {
  const ticks = [0, 0.2, 0.4, 0.6, 0.8, 1].map((t) => {
    const x = PLOT.x + t * PLOT.size;
    const y = PLOT.y + (1 - t) * PLOT.size;
    return `<line x1="${x}" y1="${PLOT.y + PLOT.size}" x2="${x}" y2="${PLOT.y + PLOT.size + 5}" stroke="#333"/>` +
      `<text x="${x}" y="${PLOT.y + PLOT.size + 20}" font-size="12" text-anchor="middle">${t.toFixed(1)}</text>` +
      `<line x1="${PLOT.x - 5}" y1="${y}" x2="${PLOT.x}" y2="${y}" stroke="#333"/>` +
      `<text x="${PLOT.x - 9}" y="${y + 4}" font-size="12" text-anchor="end">${t.toFixed(1)}</text>`;
  }).join('');
  const height = PLOT.y + PLOT.size + 50 + series.length * 20;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif">`,
    `<rect width="${W}" height="${height}" fill="#fff"/>`,
    `<text x="${W / 2}" y="24" font-size="16" text-anchor="middle">Reliability of answer-token probabilities</text>`,
    banner ? `<text x="${W / 2}" y="48" font-size="12" fill="#b00" font-weight="bold" text-anchor="middle">${escapeHtml(banner)}</text>` : '',
    `<rect x="${PLOT.x}" y="${PLOT.y}" width="${PLOT.size}" height="${PLOT.size}" fill="none" stroke="#333"/>`,
    `<line x1="${PLOT.x}" y1="${PLOT.y + PLOT.size}" x2="${PLOT.x + PLOT.size}" y2="${PLOT.y}" stroke="#999" stroke-dasharray="5,4"/>`,
    ticks,
    `<text x="${PLOT.x + PLOT.size / 2}" y="${PLOT.y + PLOT.size + 36}" font-size="13" text-anchor="middle">mean predicted probability (bin)</text>`,
    `<text transform="translate(${PLOT.x - 45} ${PLOT.y + PLOT.size / 2}) rotate(-90)" font-size="13" text-anchor="middle">observed frequency</text>`,
    ...series.map(seriesSvg),
    '</svg>',
  ].join('');
}

export async function renderPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg)).png().toBuffer();
}
