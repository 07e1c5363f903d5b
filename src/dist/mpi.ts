/**
 * The `mpi` process group: Open MPI's collectives (`MPI_Allreduce`, `MPI_Bcast`, `MPI_Allgatherv`,
 * `MPI_Barrier`) on host buffers, called through `koffi` (an optional dependency: `npm install
 * koffi`; Debian `openmpi-bin libopenmpi-dev`). For clusters where MPI is the engine: start the job
 * with `mpirun`, and rank, world size and transport are MPI's.
 *
 * Open MPI's handles (`MPI_COMM_WORLD`, `MPI_DOUBLE`, `MPI_SUM`, …) are addresses of exported
 * globals (`ompi_mpi_comm_world`, …), which koffi resolves by name; `libmpi` is loaded with
 * `RTLD_GLOBAL` so Open MPI's plugins find its symbols. MPICH-ABI libraries are not supported.
 * Failures are MPI's: with the default error handler a lost rank makes `mpirun` abort the job.
 * `allReduceAsync` runs the all-reduce when waited on (no overlap).
 */
import { createRequire } from 'node:module';
import { DistConfigError, DistError } from './errors.js';
import { commDType, typedArray, type CommArray, type CommDType, type ProcessGroup, type ReduceOp, type Work } from './group.js';

/** The koffi functions used (typed loosely: koffi is optional and loaded at run time). */
interface Mpi {
  init(): void;
  rank: number;
  size: number;
  allreduce(send: CommArray, recv: CommArray, n: number, dt: unknown, op: unknown): number;
  bcast(buf: Uint8Array, n: number, root: number): number;
  allgather(send: Int32Array, recv: Int32Array): number;
  allgatherv(send: Uint8Array, n: number, recv: Uint8Array, counts: Int32Array, displs: Int32Array): number;
  barrier(): number;
  finalize(): void;
  dt: Record<CommDType, unknown>;
  op: Record<'sum' | 'max' | 'min', unknown>;
}

let loaded: Mpi | null = null;

type KoffiFn = (...args: unknown[]) => unknown;
interface KoffiLib {
  func(def: string): KoffiFn;
  symbol(name: string): unknown;
}

/** Load koffi and libmpi (once). @throws DistConfigError naming what is missing */
function loadMpi(): Mpi {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  let koffi: { load(path: string, o?: { global?: boolean }): KoffiLib };
  try {
    koffi = require('koffi') as typeof koffi;
  } catch (e) {
    throw new DistConfigError(`--dist-backend mpi needs the optional package koffi (npm install koffi): ${(e as Error).message.split('\n')[0]}`);
  }
  const names = process.env.MEGA_MPI_LIB ? [process.env.MEGA_MPI_LIB] : ['libmpi.so.40', 'libmpi.so', 'libmpi.dylib'];
  let lib: KoffiLib | null = null;
  const errs: string[] = [];
  for (const n of names) {
    try {
      lib = koffi.load(n, { global: true });
      break;
    } catch (e) {
      errs.push(`${n}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  if (!lib)
    throw new DistConfigError(
      `--dist-backend mpi: cannot load Open MPI (apt-get install ` + `openmpi-bin libopenmpi-dev, or set MEGA_MPI_LIB): ${errs.join('; ')}`,
    );
  const sym = (n: string): unknown => {
    try {
      return lib!.symbol(n);
    } catch {
      throw new DistConfigError(`--dist-backend mpi: ${n} not found in libmpi (only Open MPI's ABI is supported)`);
    }
  };
  const world = sym('ompi_mpi_comm_world');
  const dt = { f32: sym('ompi_mpi_float'), f64: sym('ompi_mpi_double'), i32: sym('ompi_mpi_int') };
  const byte = sym('ompi_mpi_byte');
  const op = { sum: sym('ompi_mpi_op_sum'), max: sym('ompi_mpi_op_max'), min: sym('ompi_mpi_op_min') };
  const MPI_Initialized = lib.func('int MPI_Initialized(_Out_ int *flag)');
  const MPI_Init = lib.func('int MPI_Init(void *argc, void *argv)');
  const MPI_Finalized = lib.func('int MPI_Finalized(_Out_ int *flag)');
  const MPI_Finalize = lib.func('int MPI_Finalize()');
  const MPI_Comm_rank = lib.func('int MPI_Comm_rank(void *comm, _Out_ int *rank)');
  const MPI_Comm_size = lib.func('int MPI_Comm_size(void *comm, _Out_ int *size)');
  const MPI_Allreduce = lib.func('int MPI_Allreduce(const void *sendbuf, void *recvbuf, int count, void *datatype, void *op, void *comm)');
  const MPI_Bcast = lib.func('int MPI_Bcast(void *buf, int count, void *datatype, int root, void *comm)');
  const MPI_Allgather = lib.func(
    'int MPI_Allgather(const void *sendbuf, int sendcount, void ' + '*sendtype, void *recvbuf, int recvcount, void *recvtype, void *comm)',
  );
  const MPI_Allgatherv = lib.func(
    'int MPI_Allgatherv(const void *sendbuf, int sendcount, void *sendtype, void ' +
      '*recvbuf, const int *recvcounts, const int *displs, void *recvtype, void *comm)',
  );
  const MPI_Barrier = lib.func('int MPI_Barrier(void *comm)');
  const m: Mpi = {
    rank: -1,
    size: -1,
    init() {
      const f = [0];
      MPI_Initialized(f);
      if (!f[0]) MPI_Init(null, null);
      const r = [0],
        s = [0];
      MPI_Comm_rank(world, r);
      MPI_Comm_size(world, s);
      m.rank = r[0];
      m.size = s[0];
    },
    allreduce: (send, recv, n, d, o) => MPI_Allreduce(send, recv, n, d, o, world) as number,
    bcast: (buf, n, root) => MPI_Bcast(buf, n, byte, root, world) as number,
    allgather: (send, recv) => MPI_Allgather(send, 1, dt.i32, recv, 1, dt.i32, world) as number,
    allgatherv: (send, n, recv, counts, displs) => MPI_Allgatherv(send, n, byte, recv, counts, displs, byte, world) as number,
    barrier: () => MPI_Barrier(world) as number,
    finalize() {
      const f = [0];
      MPI_Finalized(f);
      if (!f[0]) MPI_Finalize();
    },
    dt,
    op,
  };
  loaded = m;
  return m;
}

/** Whether koffi and an Open MPI library can be loaded here (for tests and `mega info`). */
export function mpiAvailable(): boolean {
  try {
    loadMpi();
    return true;
  } catch {
    return false;
  }
}

/** An Open MPI process group over `MPI_COMM_WORLD`. */
export class MpiGroup implements ProcessGroup {
  readonly backend = 'mpi' as const;
  readonly rank: number;
  readonly worldSize: number;
  private readonly mpi: Mpi;
  private closed = false;

  /**
   * Initialises MPI (if needed) and checks MPI's rank and size against the launcher's.
   * @throws DistConfigError when MPI is unavailable or disagrees with `expect`
   */
  constructor(expect?: { rank: number; worldSize: number }) {
    this.mpi = loadMpi();
    this.mpi.init();
    this.rank = this.mpi.rank;
    this.worldSize = this.mpi.size;
    if (expect && (expect.rank !== this.rank || expect.worldSize !== this.worldSize)) {
      throw new DistConfigError(
        `MPI says rank ${this.rank} of ${this.worldSize}, the launcher's variables ` + `rank ${expect.rank} of ${expect.worldSize} (start the job with mpirun)`,
      );
    }
  }

  private ok(rc: number, what: string): void {
    if (rc !== 0) throw new DistError(`rank ${this.rank}: ${what} failed (MPI error ${rc})`);
  }

  private live(what: string): void {
    if (this.closed) throw new DistError(`rank ${this.rank}: ${what} on a closed process group`);
  }

  allReduce(x: CommArray, op: ReduceOp = 'sum'): void {
    this.live('allReduce');
    const dt = commDType(x);
    if (op === 'avg' && dt === 'i32') throw new TypeError('allReduce avg of i32');
    if (x.length === 0) return;
    const send = x.slice();
    this.ok(this.mpi.allreduce(send, x, x.length, this.mpi.dt[dt], this.mpi.op[op === 'avg' ? 'sum' : op]), 'MPI_Allreduce');
    if (op === 'avg') for (let i = 0; i < x.length; i++) x[i] /= this.worldSize;
  }

  allReduceAsync(x: CommArray, op: ReduceOp = 'sum'): Work {
    return { wait: () => this.allReduce(x, op) };
  }

  broadcast(x: CommArray | Uint8Array, root = 0): void {
    this.live('broadcast');
    const bytes = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    if (bytes.length > 0x7fffffff) throw new RangeError('MPI broadcast of more than 2 GiB');
    this.ok(this.mpi.bcast(bytes, bytes.length, root), 'MPI_Bcast');
  }

  allGatherBytes(x: Uint8Array): Uint8Array[] {
    this.live('allGather');
    const counts = new Int32Array(this.worldSize);
    this.ok(this.mpi.allgather(Int32Array.of(x.length), counts), 'MPI_Allgather');
    const displs = new Int32Array(this.worldSize);
    let total = 0;
    for (let i = 0; i < this.worldSize; i++) {
      displs[i] = total;
      total += counts[i];
    }
    const out = new Uint8Array(Math.max(1, total));
    this.ok(this.mpi.allgatherv(x.length ? x : new Uint8Array(1), x.length, out, counts, displs), 'MPI_Allgatherv');
    return [...counts].map((c, i) => out.slice(displs[i], displs[i] + c));
  }

  barrier(): void {
    this.live('barrier');
    this.ok(this.mpi.barrier(), 'MPI_Barrier');
  }

  alloc(dtype: CommDType, length: number): CommArray {
    return typedArray(dtype, length);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.mpi.finalize();
  }
}
