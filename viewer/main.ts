/**
 * The viewer page: connects to the bridge that served it, builds the 3D scene from the scene message, applies
 * pose frames, and keeps the panels (Phi, rewards, returns, success rate, thumbnails, metrics) and the counters
 * (connection, fps, frames/s, dropped) current. `window.__pbridge` exposes the counters to tests.
 */
import type { Message, MessageOf } from '../src/protocol/index.ts';
import { Connection, type ConnectionState } from './connection.ts';
import { LinePlot } from './plot.ts';
import { SceneView, type Layout } from './scene3d.ts';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

const SUCCESS_WINDOW = 20;
const ACCENT = '#5fb3ff';
const SPARSE = '#ffb454';

const view = new SceneView($<HTMLCanvasElement>('canvas3d'));
const plots = {
  phi: new LinePlot($<HTMLCanvasElement>('plot-phi'), [ACCENT], [0, 1]),
  reward: new LinePlot($<HTMLCanvasElement>('plot-reward'), [ACCENT, SPARSE]),
  returns: new LinePlot($<HTMLCanvasElement>('plot-return'), [ACCENT, SPARSE]),
  success: new LinePlot($<HTMLCanvasElement>('plot-success'), ['#5fd38d'], [0, 1]),
};

const state = {
  connection: 'connecting' as ConnectionState,
  sceneId: 0,
  framesReceived: 0,
  framesDropped: 0,
  fps: 0,
  framesPerS: 0,
  layout: 'single' as Layout,
  selected: 0,
  /** Episode summaries received, all envs. */
  episodes: 0,
  successes: [] as boolean[],
  thumbnails: 0,
};
(window as unknown as { __pbridge: unknown }).__pbridge = {
  state,
  plots,
  view,
};

const params = new URLSearchParams(location.search);
const token = params.get('token') ?? undefined;
state.layout = params.get('layout') === 'grid' ? 'grid' : 'single';
$<HTMLSelectElement>('layout').value = state.layout;
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;

const conn = new Connection(wsUrl, token, {
  onState(s, detail) {
    state.connection = s;
    const badge = $('conn');
    badge.dataset.state = s;
    badge.textContent = detail ? `${s}: ${detail}` : s;
  },
  onOpen(send) {
    send(subscription());
  },
  onMessage: handle,
});

function subscription(): Message {
  return state.layout === 'grid'
    ? { type: 'subscribe', thumbnails: true }
    : { type: 'subscribe', envs: [state.selected], thumbnails: true };
}

/** Which env's per-step curve the plots show. */
function shownEnv(): number {
  return state.layout === 'grid' ? (view.envIds[0] ?? 0) : state.selected;
}

let curveEpisode = -1;

function handle(msg: Message): void {
  switch (msg.type) {
    case 'scene':
      onScene(msg);
      return;
    case 'frame':
      state.framesReceived++;
      view.applyFrame(msg);
      return;
    case 'progress':
      if (msg.env !== shownEnv()) return;
      if (msg.episode !== curveEpisode) {
        curveEpisode = msg.episode;
        plots.phi.clear();
        plots.reward.clear();
        $('phi-label').textContent =
          `env ${msg.env}, episode ${msg.episode}${msg.source ? ` (${msg.source})` : ''}`;
      }
      for (let i = 0; i < msg.phi.length; i++) {
        const step = msg.step + i;
        plots.phi.push(0, step, msg.phi[i]!);
        plots.reward.push(0, step, msg.shaped[i]!);
        plots.reward.push(1, step, msg.sparse[i]!);
      }
      return;
    case 'episode':
      onEpisode(msg);
      return;
    case 'metrics':
      onMetrics(msg);
      return;
    case 'thumbnail':
      onThumbnail(msg);
      return;
    case 'telemetry':
      state.framesDropped = msg.framesDropped;
      $('dropped').textContent = String(msg.framesDropped);
      return;
    case 'status':
      console.warn(`bridge status ${msg.code}: ${msg.message}`);
      return;
    case 'welcome':
    case 'hello':
    case 'subscribe':
    case 'vec_open':
    case 'vec_opened':
    case 'vec_reset':
    case 'vec_reset_result':
    case 'vec_step':
    case 'vec_step_result':
    case 'vec_close':
    case 'vec_closed':
    case 'rig_ready':
    case 'rig_obs':
    case 'rig_action':
    case 'rig_reset':
    case 'rig_mark':
    case 'rig_episode':
      // Learner and rig traffic: never sent to viewers.
      return;
    default: {
      const never: never = msg;
      console.warn('unhandled message', never);
    }
  }
}

function onScene(scene: MessageOf<'scene'>): void {
  state.sceneId = scene.sceneId;
  document.title = `${scene.name} · progress-bridge`;
  $('title').textContent = scene.name;
  $('instruction').textContent = scene.instruction ? `“${scene.instruction}”` : '';
  const picker = $<HTMLSelectElement>('env-picker');
  picker.replaceChildren(
    ...scene.envIds.map((e, i) => new Option(scene.envNames?.[i] ?? `env ${e}`, String(e))),
  );
  if (!scene.envIds.includes(state.selected)) state.selected = scene.envIds[0]!;
  picker.value = String(state.selected);
  view.setScene(scene);
  view.setLayout(state.layout, state.selected);
  curveEpisode = -1;
  plots.phi.clear();
  plots.reward.clear();
  $('thumbs').replaceChildren();
  thumbUrls.forEach((u) => URL.revokeObjectURL(u));
  thumbUrls.clear();
  $('overlay').hidden = true;
}

function onEpisode(e: MessageOf<'episode'>): void {
  state.episodes++;
  const x = e.totalSteps ?? state.episodes;
  plots.returns.push(1, x, e.return);
  if (e.shapedReturn !== undefined) plots.returns.push(0, x, e.shapedReturn);
  state.successes.push(e.success);
  if (state.successes.length > SUCCESS_WINDOW) state.successes.shift();
  const rate = state.successes.filter(Boolean).length / state.successes.length;
  plots.success.push(0, x, rate);
  $('success-label').textContent = `${(100 * rate).toFixed(0)}% of the last ${state.successes.length}`;
}

const metricRows = new Map<string, HTMLTableCellElement>();
function onMetrics(m: MessageOf<'metrics'>): void {
  const table = $<HTMLTableElement>('metrics');
  for (const [k, v] of Object.entries(m.values)) {
    let cell = metricRows.get(k);
    if (!cell) {
      const row = table.insertRow();
      row.insertCell().textContent = k;
      cell = row.insertCell();
      metricRows.set(k, cell);
    }
    cell.textContent = Math.abs(v) >= 1000 || v === 0 ? v.toFixed(0) : v.toPrecision(4);
  }
}

const thumbUrls = new Map<string, string>();
function onThumbnail(t: MessageOf<'thumbnail'>): void {
  if (t.env !== shownEnv()) return;
  state.thumbnails++;
  const key = `${t.env}/${t.camera}`;
  let img = document.querySelector<HTMLImageElement>(`img[data-key="${CSS.escape(key)}"]`);
  if (!img) {
    const fig = document.createElement('figure');
    img = document.createElement('img');
    img.dataset.key = key;
    img.alt = t.camera;
    const cap = document.createElement('figcaption');
    cap.textContent = t.camera;
    fig.append(img, cap);
    $('thumbs').append(fig);
  }
  const old = thumbUrls.get(key);
  // A copy: the decoded bytes may be a view into a larger message buffer.
  const url = URL.createObjectURL(new Blob([t.data.slice()], { type: t.mime }));
  thumbUrls.set(key, url);
  img.src = url;
  if (old) URL.revokeObjectURL(old);
}

$<HTMLSelectElement>('env-picker').addEventListener('change', (ev) => {
  state.selected = Number((ev.target as HTMLSelectElement).value);
  onLayoutChange();
});
$<HTMLSelectElement>('layout').addEventListener('change', (ev) => {
  state.layout = (ev.target as HTMLSelectElement).value as Layout;
  onLayoutChange();
});

function onLayoutChange(): void {
  view.setLayout(state.layout, state.selected);
  curveEpisode = -1;
  plots.phi.clear();
  plots.reward.clear();
  $('thumbs').replaceChildren();
  conn.send(subscription());
}

// Counters: render frames per second and received pose frames per second, over one-second windows.
let renders = 0;
let lastWindow = performance.now();
let framesAtWindow = 0;
function loop(now: number): void {
  view.render();
  for (const p of Object.values(plots)) p.draw();
  renders++;
  if (now - lastWindow >= 1000) {
    const dt = (now - lastWindow) / 1000;
    state.fps = renders / dt;
    state.framesPerS = (state.framesReceived - framesAtWindow) / dt;
    renders = 0;
    framesAtWindow = state.framesReceived;
    lastWindow = now;
    $('fps').textContent = state.fps.toFixed(0);
    $('rate').textContent = state.framesPerS.toFixed(0);
  }
  $('frames').textContent = String(state.framesReceived);
  if (view.lastTime) $('sim-time').textContent = `t = ${view.lastTime.toFixed(2)} s`;
  requestAnimationFrame(loop);
}
requestAnimationFrame(loop);
conn.start();
