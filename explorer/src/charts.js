// The charts of the home page (Chart.js, only the parts used).

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LineController,
  LineElement,
  LinearScale,
  PointElement,
  Tooltip,
} from 'chart.js';
import { el } from './dom.js';

Chart.register(BarController, BarElement, CategoryScale, Legend, LineController, LineElement, LinearScale, PointElement, Tooltip);

const COLOR = '#2f6f8f';

function canvas(id) {
  const node = el('canvas', { id, role: 'img' });
  return { node, wrap: el('div', { class: 'chart' }, node) };
}

function make(id, config, label) {
  const { node, wrap } = canvas(id);
  node.setAttribute('aria-label', label);
  // Drawn once the canvas is in the page.
  requestAnimationFrame(() => new Chart(node, config));
  return wrap;
}

const base = {
  animation: false,
  responsive: true,
  maintainAspectRatio: false,
  plugins: { legend: { display: false } },
};

/** Bars of `buckets` ({start, entries}). */
export function bucketChart(id, buckets, label, format) {
  return make(
    id,
    {
      type: 'bar',
      data: {
        labels: buckets.map((b) => format(b.start)),
        datasets: [{ label: 'entries', data: buckets.map((b) => b.entries), backgroundColor: COLOR }],
      },
      options: { ...base, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    },
    label,
  );
}

/** The tree size over time, from the checkpoint history. */
export function growthChart(id, points) {
  return make(
    id,
    {
      type: 'line',
      data: {
        labels: points.map((p) => p.time.replace('T', ' ').replace(':00Z', ' UTC')),
        datasets: [{ label: 'tree size', data: points.map((p) => p.size), borderColor: COLOR, pointRadius: 2 }],
      },
      options: { ...base, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    },
    'tree size over time',
  );
}

/** Entries by kind. */
export function kindsChart(id, kinds) {
  const names = Object.keys(kinds);
  return make(
    id,
    {
      type: 'bar',
      data: {
        labels: names,
        datasets: [{ label: 'entries', data: names.map((k) => kinds[k]), backgroundColor: COLOR }],
      },
      options: { ...base, indexAxis: 'y', scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
    },
    'entries by kind',
  );
}
