// A small DOM builder: el('div', {class: 'x'}, 'text', child, ...). Text is
// always set as text, never parsed as HTML.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export const link = (href, ...children) => el('a', { href }, ...children);

/** A table: headers, then rows of cells; `rowAttrs(row, i)` gives each row's attributes. */
export function table(headers, rows, rowAttrs = () => ({})) {
  return el(
    'table',
    {},
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', {}, h)))),
    el('tbody', {}, rows.map((cells, i) => el('tr', rowAttrs(cells, i), cells.map((c) => el('td', {}, c))))),
  );
}

export const short = (hex, n = 16) => (hex && hex.length > n ? `${hex.slice(0, n)}…` : hex);
export const number = (n) => n.toLocaleString('en-US');
