/**
 * The gpu.js device thread. gpu.js's WebGPU kernels are asynchronous (every call returns a
 * Promise; WebGPU has no synchronous read-back), while mega-ts's tensors and autograd are
 * synchronous. So gpu.js runs here, in a worker thread that owns the device, and the main thread
 * talks to it through messages: kernel launches, uploads and frees are fire-and-forget (ordered),
 * and only read-back / init / stats block the main thread (`Atomics.wait` until this thread has
 * posted the answer on the reply port; see device.ts).
 *
 * The function below is shipped to the worker as source text (`workerMain.toString()`), so it
 * must not refer to anything outside itself; it runs as CommonJS with `require`, and dynamic
 * `import()` goes through `globalThis.__megaImport`, defined by the source prelude in device.ts
 * (test runners rewrite `import()` inside functions).
 */

/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-require-imports --
   runs from its source text in a worker: require() and untyped messages */
export function workerMain(): void {
  const { parentPort, workerData } = require('node:worker_threads');
  const ctrl = new Int32Array(workerData.ctrl as SharedArrayBuffer);
  const replyPort = workerData.replyPort;
  const bufs = new Map<number, any>();
  const sizes = new Map<number, number>();
  const kernels = new Map<string, any>();
  let gpu: any = null;
  let device: any = null;
  let context: any = null; // gpu.js's WebGPU context: WGSL outputs are wrapped as its pipeline results
  let BufferResult: any = null;
  const wgsl = new Map<string, any>(); // compiled WGSL pipelines by key
  let kernelClass = '';
  let firstError: string | null = null;
  let liveBytes = 0;
  let peakBytes = 0;
  let launches = 0;
  const profile: Record<string, [number, number]> | null = workerData.profile ? {} : null;
  const queue: any[] = [];
  let busy = false;

  function reply(payload: any): void {
    replyPort.postMessage(payload);
    Atomics.add(ctrl, 0, 1);
    Atomics.notify(ctrl, 0);
  }

  function flatten(v: any, out: number[]): void {
    if (typeof v === 'number') out.push(v);
    else for (let i = 0; i < v.length; i++) flatten(v[i], out);
  }

  function setBuf(id: number, handle: any, n: number): void {
    bufs.set(id, handle);
    sizes.set(id, n * 4);
    liveBytes += n * 4;
    if (liveBytes > peakBytes) peakBytes = liveBytes;
  }

  function freeBuf(id: number): void {
    const h = bufs.get(id);
    if (!h) return;
    bufs.delete(id);
    liveBytes -= sizes.get(id) ?? 0;
    sizes.delete(id);
    h.delete();
  }

  /** Lists Dawn's adapters: a name that matches none makes requestAdapter reject with the list. */
  async function listAdapters(create: any, flags: string[]): Promise<{ backend: string; name: string }[]> {
    try {
      const g = create([...flags, 'adapter=#mega-ts: list adapters#']);
      const a = await g.requestAdapter();
      return a ? [] : [];
    } catch (e: any) {
      const out: { backend: string; name: string }[] = [];
      const re = /\* backend: '([^']*)', name: '([^']*)'/g;
      let m: RegExpExecArray | null;
      while ((m = re.exec(String(e && e.message ? e.message : e))) !== null) out.push({ backend: m[1], name: m[2] });
      return out;
    }
  }

  async function init(m: any): Promise<any> {
    const notes: string[] = [];
    const { GPU } = require(m.gpujsPath);
    const tryWebGPU = m.mode === 'auto' || m.mode === 'webgpu';
    if (tryWebGPU) {
      try {
        const wg = await (globalThis as any).__megaImport(m.webgpuUrl);
        const flags: string[] = m.flags ?? [];
        const adapters = await listAdapters(wg.create, flags);
        let chosenFlags = flags;
        // the adapter: the one asked for, else local rank r takes adapter r (round robin)
        const asked = m.adapterIndex !== null && m.adapterIndex !== undefined;
        const i: number | null = asked ? m.adapterIndex : m.rank !== null && m.rank !== undefined && adapters.length ? m.rank % adapters.length : null;
        if (i !== null) {
          if (i < 0 || i >= adapters.length)
            throw new Error(
              `adapter index ${i} is out of range: ${adapters.length} adapter(s) (${adapters.map((a, j) => `${j}: ${a.name}`).join('; ') || 'none'})`,
            );
          const name = adapters[i].name;
          const first = adapters.findIndex((a) => a.name.includes(name));
          if (first !== i) {
            // an identical card: the main thread exposes only that card (gpus.ts) and starts again
            return { identical: { index: i, k: adapters.slice(0, i).filter((a) => a.name === name).length, name }, adapters };
          }
          chosenFlags = [...flags, `adapter=${name}`];
        }
        Object.assign(globalThis, wg.globals);
        const dawn = wg.create(chosenFlags);
        // gpu.js asks for an adapter without options: prefer a discrete GPU over an integrated or
        // software one where Dawn sees several
        const navGpu = {
          requestAdapter: (o?: any) => dawn.requestAdapter({ powerPreference: 'high-performance', ...(o ?? {}) }),
          getPreferredCanvasFormat: () => dawn.getPreferredCanvasFormat(),
          get wgslLanguageFeatures() {
            return dawn.wgslLanguageFeatures;
          },
        };
        (globalThis as any).navigator = { gpu: navGpu };
        const adapter = await navGpu.requestAdapter();
        if (!adapter) throw new Error('Dawn found no WebGPU adapter (requestAdapter() returned null)');
        gpu = new GPU({ mode: 'webgpu' });
        const probe = gpu.createKernel(
          function (this: any, a: any) {
            return a[this.thread.x] * 2;
          },
          { output: [4], pipeline: true, immutable: true },
        );
        const r = await probe(new Float32Array([1, 2, 3, 4]));
        const back = Array.from((await r.toArray()) as Float32Array);
        r.delete();
        kernelClass = probe.kernel.constructor.name;
        probe.destroy();
        if (back.join(',') !== '2,4,6,8') throw new Error(`probe kernel returned [${back}]`);
        device = r.context.device;
        context = r.context;
        BufferResult = require(m.gpujsPath).WebGPUBufferResult;
        const info = adapter.info ?? {};
        return {
          mode: 'webgpu',
          kernelClass,
          adapter: { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description },
          adapters,
          limits: {
            maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
            maxBufferSize: device.limits.maxBufferSize,
            maxComputeWorkgroupsPerDimension: device.limits.maxComputeWorkgroupsPerDimension,
          },
          notes,
        };
      } catch (e: any) {
        notes.push(`webgpu: ${e && e.message ? e.message : String(e)}`);
        gpu = null;
        if (m.mode === 'webgpu') return { error: notes.join('; ') };
      }
    }
    if (m.mode === 'auto' || m.mode === 'headlessgl') {
      try {
        if (!process.env.DISPLAY) throw new Error('no X display (DISPLAY is unset); headless-gl needs one');
        if (!GPU.isHeadlessGLSupported) throw new Error('headless-gl (npm `gl`) is not installed or cannot create a context');
        gpu = new GPU({ mode: 'headlessgl' });
        const probe = gpu.createKernel(
          function (this: any, a: any) {
            return a[this.thread.x] * 2;
          },
          { output: [4], pipeline: true, immutable: true, precision: 'single' },
        );
        const r = probe(new Float32Array([1, 2, 3, 4]));
        const back: number[] = [];
        flatten(r.toArray(), back);
        r.delete();
        kernelClass = probe.kernel.constructor.name;
        if (back.join(',') !== '2,4,6,8') throw new Error(`probe kernel returned [${back}]`);
        return {
          mode: 'headlessgl',
          kernelClass,
          adapter: { description: 'headless-gl (WebGL1) on display ' + process.env.DISPLAY },
          adapters: [],
          limits: {},
          notes,
        };
      } catch (e: any) {
        notes.push(`headless-gl: ${e && e.message ? e.message : String(e)}`);
        gpu = null;
      }
    }
    return { error: notes.join('; ') || 'no GPU mode available' };
  }

  function getKernel(m: any): any {
    let k = kernels.get(m.key);
    if (!k) {
      k = gpu.createKernel(m.src, {
        output: m.output,
        pipeline: true,
        immutable: true,
        dynamicOutput: true,
        dynamicArguments: true,
        loopMaxIterations: 1 << 30,
        argumentTypes: m.types,
        precision: 'single',
        tactic: 'precision',
      });
      kernels.set(m.key, k);
    }
    return k;
  }

  async function readRaw(h: any, n: number): Promise<Float32Array> {
    if (h.buffer && h.context) {
      const dev = h.context.device;
      const bytes = n * 4;
      const staging = dev.createBuffer({ size: Math.max(4, bytes), usage: 0x0001 | 0x0008 });
      const enc = dev.createCommandEncoder();
      if (bytes > 0) enc.copyBufferToBuffer(h.buffer, 0, staging, 0, bytes);
      dev.queue.submit([enc.finish()]);
      await staging.mapAsync(0x0001, 0, Math.max(4, bytes));
      const out = new Float32Array(staging.getMappedRange(0, Math.max(4, bytes)).slice(0, bytes));
      staging.unmap();
      staging.destroy();
      return out;
    }
    const flat: number[] = [];
    flatten(h.toArray(), flat);
    return new Float32Array(flat.slice(0, n));
  }

  async function handle(m: any): Promise<void> {
    switch (m.t) {
      case 'init': {
        let r: any;
        try {
          r = await init(m);
        } catch (e: any) {
          r = { error: e && e.stack ? e.stack : String(e) };
        }
        reply(r);
        return;
      }
      case 'run': {
        const k = getKernel(m);
        k.setOutput(m.output);
        const args = m.args.map((a: any) => {
          if (typeof a === 'number') return a;
          const h = bufs.get(a.b);
          if (!h) throw new Error(`kernel ${m.key}: input buffer ${a.b} is not on the device (freed or failed)`);
          return h;
        });
        const t0 = profile ? performance.now() : 0;
        let r = k(...args);
        if (r && typeof r.then === 'function') r = await r;
        if (profile) {
          if (device) await device.queue.onSubmittedWorkDone();
          const p = (profile[m.key] ??= [0, 0]);
          p[0]++;
          p[1] += performance.now() - t0;
        }
        launches++;
        setBuf(m.out, r, m.n);
        return;
      }
      case 'wgsl': {
        if (!device || !BufferResult) throw new Error('WGSL shaders need the webgpu mode');
        let pipe = wgsl.get(m.key);
        if (!pipe) {
          pipe = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: m.src }), entryPoint: 'main' } });
          wgsl.set(m.key, pipe);
        }
        const ins = m.inputs.map((id: number) => {
          const h = bufs.get(id);
          if (!h || !h.buffer) throw new Error(`WGSL ${m.key}: input buffer ${id} is not on the device (freed or failed)`);
          return h.buffer;
        });
        const out = device.createBuffer({ size: Math.max(4, m.n * 4), usage: 0x80 | 0x04 | 0x08 }); // STORAGE | COPY_SRC | COPY_DST
        const uni = device.createBuffer({ size: Math.max(16, Math.ceil(m.params.length / 4) * 16), usage: 0x40 | 0x08 }); // UNIFORM | COPY_DST
        device.queue.writeBuffer(uni, 0, new Int32Array(m.params));
        const entries = [
          ...ins.map((b: any, i: number) => ({ binding: i, resource: { buffer: b } })),
          { binding: ins.length, resource: { buffer: out } },
          { binding: ins.length + 1, resource: { buffer: uni } },
        ];
        const bind = device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries });
        const t0 = profile ? performance.now() : 0;
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        pass.setPipeline(pipe);
        pass.setBindGroup(0, bind);
        pass.dispatchWorkgroups(m.groups[0], m.groups[1], m.groups[2]);
        pass.end();
        device.queue.submit([enc.finish()]);
        uni.destroy(); // freed once the submitted work is done
        if (profile) {
          await device.queue.onSubmittedWorkDone();
          const p = (profile[`wgsl:${m.key}`] ??= [0, 0]);
          p[0]++;
          p[1] += performance.now() - t0;
        }
        launches++;
        setBuf(m.out, new BufferResult({ buffer: out, output: m.output, context, kernel: null }), m.n);
        return;
      }
      case 'up': {
        let k = kernels.get('upload');
        if (!k) {
          k = gpu.createKernel(
            function (this: any, a: any) {
              return a[this.thread.x];
            },
            { output: [1], pipeline: true, immutable: true, dynamicOutput: true, dynamicArguments: true, precision: 'single', argumentTypes: { a: 'Array' } },
          );
          kernels.set('upload', k);
        }
        k.setOutput([m.data.length]);
        let r = k(m.data);
        if (r && typeof r.then === 'function') r = await r;
        setBuf(m.id, r, m.data.length);
        return;
      }
      case 'free':
        for (const id of m.ids) freeBuf(id);
        return;
      case 'read': {
        const h = bufs.get(m.id);
        if (m.tag !== undefined) {
          // asynchronous: the copy is queued now (after the work before it); the answer follows
          // when it completes, while later messages are handled
          if (!h) reply({ tag: m.tag, error: `buffer ${m.id} is not on the device` });
          else
            readRaw(h, m.n).then(
              (data) => reply({ tag: m.tag, data }),
              (e: any) => reply({ tag: m.tag, error: e && e.message ? e.message : String(e) }),
            );
          return;
        }
        if (!h) {
          reply({ error: `buffer ${m.id} is not on the device${firstError ? ` (earlier error: ${firstError})` : ''}` });
          return;
        }
        try {
          const data = await readRaw(h, m.n);
          reply({ data, error: firstError });
        } catch (e: any) {
          reply({ error: e && e.message ? e.message : String(e) });
        }
        return;
      }
      case 'stats':
        // a real sync point: the device has finished everything submitted so far
        if (device) await device.queue.onSubmittedWorkDone();
        reply({ buffers: bufs.size, liveBytes, peakBytes, launches, kernels: kernels.size, kernelClass, error: firstError, profile });
        return;
      case 'resetPeak':
        peakBytes = liveBytes;
        return;
    }
  }

  async function drain(): Promise<void> {
    busy = true;
    while (queue.length) {
      const m = queue.shift();
      try {
        await handle(m);
      } catch (e: any) {
        const msg = `${m.t}${m.key ? ' ' + m.key : ''}: ${e && e.message ? e.message : String(e)}`;
        if (firstError === null) firstError = msg;
        if (m.t === 'init' || m.t === 'read' || m.t === 'stats') reply({ error: msg });
      }
    }
    busy = false;
  }

  parentPort.on('message', (m: any) => {
    queue.push(m);
    if (!busy) void drain();
  });
}
