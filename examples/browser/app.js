// The page: a form to load a model folder and classify or generate; `window.mega` is the same as
// a small promise API (the browser test drives it).
const worker = new Worker('./build/mega-worker.js', { type: 'module' });
let next = 0;
const pending = new Map();
worker.onmessage = (e) => {
  const { id, result, error, partial } = e.data;
  const p = pending.get(id);
  if (!p) return;
  if (partial) return p.onPartial?.(partial);
  pending.delete(id);
  if (error !== undefined) p.reject(new Error(error));
  else p.resolve(result);
};
function call(op, args, onPartial) {
  const id = next++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, onPartial });
    worker.postMessage({ id, op, args });
  });
}

// model folder URLs are relative to the page (the worker lives in build/)
const abs = (url) => new URL(url, location.href).href;
window.mega = {
  info: () => call('info'),
  load: (url) => call('load', { url: abs(url) }),
  classify: (url, text) => call('classify', { url: abs(url), text }),
  generate: (url, text, options, onToken) => call('generate', { url: abs(url), text, options }, (p) => onToken?.(p.token)),
  matmul: (args) => call('matmul', args),
};

const $ = (id) => document.getElementById(id);
const show = (x) => ($('out').textContent = typeof x === 'string' ? x : JSON.stringify(x, null, 2));

call('info').then((i) => ($('status').textContent = `${i.threads} thread(s), cross-origin isolated: ${i.crossOriginIsolated}, SIMD: ${i.simd.enabled}`));
$('load').onclick = async () => {
  try {
    const m = await window.mega.load($('folder').value);
    $('model').textContent = `${m.arch} (${m.kind}, ${m.parameters} parameters)`;
  } catch (e) {
    show(`error: ${e.message}`);
  }
};
$('classify').onclick = async () => {
  try {
    const r = await window.mega.classify($('folder').value, $('text').value);
    show(`class ${r.label}  (p = ${r.scores[r.label].toFixed(3)})\n\nscores: ${r.scores.map((s) => s.toFixed(3)).join(' ')}`);
  } catch (e) {
    show(`error: ${e.message}`);
  }
};
$('generate').onclick = async () => {
  let text = $('text').value;
  show(text);
  try {
    await window.mega.generate($('folder').value, $('text').value, { maxNewTokens: 40, greedy: true }, (t) => show((text += t.text)));
  } catch (e) {
    show(`error: ${e.message}`);
  }
};
